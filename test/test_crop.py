"""Square face crops, crop intrinsics and paste-back, checked against the pixel convention of geometry.camera."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import face_image

from faceanything_ros.config import DetectorConfig
from faceanything_ros.geometry.camera import intrinsics_matrix, pixel_grid
from faceanything_ros.geometry.projection import unproject_pixels
from faceanything_ros.io import CropBox, FaceBox, FaceDetector, crop_box_for_face, crop_image, paste_back, read_image
from faceanything_ros.io.crop import crop_footprint, crop_pixels_footprint, paste_surface

QUANTUM = 1.0 / 32.0  # OpenCV's bilinear position resolution, pixels


def ramp_image(height: int, width: int) -> np.ndarray:
    """uint8 RGB image with value 2u + v in channel 0, u in channel 1, v in channel 2."""
    grid = pixel_grid(height, width)
    u, v = grid[..., 0], grid[..., 1]
    return np.stack([2 * u + v, u, v], axis=-1).astype(np.uint8)


def smooth_image(height: int, width: int) -> np.ndarray:
    grid = pixel_grid(height, width)
    value = 128 + 60 * np.sin(grid[..., 0] / 17.0) * np.cos(grid[..., 1] / 23.0)
    return np.repeat(np.round(value)[..., None], 3, axis=-1).astype(np.uint8)


def project(K: np.ndarray, point: np.ndarray) -> np.ndarray:
    uvw = K @ point
    return uvw[:2] / uvw[2]


def test_crop_box_for_face_is_square_and_centred():
    face = FaceBox(x0=99.5, y0=49.5, x1=199.5, y1=179.5, score=0.9, keypoints=np.zeros((6, 2)))
    box = crop_box_for_face(face, scale=2.0, output_size=224)
    assert (box.x0, box.y0, box.side, box.output_size) == (20.0, -15.0, 260.0, 224)
    assert box.scale == 224 / 260
    assert np.allclose(box.image_pixels_to_crop(np.array([[149.5, 114.5]])), [[111.5, 111.5]])
    assert np.allclose(box.image_pixels_to_crop(np.array([[19.5, -15.5]])), [[-0.5, -0.5]])  # top-left edge


def test_unit_scale_integer_crop_is_an_exact_slice_with_zeros_outside():
    image = ramp_image(40, 50)
    crop = crop_image(image, CropBox(x0=-5.0, y0=10.0, side=20.0, output_size=20))
    assert np.array_equal(crop[:, :5], np.zeros((20, 5, 3), np.uint8))
    assert np.array_equal(crop[:, 5:], image[10:30, 0:15])


def test_upscaled_crop_samples_the_image_at_the_affine_positions():
    image = ramp_image(40, 60)
    box = CropBox(x0=10.3, y0=12.6, side=10.0, output_size=25)  # scale 2.5
    crop = crop_image(image, box).astype(np.float64)
    uc, vc = np.meshgrid(np.arange(25.0), np.arange(25.0))
    u = (uc + 0.5) / 2.5 - 0.5 + 10.3
    v = (vc + 0.5) / 2.5 - 0.5 + 12.6
    assert np.abs(crop[..., 1] - u).max() <= 0.5 + QUANTUM
    assert np.abs(crop[..., 2] - v).max() <= 0.5 + QUANTUM
    assert np.abs(crop[..., 0] - (2 * u + v)).max() <= 0.5 + 3 * QUANTUM


def test_downscaled_crop_averages_blocks_instead_of_aliasing():
    image = np.zeros((60, 60, 3), np.uint8)
    image[:, ::3] = 255  # one bright column in every 3
    crop = crop_image(image, CropBox(x0=0.0, y0=0.0, side=60.0, output_size=20))  # scale 1/3
    assert np.array_equal(crop, np.full((20, 20, 3), 85, np.uint8))  # plain sampling would read only dark columns


@pytest.mark.parametrize("box", [CropBox(30.3, 20.7, 150.0, 224), CropBox(30.3, 20.7, 150.0, 64)], ids=["up", "down"])
def test_crop_then_paste_back_reproduces_a_smooth_image_inside_the_box(box):
    image = smooth_image(200, 240)
    restored = paste_back(crop_image(image, box).astype(np.float32), box, 200, 240)
    expected_inside = np.zeros((200, 240), bool)
    expected_inside[21:171, 30:180] = True  # pixel centres in [x0 - 0.5, x0 + side - 0.5) = [29.8, 179.8)
    assert np.array_equal(np.isfinite(restored[..., 0]), expected_inside)
    interior = (slice(23, 169), slice(32, 178))
    assert np.abs(restored[interior] - image[interior]).max() <= 1.5


@pytest.mark.parametrize(
    "box", [CropBox(-40.25, 15.5, 120.0, 224), CropBox(60.7, -20.2, 300.0, 96)], ids=["upscale", "downscale"]
)
def test_paste_back_of_crop_coordinates_gives_image_coordinates(box):
    size = box.output_size
    crop_uv = pixel_grid(size, size).reshape(-1, 2)
    crop_map = box.crop_pixels_to_image(crop_uv).reshape(size, size, 2)  # image (u, v) of each crop pixel
    pasted = paste_back(crop_map, box, 240, 320)
    image_uv = pixel_grid(240, 320)
    in_crop = box.image_pixels_to_crop(image_uv.reshape(-1, 2)).reshape(240, 320, 2)
    exact = np.all((in_crop >= 0) & (in_crop <= size - 1), axis=-1)  # no edge extension needed
    assert exact.sum() > 1000
    assert np.abs(pasted[exact] - image_uv[exact]).max() <= QUANTUM / box.scale


def test_crop_intrinsics_match_crop_pixel_mapping_and_invert():
    K = intrinsics_matrix(800.0, 810.0, 320.3, 240.7)
    box = CropBox(x0=200.2, y0=130.6, side=180.0, output_size=224)
    K_crop = box.intrinsics(K)
    for point in (np.array([0.05, -0.03, 1.2]), np.array([-0.1, 0.08, 0.9])):
        assert np.allclose(project(K_crop, point), box.image_pixels_to_crop(project(K, point)[None])[0], atol=1e-9)
    assert np.allclose(box.uncrop_intrinsics(K_crop), K, atol=1e-12)
    points = np.array([[0.0, 0.0], [12.25, 200.5], [-3.0, 17.0]])
    assert np.allclose(box.crop_pixels_to_image(box.image_pixels_to_crop(points)), points, atol=1e-12)


@pytest.mark.parametrize("side", [180.0, 500.0], ids=["upscale", "downscale"])
def test_projected_point_lands_on_the_same_feature_in_the_crop(side):
    K = intrinsics_matrix(600.0, 600.0, 319.5, 239.5)
    point = np.array([0.04, -0.02, 1.0])
    u, v = project(K, point)
    grid = pixel_grid(480, 640)
    blob = 250 * np.exp(-((grid[..., 0] - u) ** 2 + (grid[..., 1] - v) ** 2) / (2 * 5.0**2))
    image = np.repeat(np.round(blob)[..., None], 3, axis=-1).astype(np.uint8)
    box = CropBox(x0=u - side / 2 + 7.3, y0=v - side / 2 - 4.1, side=side, output_size=224)
    crop = crop_image(image, box)[..., 0].astype(np.float64)
    crop_grid = pixel_grid(224, 224)
    centroid = (crop[..., None] * crop_grid).sum(axis=(0, 1)) / crop.sum()
    assert np.abs(centroid - project(box.intrinsics(K), point)).max() < 0.05


def test_paste_back_dtypes_fill_and_interpolation():
    box = CropBox(x0=10.0, y0=5.0, side=20.0, output_size=40)
    inside = np.zeros((50, 60), bool)
    inside[5:25, 10:30] = True
    ones = np.ones((40, 40), bool)
    for interpolation in ("nearest", "linear"):
        mask = paste_back(ones, box, 50, 60, interpolation=interpolation)
        assert mask.dtype == np.bool_ and np.array_equal(mask, inside)
    assert np.array_equal(paste_back(np.full((40, 40), 7, np.uint8), box, 50, 60), np.where(inside, 7, 0))
    half = paste_back(np.ones((40, 40), np.float16), box, 50, 60, fill=-1.0)
    assert half.dtype == np.float32 and np.array_equal(half, np.where(inside, 1.0, -1.0))
    channels = paste_back(np.ones((40, 40, 5)), box, 50, 60)
    assert channels.shape == (50, 60, 5) and np.array_equal(np.isfinite(channels[..., 4]), inside)
    assert paste_back(np.ones((40, 40, 1), np.float32), box, 50, 60).shape == (50, 60, 1)


def test_paste_back_into_a_region_is_that_region_of_the_full_paste():
    box = CropBox(x0=-6.3, y0=12.7, side=31.0, output_size=24)  # cut by the image's left border
    footprint = crop_footprint(box, 50, 60)
    assert footprint == (slice(13, 44), slice(0, 25))  # pixel centres inside [x0 - 0.5, x0 + side - 0.5)
    rng = np.random.default_rng(0)
    values = rng.random((24, 24, 2)).astype(np.float32)
    depth, canonical = rng.random((24, 24)).astype(np.float32), rng.random((24, 24, 3)).astype(np.float32)
    valid = rng.random((24, 24)) > 0.3
    face = rng.random((50, 60)) > 0.2
    for region in (footprint, (slice(20, 50), slice(10, 60)), (slice(30, 31), slice(3, 20)), (slice(0, 5), slice(0, 5))):
        # equal up to warpAffine's 1/32-pixel position rounding, which starts at the region's corner
        np.testing.assert_allclose(paste_back(values, box, 50, 60, region=region),
                                   paste_back(values, box, 50, 60)[region], atol=1e-3, equal_nan=True)
        for given in (None, face):
            full = paste_surface(depth, canonical, valid, box, 50, 60, face=given)
            part = paste_surface(depth, canonical, valid, box, 50, 60, region=region,
                                 face=None if given is None else given[region])
            shape = (region[0].stop - region[0].start, region[1].stop - region[1].start)
            assert [(m.shape, m.dtype) for m in part] == [(shape, bool), (shape, np.float32), (shape + (3,), np.float32)]
            assert np.mean(part[0] != full[0][region]) < 0.01  # a weight at 0.5 may fall either side
            both = part[0] & full[0][region]
            assert both.any() == all(r.start < f.stop and f.start < r.stop for r, f in zip(region, footprint))
            for pasted, whole in zip(part[1:], full[1:]):
                np.testing.assert_allclose(pasted[both], whole[region][both], atol=1e-3)
                assert np.isnan(pasted[~part[0]]).all()
    assert np.isfinite(paste_back(values, box, 50, 60, region=footprint)).all()  # the footprint is all filled
    with pytest.raises(ValueError, match="not inside"):
        paste_back(values, box, 50, 60, region=(slice(40, 51), slice(0, 5)))
    with pytest.raises(ValueError, match="not inside"):
        paste_surface(depth, canonical, valid, box, 50, 60, region=(slice(40, 51), slice(0, 5)))


@pytest.mark.parametrize("box", [CropBox(x0=10.4, y0=5.2, side=48.0, output_size=24),  # enlarged 2x
                                 CropBox(x0=-6.3, y0=12.7, side=31.0, output_size=24)])  # cut by the border
def test_paste_surface_of_some_crop_pixels_reaches_only_their_footprint(box):
    rng = np.random.default_rng(2)
    depth, canonical = rng.random((24, 24)).astype(np.float32), rng.random((24, 24, 3)).astype(np.float32)
    blob = np.zeros((24, 24), bool)
    blob[7:13, 9:17] = True
    region = crop_pixels_footprint(box, blob, 50, 60)
    mask, pasted_depth, pasted_canonical = paste_surface(depth, canonical, blob, box, 50, 60,
                                                         face=np.ones((50, 60), bool))
    outside = np.ones((50, 60), bool)
    outside[region] = False
    assert mask[region].any() and not mask[outside].any()
    assert np.array_equal(np.isfinite(pasted_depth), mask) and np.array_equal(np.isfinite(pasted_canonical).all(-1), mask)
    assert all(outer.start <= inner.start < inner.stop <= outer.stop
               for inner, outer in zip(region, crop_footprint(box, 50, 60)))
    assert crop_pixels_footprint(box, np.zeros((24, 24), bool), 50, 60) == crop_footprint(box, 50, 60)


def test_nearest_paste_back_keeps_crop_values():
    box = CropBox(x0=0.0, y0=0.0, side=4.0, output_size=8)  # each image pixel covers 2x2 crop pixels
    labels = np.arange(64, dtype=np.float64).reshape(8, 8)
    pasted = paste_back(labels, box, 4, 4, interpolation="nearest")
    assert np.isin(pasted, labels).all()
    linear = paste_back(labels, box, 4, 4)
    assert np.allclose(linear, labels.reshape(4, 2, 4, 2).mean(axis=(1, 3)))  # centre between 2x2 crop pixels


def test_box_outside_the_image_gives_zero_crop_and_fill_only():
    image = ramp_image(40, 50)
    box = CropBox(x0=100.0, y0=0.0, side=30.0, output_size=32)
    assert np.array_equal(crop_image(image, box), np.zeros((32, 32, 3), np.uint8))
    assert np.isnan(paste_back(np.ones((32, 32)), box, 40, 50)).all()


def test_bad_boxes_maps_and_pixels_are_rejected():
    with pytest.raises(ValueError, match="side > 0"):
        CropBox(0.0, 0.0, 0.0, 10)
    with pytest.raises(ValueError, match="finite"):
        CropBox(np.nan, 0.0, 5.0, 10)
    with pytest.raises(ValueError, match="output_size must be >= 1"):
        CropBox(0.0, 0.0, 5.0, 0)
    face = FaceBox(0.0, 0.0, 10.0, 10.0, 0.9, np.zeros((6, 2)))
    with pytest.raises(ValueError, match="crop scale must be > 0"):
        crop_box_for_face(face, 0.0, 224)
    box = CropBox(0.0, 0.0, 10.0, 16)
    with pytest.raises(ValueError, match=r"shape \(16, 16\) or \(16, 16, C\)"):
        paste_back(np.ones((15, 16)), box, 20, 20)
    with pytest.raises(TypeError, match="dtype int32 is not supported"):
        paste_back(np.ones((16, 16), np.int32), box, 20, 20)
    with pytest.raises(ValueError, match="interpolation must be one of"):
        paste_back(np.ones((16, 16)), box, 20, 20, interpolation="cubic")
    with pytest.raises(ValueError, match=r"pixels must have shape \(N, 2\)"):
        box.crop_pixels_to_image(np.ones(2))
    with pytest.raises(TypeError, match="expected uint8"):
        crop_image(np.ones((40, 40, 3)), box)


def test_detected_face_crop_holds_a_centred_face_of_the_expected_size():
    rgb = read_image(face_image("mica_carell.jpg"))
    with FaceDetector(DetectorConfig()) as detector:
        (face,) = detector.detect(rgb)
        box = crop_box_for_face(face, scale=1.8, output_size=224)
        (in_crop,) = detector.detect(crop_image(rgb, box))
    expected_centre = box.image_pixels_to_crop(np.array([face.center]))[0]
    assert np.abs(np.array(in_crop.center) - expected_centre).max() < 0.05 * 224
    assert max(in_crop.width, in_crop.height) == pytest.approx(224 / 1.8, rel=0.15)


SPHERE_CENTRE = np.array([0.04, -0.03, 0.6])  # metres, camera optical frame
SPHERE_RADIUS = 0.1
FACE_COSINE = 0.25  # the face mask ends where the surface turns this far (76 degrees) from the viewer
WALL_DEPTH = 2.0
WALL_CANONICAL = 0.9


def sphere_crop(box: CropBox, camera: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A sphere (SPHERE_CENTRE, SPHERE_RADIUS) seen in ``box``: z-depth (S, S) metres, canonical (S, S, 3)
    = unit normal, face mask (S, S) where the surface faces the camera by more than FACE_COSINE.
    Off the face: a wall at WALL_DEPTH and canonical WALL_CANONICAL, as unsupervised network outputs."""
    size = box.output_size
    rays = np.concatenate([pixel_grid(size, size), np.ones((size, size, 1))], axis=-1) @ np.linalg.inv(box.intrinsics(camera)).T
    unit = rays / np.linalg.norm(rays, axis=-1, keepdims=True)
    along = unit @ SPHERE_CENTRE
    discriminant = along ** 2 - SPHERE_CENTRE @ SPHERE_CENTRE + SPHERE_RADIUS ** 2
    distance = along - np.sqrt(np.maximum(discriminant, 0))
    normal = (unit * distance[..., None] - SPHERE_CENTRE) / SPHERE_RADIUS
    face = (discriminant > 0) & (-np.einsum("hwk,hwk->hw", normal, unit) > FACE_COSINE)
    depth = np.where(face, distance * unit[..., 2], WALL_DEPTH)
    return depth, np.where(face[..., None], normal, WALL_CANONICAL), face


