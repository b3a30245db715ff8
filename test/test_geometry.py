"""Ray maps, (un)projection, sampling and point clouds on analytic scenes."""
from __future__ import annotations

import numpy as np
import pytest

from faceanything_ros.geometry import (
    PointCloud,
    crop_resize_intrinsics,
    intrinsics_matrix,
    mask_region,
    point_cloud_from_depth,
    project_points,
    rays_from_intrinsics,
    sample_bilinear,
    sample_bilinear_or_nearest,
    sample_nearest,
    unproject_depth,
    unproject_pixels,
)

HEIGHT, WIDTH = 48, 64
CAMERAS = {
    "square_centred": intrinsics_matrix(80.0, 80.0, 31.5, 23.5),
    "non_square_off_centre": intrinsics_matrix(95.0, 70.0, 20.25, 30.75),
}


def analytic_rays(K: np.ndarray, height: int, width: int) -> np.ndarray:
    """Unit rays ((u - cx) / fx, (v - cy) / fy, 1) / norm for a zero-skew K, written out by hand."""
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], axis=-1)
    return rays / np.linalg.norm(rays, axis=-1, keepdims=True)


@pytest.mark.parametrize("name", sorted(CAMERAS))
def test_rays_from_intrinsics_match_pinhole_formula(name: str) -> None:
    K = CAMERAS[name]
    rays = rays_from_intrinsics(K, HEIGHT, WIDTH)
    assert rays.shape == (HEIGHT, WIDTH, 3)
    np.testing.assert_allclose(rays, analytic_rays(K, HEIGHT, WIDTH), atol=1e-12)
    principal_ray = rays_from_intrinsics(intrinsics_matrix(50.0, 50.0, 3.0, 2.0), 5, 7)[2, 3]
    np.testing.assert_allclose(principal_ray, [0.0, 0.0, 1.0], atol=1e-15)


def test_fronto_parallel_plane_unprojects_to_its_depth() -> None:
    K = CAMERAS["non_square_off_centre"]
    points = unproject_depth(np.full((HEIGHT, WIDTH), 1.25), K)
    v, u = np.mgrid[0:HEIGHT, 0:WIDTH]
    np.testing.assert_allclose(points[..., 2], 1.25, atol=1e-15)
    np.testing.assert_allclose(points[..., 0], (u - 20.25) / 95.0 * 1.25, atol=1e-12)
    np.testing.assert_allclose(points[..., 1], (v - 30.75) / 70.0 * 1.25, atol=1e-12)


def test_tilted_plane_points_satisfy_plane_equation() -> None:
    K = CAMERAS["square_centred"]
    normal = np.array([0.3, -0.4, 1.0]) / np.linalg.norm([0.3, -0.4, 1.0])
    offset = 0.8  # plane normal . X = offset
    rays = analytic_rays(K, HEIGHT, WIDTH)
    depth = offset / (rays @ normal) * rays[..., 2]
    points = unproject_depth(depth, K)
    np.testing.assert_allclose(points @ normal, offset, atol=1e-9)
    np.testing.assert_allclose(points / np.linalg.norm(points, axis=-1, keepdims=True), rays, atol=1e-12)


def test_sphere_points_lie_on_sphere_and_misses_are_nan() -> None:
    K = CAMERAS["square_centred"]
    centre, radius = np.array([0.05, -0.02, 1.0]), 0.15
    rays = analytic_rays(K, HEIGHT, WIDTH)
    along = rays @ centre
    discriminant = along**2 - centre @ centre + radius**2
    with np.errstate(invalid="ignore"):
        depth = (along - np.sqrt(discriminant)) * rays[..., 2]
    hit = discriminant >= 0
    assert 0 < hit.sum() < hit.size
    points = unproject_depth(depth, K)
    np.testing.assert_allclose(np.linalg.norm(points[hit] - centre, axis=-1), radius, atol=1e-9)
    assert np.all(np.isnan(points[~hit]))


def test_project_inverts_unproject() -> None:
    K = CAMERAS["non_square_off_centre"]
    rng = np.random.default_rng(1)
    pixels = rng.uniform([0, 0], [WIDTH - 1, HEIGHT - 1], size=(100, 2))
    depth = rng.uniform(0.3, 3.0, size=100)
    projected, projected_depth = project_points(unproject_pixels(pixels, depth, K), K)
    np.testing.assert_allclose(projected, pixels, atol=1e-10)
    np.testing.assert_allclose(projected_depth, depth, atol=1e-12)


