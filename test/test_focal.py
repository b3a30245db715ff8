"""The focal length from predicted virtual-camera rays (geometry.rays) and its running estimate over a stream."""
from __future__ import annotations

import numpy as np
import pytest

from faceanything_ros.geometry.camera import intrinsics_matrix
from faceanything_ros.geometry.focal_estimate import StreamFocal
from faceanything_ros.geometry.rays import MIN_FIT_RAYS, fit_focal_scale, sample_crop_rays
from faceanything_ros.geometry.virtual_camera import pixel_virtual_directions, virtual_rays, virtual_rotation
from faceanything_ros.io.crop import CropBox

SIZE = 224  # crop side, pixels
WIDTH, HEIGHT = 1280, 960
FOCAL = 1000.0  # image focal length, pixels
CAMERA = intrinsics_matrix(FOCAL, FOCAL, (WIDTH - 1) / 2, (HEIGHT - 1) / 2)


def crop_of_focal(crop_focal: float, centre: tuple[float, float]) -> CropBox:
    """The crop about ``centre`` (image pixels) whose intrinsics have focal ``crop_focal`` (crop pixels)."""
    return CropBox.centred(*centre, SIZE * FOCAL / crop_focal, SIZE)


def true_rays(crop: CropBox, camera: np.ndarray = CAMERA) -> np.ndarray:
    """``(S, S, 3)`` unit rays of every crop pixel in the crop's virtual camera, as the network is trained."""
    crop_K = crop.intrinsics(camera)
    return virtual_rays(crop_K, virtual_rotation(crop_K, SIZE, SIZE), SIZE, SIZE)


def fitted_focal(rays: np.ndarray, crop: CropBox, reference: np.ndarray, stride: int = 1,
                 valid: np.ndarray | None = None, confidence: np.ndarray | None = None) -> float:
    """fx (pixels) of the camera fitted to a crop's ray map."""
    valid = np.ones((SIZE, SIZE), bool) if valid is None else valid
    confidence = np.ones((SIZE, SIZE)) if confidence is None else confidence
    return fit_focal_scale([sample_crop_rays(rays, confidence, valid, crop, stride)], reference) * reference[0, 0]


@pytest.mark.parametrize("centre", [(639.5, 479.5), (150.0, 120.0), (1150.0, 850.0)], ids=["centre", "tl", "br"])
def test_exact_rays_give_the_focal_of_any_crop(centre):
    crop = crop_of_focal(600.0, centre)
    reference = intrinsics_matrix(700.0, 700.0, CAMERA[0, 2], CAMERA[1, 2])  # the search starts 30 % off
    assert fitted_focal(true_rays(crop), crop, reference, stride=4) == pytest.approx(FOCAL, rel=1e-5)


def test_non_square_pixels_keep_the_reference_aspect():
    camera = intrinsics_matrix(FOCAL, 1.1 * FOCAL, 600.0, 500.0)
    crop = crop_of_focal(800.0, (300.0, 700.0))
    reference = intrinsics_matrix(700.0, 770.0, 600.0, 500.0)
    assert fitted_focal(true_rays(crop, camera), crop, reference, stride=4) == pytest.approx(FOCAL, rel=1e-5)


@pytest.mark.parametrize("noise", [0.01, 0.02])
def test_noisy_rays_of_a_narrow_crop_give_an_unbiased_focal(noise):
    """Crop focal 1500 px (an 8.5 degree crop): a regression of pixels on noisy ray ratios (with the
    principal point free) lands 2 % (noise 0.01) to 14 % (0.02) off here; fitting the rays' angles
    lands within 1 % on every draw."""
    crop = crop_of_focal(1500.0, (900.0, 300.0))
    reference = intrinsics_matrix(800.0, 800.0, CAMERA[0, 2], CAMERA[1, 2])
    rng = np.random.default_rng(7)
    errors = [fitted_focal(true_rays(crop) + rng.normal(scale=noise, size=(SIZE, SIZE, 3)), crop, reference) / FOCAL - 1
              for _ in range(5)]
    assert np.max(np.abs(errors)) < 0.01, errors
    assert abs(np.mean(errors)) < 0.005, errors


