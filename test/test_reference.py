"""The face-mesh reference method: Reconstruction objects like Predictor's, and ``reconstruct --method mesh``."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from conftest import face_image, face_video
from faceanything_ros.cli import main
from faceanything_ros.config import DetectorConfig, FaceMeshConfig, PredictorConfig, save_yaml
from faceanything_ros.export.depth import load_reconstruction_npz
from faceanything_ros.geometry.camera import intrinsics_from_fov, intrinsics_matrix
from faceanything_ros.geometry.pointcloud import mask_region
from faceanything_ros.geometry.projection import unproject_depth
from faceanything_ros.io.face_detector import FaceDetector
from faceanything_ros.io.frames import read_image
from faceanything_ros.reference import MeshReference, face_reconstruction_from_label, mesh_region


@pytest.fixture(scope="module")
def reference():
    with MeshReference(FaceMeshConfig(max_faces=2)) as reference:
        yield reference


def test_reconstruction_of_a_real_face(reference):
    rgb = read_image(face_image("mica_carell.jpg"))
    height, width = rgb.shape[:2]
    (result,) = reference.predict(rgb, frame_indices=[7])
    assert result.frame_index == 7 and result.image_size == (height, width) and result.message == "ok"
    assert result.intrinsics_source == "default-fov"
    np.testing.assert_allclose(result.intrinsics, intrinsics_from_fov(width, height, 60.0))
    (face,) = result.faces
    mask, depth = face.full("mask"), face.full("depth")
    assert mask.sum() > 10_000 and face.mask.size < 0.5 * mask.size  # maps over the face's region only
    np.testing.assert_array_equal(face.full("depth_confidence")[mask], 1.0)
    assert np.isnan(face.full("depth_confidence")[~mask]).all()
    assert np.isnan(face.full("canonical_confidence")[~mask]).all()
    assert np.isfinite(depth[mask]).all() and np.isnan(depth[~mask]).all()
    canonical = face.full("canonical")
    assert np.isnan(canonical[~mask]).all() and np.abs(canonical[mask]).max() <= 1 + 1e-5
    with FaceDetector(DetectorConfig()) as detector:
        detected = detector.detect(rgb)[0]
    assert face.face.x0 <= detected.center[0] <= face.face.x1 and face.face.y0 <= detected.center[1] <= face.face.y1
    # FaceBox keypoints in the detector's order: the subject's right eye is on the image's left
    assert face.face.keypoints.shape == (6, 2) and face.face.keypoints[0, 0] < face.face.keypoints[1, 0]
    np.testing.assert_allclose(face.face.keypoints[:4], detected.keypoints[:4], atol=0.1 * detected.width)
    rows, cols = face.region  # the raster's square grid from the region's corner, at most max_raster_side pixels
    side = max(rows.stop - rows.start, cols.stop - cols.start)
    assert (face.crop.x0, face.crop.y0, face.crop.side) == (cols.start, rows.start, side)
    assert face.crop.output_size == min(side, FaceMeshConfig().max_raster_side)
    assert face.crop.side == pytest.approx(max(face.face.width, face.face.height), abs=3)
    cloud = face.cloud
    assert len(cloud.points) == mask.sum()
    np.testing.assert_allclose(cloud.points, unproject_depth(depth, result.intrinsics)[mask], rtol=1e-6)
    np.testing.assert_array_equal(cloud.colors, rgb[mask])
    np.testing.assert_array_equal(result.depth[mask], depth[mask])


def test_maps_rendered_in_the_face_region_equal_the_full_image_render(reference):
    rgb = read_image(face_image("mica_carell.jpg"))
    height, width = rgb.shape[:2]
    K = intrinsics_matrix(700.0, 700.0, width / 2 - 20.5, height / 2 + 10.0)  # off-centre principal point
    (label,) = reference.labeler.label(rgb, K)
    rows, cols = mesh_region(label.landmarks_px, height, width)
    assert (rows.stop - rows.start) * (cols.stop - cols.start) < 0.5 * height * width  # the face's box only
    full = label.render(height, width)
    face = face_reconstruction_from_label(rgb, label, max_raster_side=256)  # the 241-pixel face: one pixel per pixel
    assert face.region == (rows, cols) and face.crop.scale == 1.0
    np.testing.assert_array_equal(face.full("mask"), full.mask)
    np.testing.assert_allclose(face.full("depth"), full.depth, rtol=1e-6, equal_nan=True)
    np.testing.assert_allclose(face.full("canonical"), full.canonical, atol=1e-6, equal_nan=True)
    face_rows, face_cols = np.nonzero(full.mask)
    np.testing.assert_array_equal(face.cloud.pixels, np.stack([face_cols, face_rows], axis=1))
    np.testing.assert_allclose(face.cloud.points, unproject_depth(full.depth, K)[full.mask], rtol=1e-5)
    on_grid = (face.cloud.pixels % 3 == 0).all(axis=1)  # point_stride 3: sampled before unprojection
    np.testing.assert_array_equal(face.point_cloud(3).points, face.cloud.points[on_grid])
    np.testing.assert_array_equal(face.point_cloud(3).colors, rgb[face_rows, face_cols][on_grid])


def test_a_face_larger_than_the_raster_limit_is_rasterised_coarser_and_resampled(reference):
    rgb = read_image(face_image("mica_carell.jpg"))
    height, width = rgb.shape[:2]
    K = intrinsics_matrix(700.0, 700.0, width / 2 - 20.5, height / 2 + 10.0)
    (label,) = reference.labeler.label(rgb, K)
    full = label.render(height, width)
    face = face_reconstruction_from_label(rgb, label, max_raster_side=96)  # the 241-pixel face on a 96-pixel grid
    assert face.crop.output_size == 96 and face.crop.side > 200
    assert face.region == mesh_region(label.landmarks_px, height, width)  # maps still over the whole face
    mask = face.full("mask")
    both = mask & full.mask
    assert both.sum() / (mask | full.mask).sum() > 0.98
    depth_mm = np.abs(face.full("depth")[both] - full.depth[both]) * 1000.0
    assert np.median(depth_mm) < 0.05 and np.percentile(depth_mm, 99) < 2.0  # off only where the nose hides the cheek
    canonical = np.linalg.norm(face.full("canonical")[both] - full.canonical[both], axis=-1)
    assert np.median(canonical) < 1e-3
    assert np.isnan(face.full("depth")[~mask]).all() and np.isfinite(face.full("depth")[mask]).all()
    with pytest.raises(ValueError, match="max_raster_side"):
        face_reconstruction_from_label(rgb, label, max_raster_side=0)


def test_tracking_mode_follows_a_video_like_image_mode_and_restarts_on_reset(reference):
    from faceanything_ros.io.frames import open_frames

    with open_frames(face_video("liveportrait_d3_woman_headturns.mp4"), max_frames=8) as source:
        frames = [frame.rgb for frame in source]
    with MeshReference(tracking=True) as tracking:
        tracked = [tracking.predict(frame)[0] for frame in frames]
        tracking.reset()
        (other,) = tracking.predict(read_image(face_image("mica_carell.jpg")))  # another stream, found afresh
    for frame, result in zip(frames, tracked):
        (alone,) = reference.predict(frame)
        overlap = (result.mask & alone.mask).sum() / (result.mask | alone.mask).sum()
        assert overlap > 0.9, overlap
    assert other.found and other.faces[0].num_pixels > 10_000


def test_given_intrinsics_two_faces_and_frames_without_a_face(reference):
    rgb = read_image(face_image("facerec_two_people.jpg"))
    height, width = rgb.shape[:2]
    K = intrinsics_matrix(900.0, 900.0, width / 2, height / 2)
    blank = np.full_like(rgb, 90)
    with_face, without = reference.predict(np.stack([rgb, blank]), K)
    assert with_face.intrinsics_source == without.intrinsics_source == "given"
    np.testing.assert_array_equal(with_face.intrinsics, K)
    assert len(with_face.faces) == 2
    assert with_face.faces[0].face.area >= with_face.faces[1].face.area
    assert not (with_face.faces[0].full("mask") & with_face.faces[1].full("mask")).any()  # two people side by side
    assert without.faces == [] and without.message == "no face mesh found"
    # the frame-level maps are made inside the faces' region: the bounding box of every face pixel
    assert with_face.region == mask_region(with_face.mask) and without.region == (slice(0, 0), slice(0, 0))
    with pytest.raises(ValueError, match="intrinsics"):
        reference.predict(rgb, np.full((3, 3), np.nan))


def test_cli_method_mesh_writes_the_same_files_as_the_model(tiny_checkpoint, tmp_path):
    video = face_video("liveportrait_d18_man_frontal_mouth.mp4")
    config = tmp_path / "predictor.yaml"
    save_yaml(PredictorConfig(mask_threshold=0.0), config)
    common = [str(video), "--config", str(config), "--max-frames", "3", "--window", "2", "--ply-every", "2",
              "--num-tracks", "40"]
    assert main(["reconstruct", *common, "-o", str(tmp_path / "model"), "--model", str(tiny_checkpoint)]) == 0
    assert main(["reconstruct", *common, "-o", str(tmp_path / "mesh"), "--method", "mesh"]) == 0

    def files(root):
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())

    assert files(tmp_path / "mesh") == files(tmp_path / "model")
    assert "maps/000002.npz" in files(tmp_path / "mesh")
    maps = load_reconstruction_npz(tmp_path / "mesh" / "maps" / "000001.npz")
    depth = maps["depth"][maps["mask"]]
    assert maps["mask"].sum() > 5_000 and 0.2 < depth.min() and depth.max() < 1.0
    tracks = np.load(tmp_path / "mesh" / "tracks.npz")
    # a frontal talking face shows most of the template's points, and keeps showing them
    assert tracks["visible"][0].mean() > 0.5 and tracks["visible"][1:].mean() > 0.5


def test_a_point_budget_samples_a_sparser_grid_whatever_the_resolution(reference):
    rgb = read_image(face_image("mica_carell.jpg"))
    (result,) = reference.predict(rgb)
    pixels = result.faces[0].num_cloud_pixels
    assert len(result.point_cloud(1)) == pixels and len(result.point_cloud(1, pixels)) == pixels
    budget = pixels // 10
    stride = math.ceil(math.sqrt(pixels / budget))
    sparse = result.point_cloud(1, budget)
    np.testing.assert_array_equal(sparse.pixels, result.point_cloud(stride).pixels)
    assert 0.5 * budget < len(sparse) <= budget
    np.testing.assert_array_equal(result.point_cloud(stride + 1, budget).pixels, result.point_cloud(stride + 1).pixels)
    (twice,) = reference.predict(cv2.resize(rgb, None, fx=2.0, fy=2.0, interpolation=cv2.INTER_LINEAR))
    assert twice.faces[0].num_cloud_pixels > 3.5 * pixels  # four times the face pixels ...
    assert 0.5 * budget < len(twice.point_cloud(1, budget)) <= budget  # ... and the same budget
    with pytest.raises(ValueError, match="max_points must be >= 0"):
        result.point_cloud(1, -1)