def test_project_known_points_and_points_behind_camera() -> None:
    K = intrinsics_matrix(100.0, 200.0, 10.0, 20.0)
    pixels, depth = project_points(np.array([[0.1, 0.2, 2.0], [0.0, 0.0, 0.0], [1.0, 1.0, -1.0]]), K)
    np.testing.assert_allclose(pixels[0], [10.0 + 100.0 * 0.05, 20.0 + 200.0 * 0.1])
    assert np.all(np.isnan(pixels[1:]))
    np.testing.assert_array_equal(depth, [2.0, 0.0, -1.0])


def test_invalid_depth_gives_nan_points() -> None:
    depth = np.array([[1.0, -1.0, 0.0], [np.nan, np.inf, 2.0]])
    points = unproject_depth(depth, CAMERAS["square_centred"])
    valid = np.array([[True, False, False], [False, False, True]])
    assert np.all(np.isfinite(points[valid])) and np.all(np.isnan(points[~valid]))


def test_projection_input_errors() -> None:
    K = CAMERAS["square_centred"]
    with pytest.raises(ValueError, match="NaN"):
        unproject_depth(np.ones((2, 2)), np.full((3, 3), np.nan))
    with pytest.raises(ValueError, match=r"shape \(3, 3\)"):
        project_points(np.ones((2, 3)), np.eye(2))
    with pytest.raises(ValueError, match="depth must be 2-D"):
        unproject_depth(np.ones(5), K)
    with pytest.raises(ValueError, match="points must be 2-D with last axis 3"):
        project_points(np.ones((4, 2)), K)
    with pytest.raises(ValueError, match=r"depth must have shape \(3,\)"):
        unproject_pixels(np.ones((3, 2)), np.ones(2), K)


def test_bilinear_reproduces_affine_maps_and_flags_nan() -> None:
    v, u = np.mgrid[0:6, 0:9].astype(np.float64)
    image = np.stack([2.0 * u - 3.0 * v + 1.0, 0.5 * u + v], axis=-1)
    pixels = np.array([[0.0, 0.0], [8.0, 5.0], [3.25, 1.75], [7.9, 4.6], [-0.01, 2.0], [4.0, 5.01], [np.nan, 1.0]])
    samples = sample_bilinear(image, pixels)
    expected = np.stack([2.0 * pixels[:, 0] - 3.0 * pixels[:, 1] + 1.0, 0.5 * pixels[:, 0] + pixels[:, 1]], axis=1)
    np.testing.assert_allclose(samples[:4], expected[:4], atol=1e-12)
    assert np.all(np.isnan(samples[4:]))
    np.testing.assert_allclose(sample_bilinear(image[..., 0], pixels[:4]), expected[:4, 0], atol=1e-12)
    image[2, 4, 0] = np.nan
    with_nan = sample_bilinear(image[..., 0], np.array([[4.0, 2.0], [3.5, 1.5], [4.5, 2.5], [5.0, 3.0]]))
    assert np.all(np.isnan(with_nan[:3])) and with_nan[3] == 2.0 * 5 - 3.0 * 3 + 1.0


def test_valid_mask_and_nearest_fallback() -> None:
    image = np.arange(12.0).reshape(3, 4)
    valid = np.ones((3, 4), dtype=bool)
    valid[:, 2:] = False
    pixels = np.array([[0.5, 0.5], [1.4, 1.0], [1.6, 1.0], [3.0, 2.0], [-0.6, 0.0]])
    np.testing.assert_allclose(sample_bilinear(image, pixels[:1], valid), [2.5])
    assert np.all(np.isnan(sample_bilinear(image, pixels[1:3], valid)))
    nearest = sample_nearest(image, pixels, valid)
    np.testing.assert_array_equal(nearest[:2], [5.0, 5.0])  # halfway rounds up
    assert np.all(np.isnan(nearest[2:]))
    np.testing.assert_array_equal(sample_nearest(image, pixels[3:4]), [11.0])
    combined = sample_bilinear_or_nearest(image, pixels, valid)
    np.testing.assert_allclose(combined[:2], [2.5, 5.0])
    assert np.all(np.isnan(combined[2:]))
    with pytest.raises(ValueError, match="valid must be a bool array"):
        sample_bilinear(image, pixels, valid.astype(np.uint8))
    with pytest.raises(ValueError, match="pixels must be 2-D with last axis 2"):
        sample_nearest(image, np.ones(2))


