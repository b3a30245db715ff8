"""Predictor: real faces through detection, crop, network and paste-back.

Alignment is checked with an analytic stand-in for the network (known rays, depth and canonical
map per crop; the geometry of faces anywhere in the image is ``test_off_centre``'s); the real
(untrained) tiny network checks wiring, shapes and alignment.
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import face_image, face_video
from faceanything_ros.config import DetectorConfig, PredictorConfig
from faceanything_ros.geometry.camera import intrinsics_matrix
from faceanything_ros.geometry.projection import project_points
from faceanything_ros.geometry.rays import rays_from_intrinsics
from faceanything_ros.io.crop import crop_footprint
from faceanything_ros.io.frames import open_frames, read_image
from faceanything_ros.model.checkpoint import CheckpointError
from faceanything_ros.model.prediction import ModelPrediction
from faceanything_ros.predictor import Predictor

CROP_FOCAL = 300.0  # focal length (crop pixels) the analytic network's rays imply
PLANE_DEPTH = 0.6  # metres: the analytic network sees a fronto-parallel plane
FACE_RADIUS = 70.0  # crop pixels: the analytic face mask is a disk about the crop centre


class AnalyticNet:
    """Stands in for FaceAnythingNet: the virtual rays of a crop camera with focal ``CROP_FOCAL``, a plane
    in the virtual camera, a disk mask."""

    def __init__(self, size: int):
        self.size = size
        self.crop_intrinsics = intrinsics_matrix(CROP_FOCAL, CROP_FOCAL, (size - 1) / 2, (size - 1) / 2)

    def infer(self, images: np.ndarray, flip_average: bool = False) -> ModelPrediction:
        """The analytic maps (``flip_average`` is the predictor's setting; these maps need no averaging)."""
        frames, size = images.shape[0], self.size
        v, u = np.mgrid[0:size, 0:size].astype(np.float32)
        disk = ((u - (size - 1) / 2) ** 2 + (v - (size - 1) / 2) ** 2 <= FACE_RADIUS ** 2).astype(np.float32)
        canonical = np.stack([u / size * 2 - 1, v / size * 2 - 1, np.zeros_like(u)], axis=-1)
        tile = lambda a: np.repeat(a[None], frames, axis=0).astype(np.float32)  # noqa: E731
        return ModelPrediction(
            depth=tile(np.full((size, size), PLANE_DEPTH)), depth_confidence=tile(np.full((size, size), 2.0)),
            rays=tile(rays_from_intrinsics(self.crop_intrinsics, size, size)),
            ray_confidence=tile(np.full((size, size), 2.0)), canonical=tile(canonical),
            canonical_confidence=tile(np.full((size, size), 3.0)), mask_probability=tile(disk),
        )


@pytest.fixture(scope="module")
def predictor(tiny_checkpoint):
    with Predictor(tiny_checkpoint) as predictor:
        yield predictor


@pytest.fixture
def analytic(tiny_checkpoint):
    """A predictor whose engine runs AnalyticNet (detection, crop and paste-back are real)."""
    with Predictor(tiny_checkpoint) as predictor:
        predictor.engine = AnalyticNet(predictor.input_size)
        yield predictor


def test_mask_and_cloud_are_aligned_with_the_image(analytic):
    image = read_image(face_image("mica_carell.jpg"))
    (reconstruction,) = analytic.predict(image)
    face = reconstruction.faces[0]
    height, width = image.shape[:2]
    # The face's maps cover the part of the crop's footprint that its face pixels reach (the disk's box
    # grown by a crop pixel), not the whole crop; full() puts them on the image grid.
    rows, cols = face.region
    footprint = crop_footprint(face.crop, height, width)
    assert all(outer.start <= inner.start < inner.stop <= outer.stop for inner, outer in zip(face.region, footprint))
    disk, margin = 2 * FACE_RADIUS / face.crop.scale, 2 / face.crop.scale + 3
    assert rows.stop - rows.start == pytest.approx(disk, abs=margin) and cols.stop - cols.start == pytest.approx(disk, abs=margin)
    assert disk + margin < face.crop.side
    assert face.depth.shape == (rows.stop - rows.start, cols.stop - cols.start) and face.canonical.shape[2] == 3
    depth, mask, canonical = face.full("depth"), face.full("mask"), face.full("canonical")
    assert depth.shape == (height, width) and canonical.shape == (height, width, 3)
    np.testing.assert_array_equal(mask[face.region], face.mask)
    # The disk mask lands as a disk of radius FACE_RADIUS / scale about the crop centre.
    rows, cols = np.nonzero(mask)
    centre = face.crop.crop_pixels_to_image(np.array([[(analytic.input_size - 1) / 2] * 2]))[0]
    assert abs(cols.mean() - centre[0]) < 0.5 and abs(rows.mean() - centre[1]) < 0.5
    assert mask.sum() == pytest.approx(np.pi * (FACE_RADIUS / face.crop.scale) ** 2, rel=0.03)
    assert np.isnan(depth[~mask]).all() and np.isfinite(depth[mask]).all()
    # Every cloud point reprojects onto its own pixel, with the depth there and the pixel's colour.
    cloud = face.cloud
    assert len(cloud) == mask.sum()
    pixels, cloud_depth = project_points(cloud.points, reconstruction.intrinsics)
    np.testing.assert_allclose(pixels, cloud.pixels, atol=1e-3)
    np.testing.assert_allclose(cloud_depth, depth[cloud.pixels[:, 1], cloud.pixels[:, 0]], rtol=1e-5)
    np.testing.assert_array_equal(cloud.colors, image[cloud.pixels[:, 1], cloud.pixels[:, 0]])
    # The canonical map is the crop's pixel grid pasted back: (c + 1) * size / 2 - 0.5 recovers crop u,
    # exactly inside the disk; at its edge only face pixels are read, at most one crop pixel away.
    crop_u = (canonical[mask][:, 0] + 1) * analytic.input_size / 2
    image_u = face.crop.crop_pixels_to_image(np.stack([crop_u, crop_u], 1))[:, 0]
    assert np.mean(np.abs(image_u - cols) < 0.1) > 0.97
    assert np.abs(image_u - cols).max() < 1 / face.crop.scale


def test_real_network_on_real_faces_is_found_and_shaped(predictor):
    image = read_image(face_image("deca_aflw2000_image00202.jpg"))
    (reconstruction,) = predictor.predict(image)
    assert reconstruction.found and reconstruction.message == "ok" and reconstruction.image_size == (450, 450)
    face = reconstruction.faces[0]
    assert 0.5 < face.face.score <= 1.0
    assert face.face.x0 < 225 < face.face.x1 and face.face.y0 < 225 < face.face.y1  # a centred AFLW crop
    inside = np.isfinite(face.depth_confidence)
    assert inside.any() and (face.depth_confidence[inside] >= 1).all()
    assert np.allclose(reconstruction.intrinsics[2], [0, 0, 1]) and reconstruction.intrinsics[0, 0] > 0


def test_window_of_video_frames_shares_one_camera(predictor):
    with open_frames(face_video("liveportrait_d18_man_frontal_mouth.mp4"), max_frames=4) as source:
        frames = np.stack([frame.rgb for frame in source])
    reconstructions = predictor.predict(frames, frame_indices=range(10, 14))
    assert [r.frame_index for r in reconstructions] == [10, 11, 12, 13]
    assert all(r.found for r in reconstructions)
    for r in reconstructions[1:]:
        np.testing.assert_array_equal(r.intrinsics, reconstructions[0].intrinsics)



def test_context_frames_with_kept_detections_give_the_same_last_frame(predictor):
    """Streaming: earlier frames as context (no paste-back) with their detections kept from before."""
    with open_frames(face_video("liveportrait_d18_man_frontal_mouth.mp4"), max_frames=3) as source:
        frames = np.stack([frame.rgb for frame in source])
    camera = intrinsics_matrix(500.0, 500.0, 239.5, 239.5)
    full = predictor.predict(frames, camera, frame_indices=[4, 5, 6])
    kept = [[face.face for face in r.faces] for r in full[:2]] + [None]
    (last,) = predictor.predict(frames, camera, frame_indices=[4, 5, 6], context_frames=2, detections=kept)
    assert full[2].found and last.frame_index == 6 and last.intrinsics_source == full[2].intrinsics_source
    np.testing.assert_array_equal(last.intrinsics, full[2].intrinsics)
    np.testing.assert_array_equal(last.depth, full[2].depth)
    np.testing.assert_array_equal(last.canonical, full[2].canonical)
    with pytest.raises(ValueError, match="context_frames"):
        predictor.predict(frames, context_frames=3)
    with pytest.raises(ValueError, match="detections has 2 entries"):
        predictor.predict(frames, detections=kept[:2])

def test_max_faces_gives_each_face_its_own_result(tiny_checkpoint):
    image = read_image(face_image("facerec_two_people.jpg"))
    config = PredictorConfig(detector=DetectorConfig(max_faces=2))
    with Predictor(tiny_checkpoint, config=config) as predictor:
        (reconstruction,) = predictor.predict(image)
    first, second = reconstruction.faces
    assert first.face.area >= second.face.area
    assert first.crop != second.crop and abs(first.face.center[0] - second.face.center[0]) > 200


def test_no_face_gives_an_empty_result_that_says_so(predictor):
    grey = np.full((240, 320, 3), 128, np.uint8)
    (reconstruction,) = predictor.predict(grey)
    assert not reconstruction.found and reconstruction.faces == []
    assert reconstruction.message == "no face detected"
    assert reconstruction.intrinsics_source == "default-fov" and np.isnan(reconstruction.depth).all()
    assert len(reconstruction.cloud) == 0


@pytest.mark.parametrize("frames, message", [
    (np.zeros((0, 64, 3), np.uint8), "empty"),
    (np.zeros((1, 1, 3), np.uint8), "too small"),
    (np.zeros((10_000, 10_000, 3), np.uint8), "too large"),
    (np.zeros((64, 64, 3), np.float64), "uint8"),
    (np.zeros((64, 64), np.uint8), "3"),
])
def test_bad_frames_get_clear_errors(predictor, frames, message):
    with pytest.raises((ValueError, TypeError), match=message):
        predictor.predict(frames)


def test_bad_intrinsics_and_checkpoints_get_clear_errors(predictor, tmp_path):
    image = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(ValueError, match="NaN"):
        predictor.predict(image, intrinsics=intrinsics_matrix(np.nan, 500, 32, 32))
    with pytest.raises(CheckpointError, match="missing.safetensors"):
        Predictor(tmp_path / "missing.safetensors")