@pytest.mark.parametrize("side, size", [(251.3, 224), (251.3, 96)], ids=["upscale", "downscale"])
def test_paste_surface_puts_every_point_on_the_true_surface(side, size):
    """Depth and canonical pasted from face pixels only: no point off the sphere, no canonical value
    off the unit sphere, however steep the surface at the mask's edge (plain bilinear mixes in the wall)."""
    camera = intrinsics_matrix(500.0, 500.0, 319.5, 239.5)
    box = CropBox.centred(*project(camera, SPHERE_CENTRE), side, size)
    depth, canonical, face = sphere_crop(box, camera)
    mask, aware_depth, aware_canonical = paste_surface(depth, canonical, face, box, 480, 640)
    assert np.array_equal(mask, paste_back(face, box, 480, 640))  # the face: the pasted face map >= 0.5
    plain = paste_back(np.concatenate([depth[..., None], canonical], axis=-1), box, 480, 640)
    assert mask.sum() > 20_000 and np.isfinite(aware_depth[mask]).all() and np.isnan(aware_depth[~mask]).all()
    grid = pixel_grid(480, 640)[mask]
    pixel_step_m = SPHERE_CENTRE[2] / camera[0, 0] / box.scale  # a crop pixel on the sphere, metres

    def off_surface(pasted_depth: np.ndarray, pasted_canonical: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        points = unproject_pixels(grid, pasted_depth[mask], camera)
        return (np.abs(np.linalg.norm(points - SPHERE_CENTRE, axis=1) - SPHERE_RADIUS),
                np.abs(np.linalg.norm(pasted_canonical[mask], axis=1) - 1))

    to_surface, off_unit = off_surface(aware_depth, aware_canonical)
    assert to_surface.max() < pixel_step_m and off_unit.max() < 0.05
    assert np.median(to_surface) < 1e-4  # interpolating a curved surface inside the mask: well under 0.1 mm
    plain_surface, plain_unit = off_surface(plain[..., 0], plain[..., 1:])
    assert plain_surface.max() > 0.1 and plain_unit.max() > 0.1  # the flying pixels of plain bilinear


def test_paste_surface_keeps_the_given_face_pixels_that_read_a_valid_crop_pixel():
    box = CropBox(x0=0.0, y0=0.0, side=8.0, output_size=8)  # one crop pixel per image pixel
    depth = np.arange(64, dtype=np.float32).reshape(8, 8)
    canonical = np.stack([depth, -depth, 2 * depth], axis=-1)
    valid = np.zeros((8, 8), bool)
    valid[2:6, 2:6] = True
    mask, pasted, pasted_canonical = paste_surface(depth, canonical, valid, box, 8, 8)
    assert np.array_equal(mask, valid)
    np.testing.assert_array_equal(pasted, np.where(valid, depth, np.nan))
    np.testing.assert_array_equal(pasted_canonical, np.where(valid[..., None], canonical, np.nan))
    half = CropBox(x0=0.5, y0=0.0, side=8.0, output_size=8)  # image pixels halfway between crop pixels
    everywhere = np.ones((8, 8), bool)
    mask, pasted, pasted_canonical = paste_surface(depth, canonical, valid, half, 8, 8, face=everywhere)
    np.testing.assert_array_equal(pasted[2:6, 2], depth[2:6, 2])  # only the valid one of the two
    np.testing.assert_array_equal(pasted[2:6, 3], (depth[2:6, 2] + depth[2:6, 3]) / 2)
    np.testing.assert_array_equal(pasted_canonical[2:6, 3, 1], -pasted[2:6, 3])
    assert np.isnan(pasted[2:6, 1]).all() and np.isnan(pasted[1]).all() and not mask[1].any()
    assert not paste_surface(depth, canonical, valid, half, 8, 8, face=~everywhere)[0].any()
    broken = depth.copy()
    broken[3, 3] = np.nan  # a non-finite crop value is not valid: its neighbours are read instead
    mask, pasted, _ = paste_surface(broken, canonical, valid, box, 8, 8)
    assert not mask[3, 3] and mask.sum() == 15 and np.isfinite(pasted[mask]).all()
    broken = canonical.copy()
    broken[4, 2, 2] = np.inf  # so is a crop pixel with one non-finite canonical coordinate
    mask, _, pasted_canonical = paste_surface(depth, broken, valid, box, 8, 8)
    assert not mask[4, 2] and mask.sum() == 15 and np.isfinite(pasted_canonical[mask]).all()
    with pytest.raises(ValueError, match=r"valid must be a bool \(8, 8\) map"):
        paste_surface(depth, canonical, valid[:4], box, 8, 8)
    with pytest.raises(ValueError, match=r"shapes \(8, 8\) and \(8, 8, 3\)"):
        paste_surface(depth, canonical[..., :2], valid, box, 8, 8)
    with pytest.raises(ValueError, match=r"face must be the region's \(8, 8\) bool map"):
        paste_surface(depth, canonical, valid, box, 8, 8, face=everywhere[:4])
    with pytest.raises(ValueError, match="face must be the region's"):
        paste_surface(depth, canonical, valid, box, 8, 8, face=everywhere.astype(np.uint8))