def test_point_cloud_from_depth_keeps_valid_strided_pixels() -> None:
    K = CAMERAS["square_centred"]
    height, width = 6, 8
    depth = np.full((height, width), 2.0)
    depth[0, 2] = np.nan
    depth[2, 0] = -1.0
    valid = np.ones((height, width), dtype=bool)
    valid[4, 4] = False
    v, u = np.mgrid[0:height, 0:width]
    image = np.stack([u, v, u + v], axis=-1).astype(np.uint8)
    canonical = np.stack([u / 10.0, v / 10.0, np.zeros_like(u, dtype=float)], axis=-1)
    cloud = point_cloud_from_depth(depth, K, valid, image, canonical, np.full((height, width), 0.7), stride=2)
    expected = [(col, row) for row in range(0, height, 2) for col in range(0, width, 2)]
    expected = [p for p in expected if p not in {(2, 0), (0, 2), (4, 4)}]
    np.testing.assert_array_equal(cloud.pixels, expected)
    assert len(cloud) == len(expected) == 9 and cloud.points.dtype == np.float32
    np.testing.assert_allclose(cloud.points[:, 2], 2.0)
    np.testing.assert_allclose(cloud.points[:, 0], (cloud.pixels[:, 0] - 31.5) / 80.0 * 2.0, rtol=1e-6)
    np.testing.assert_array_equal(cloud.colors[:, 2], cloud.pixels.sum(axis=1))
    np.testing.assert_allclose(cloud.canonical[:, 1], cloud.pixels[:, 1] / 10.0, rtol=1e-6)
    np.testing.assert_allclose(cloud.confidence, 0.7, rtol=1e-6)
    plain = point_cloud_from_depth(depth, K)
    assert len(plain) == height * width - 2 and plain.canonical is None and np.all(plain.colors == 255)


def test_a_strided_cloud_of_a_region_s_maps_is_the_full_cloud_on_the_image_s_pixel_grid() -> None:
    K = CAMERAS["square_centred"]
    rows, cols = np.mgrid[0:40, 0:50]
    depth = (1.0 + 0.01 * rows + 0.002 * cols).astype(np.float32)
    valid = (rows - 20) ** 2 + (cols - 27) ** 2 < 100  # a disc inside rows 11..29, cols 18..36
    region = mask_region(valid)
    assert region == (slice(11, 30), slice(18, 37))
    assert mask_region(np.zeros((4, 4), bool)) == (slice(0, 0), slice(0, 0))
    full = point_cloud_from_depth(depth, K, valid)
    region_camera = crop_resize_intrinsics(K, 18, 11, 1.0)  # the region's own K
    for stride in (1, 3, 4):
        sampled = point_cloud_from_depth(depth[region], region_camera, valid[region], stride=stride, origin=(18, 11))
        on_grid = (full.pixels % stride == 0).all(axis=1)  # the grid starts at pixel (0, 0), not at the region
        np.testing.assert_array_equal(sampled.pixels, full.pixels[on_grid])
        np.testing.assert_allclose(sampled.points, full.points[on_grid], rtol=1e-6)


def test_point_cloud_concatenate_pads_missing_attributes() -> None:
    K = CAMERAS["square_centred"]
    first = point_cloud_from_depth(np.ones((2, 3)), K, canonical=np.full((2, 3, 3), 0.5))
    second = point_cloud_from_depth(np.full((1, 2), 2.0), K)
    both = PointCloud.concatenate([first, PointCloud.empty(), second])
    assert len(both) == 8 and both.confidence is None
    np.testing.assert_array_equal(both.points[6:, 2], [2.0, 2.0])
    np.testing.assert_array_equal(both.canonical[:6], 0.5)
    assert np.isnan(both.canonical[6:]).all()
    assert len(PointCloud.concatenate([])) == 0


def test_point_cloud_empty_and_errors() -> None:
    K = CAMERAS["square_centred"]
    assert len(PointCloud.empty()) == 0
    assert len(point_cloud_from_depth(np.full((4, 4), np.nan), K)) == 0
    with pytest.raises(ValueError, match="stride"):
        point_cloud_from_depth(np.ones((4, 4)), K, stride=0)
    with pytest.raises(ValueError, match="image must be a uint8 array"):
        point_cloud_from_depth(np.ones((4, 4)), K, image=np.ones((4, 4, 3)))
    with pytest.raises(ValueError, match="valid must be a bool array"):
        point_cloud_from_depth(np.ones((4, 4)), K, valid=np.ones((4, 5), dtype=bool))
    with pytest.raises(ValueError, match="PointCloud.colors"):
        PointCloud(np.zeros((2, 3), np.float32), np.zeros((3, 3), np.uint8), np.zeros((2, 2), np.int32))