def test_confidence_and_valid_pixels_decide_which_rays_count():
    crop = crop_of_focal(600.0, (400.0, 300.0))
    rays = true_rays(crop)
    wrong = true_rays(crop, intrinsics_matrix(1.3 * FOCAL, 1.3 * FOCAL, CAMERA[0, 2], CAMERA[1, 2]))
    rays[:, : SIZE // 2] = wrong[:, : SIZE // 2]  # the left half belongs to another camera
    valid = np.ones((SIZE, SIZE), bool)
    valid[:, : SIZE // 2] = False
    assert fitted_focal(rays, crop, CAMERA, valid=valid) == pytest.approx(FOCAL, rel=1e-5)
    confidence = np.ones((SIZE, SIZE))
    confidence[:, : SIZE // 2] = 1e-9  # nearly no weight: nearly the right focal
    assert fitted_focal(rays, crop, CAMERA, confidence=confidence) == pytest.approx(FOCAL, rel=1e-3)
    assert fitted_focal(rays, crop, CAMERA) > 1.1 * FOCAL  # counted in full, the wrong half pulls it away
    rays[5, :] = np.nan
    rays[6, :] = [0.0, 0.0, -1.0]  # behind the camera
    assert fitted_focal(rays, crop, CAMERA, valid=valid) == pytest.approx(FOCAL, rel=1e-5)


def test_a_batch_of_cameras_gives_each_camera_s_crop_intrinsics_and_directions():
    """The focal scan evaluates all its candidate cameras at once: the batched crop intrinsics and
    pixel directions equal those of each camera alone."""
    crop = crop_of_focal(600.0, (400.0, 300.0))
    cameras = np.stack([intrinsics_matrix(f, 1.1 * f, 630.0, 470.0) for f in (500.0, 1000.0, 2000.0)])
    pixels = np.array([[0.0, 0.0], [100.0, 37.0], [SIZE - 1.0, SIZE - 1.0]])
    crop_Ks = crop.intrinsics(cameras)
    rotations = virtual_rotation(crop_Ks, SIZE, SIZE)
    directions = pixel_virtual_directions(crop_Ks, rotations, pixels)
    assert directions.shape == (3, 3, 3)
    for camera, crop_K, rotation, batched in zip(cameras, crop_Ks, rotations, directions):
        np.testing.assert_allclose(crop_K, crop.intrinsics(camera), rtol=1e-12)
        np.testing.assert_allclose(batched, pixel_virtual_directions(crop_K, rotation, pixels), rtol=1e-12)
        unit = batched / np.linalg.norm(batched, axis=-1, keepdims=True)
        rays = virtual_rays(crop_K, rotation, SIZE, SIZE)[pixels[:, 1].astype(int), pixels[:, 0].astype(int)]
        np.testing.assert_allclose(unit, rays, atol=1e-12)


def test_too_few_rays_and_bad_shapes_are_refused():
    crop = crop_of_focal(600.0, (400.0, 300.0))
    valid = np.zeros((SIZE, SIZE), bool)
    valid[0, :MIN_FIT_RAYS - 1] = True
    with pytest.raises(ValueError, match=f"only {MIN_FIT_RAYS - 1} usable rays"):
        sample_crop_rays(true_rays(crop), np.ones((SIZE, SIZE)), valid, crop, 1)
    with pytest.raises(ValueError, match="must match the crop side"):
        sample_crop_rays(true_rays(crop)[:10], np.ones((SIZE, SIZE)), valid, crop, 1)
    with pytest.raises(ValueError, match="at least one crop"):
        fit_focal_scale([], CAMERA)


def test_stream_focal_is_the_median_of_recent_frames_and_restarts_with_the_camera():
    stream = StreamFocal(history=5)
    assert stream.observe((480, 640, "cam"), None) is None  # no face yet
    for focal in (500.0, 510.0, 490.0, 505.0):
        stream.observe((480, 640, "cam"), focal)
    assert stream.observe((480, 640, "cam"), 5000.0) == 505.0  # one wild frame moves the median little
    assert stream.observe((480, 640, "cam"), None) == 505.0  # a frame without a face keeps it
    assert stream.observe((480, 640, "cam"), 495.0) == 505.0  # the oldest (500) left: 510 490 505 5000 495
    assert stream.observe((480, 640, "other"), 700.0) == 700.0  # another frame_id starts over
    assert stream.observe((240, 320, "other"), None) is None  # another image size too
    stream.observe((240, 320, "other"), 300.0)
    stream.reset()
    assert stream.observe((240, 320, "other"), None) is None
    with pytest.raises(ValueError, match="positive number of pixels"):
        stream.observe((240, 320, "other"), -3.0)
    with pytest.raises(ValueError, match="at least 1 frame"):
        StreamFocal(0)
