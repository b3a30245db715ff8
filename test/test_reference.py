"""The face-mesh reference method: Reconstruction objects like Predictor's, and ``reconstruct --method mesh``."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import face_image, face_video
from faceanything_ros.cli import main
from faceanything_ros.config import DetectorConfig, FaceMeshConfig, PredictorConfig, save_yaml
from faceanything_ros.geometry.camera import intrinsics_from_fov, intrinsics_matrix
from faceanything_ros.geometry.projection import unproject_depth
from faceanything_ros.io.face_detector import FaceDetector
from faceanything_ros.io.frames import read_image
from faceanything_ros.reference import MeshReference


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
    mask = face.mask
    assert mask.sum() > 10_000
    np.testing.assert_array_equal(face.depth_confidence[mask], 1.0)
    assert np.isnan(face.depth_confidence[~mask]).all() and np.isnan(face.canonical_confidence[~mask]).all()
    assert np.isfinite(face.depth[mask]).all() and np.isnan(face.depth[~mask]).all()
    assert np.isnan(face.canonical[~mask]).all() and np.abs(face.canonical[mask]).max() <= 1 + 1e-5
    with FaceDetector(DetectorConfig()) as detector:
        detected = detector.detect(rgb)[0]
    assert face.face.x0 <= detected.center[0] <= face.face.x1 and face.face.y0 <= detected.center[1] <= face.face.y1
    # FaceBox keypoints in the detector's order: the subject's right eye is on the image's left
    assert face.face.keypoints.shape == (6, 2) and face.face.keypoints[0, 0] < face.face.keypoints[1, 0]
    np.testing.assert_allclose(face.face.keypoints[:4], detected.keypoints[:4], atol=0.1 * detected.width)
    assert face.crop.side == pytest.approx(max(face.face.width, face.face.height))
    cloud = face.cloud
    assert len(cloud.points) == mask.sum()
    np.testing.assert_allclose(cloud.points, unproject_depth(face.depth, result.intrinsics)[mask], rtol=1e-6)
    np.testing.assert_array_equal(cloud.colors, rgb[mask])
    np.testing.assert_array_equal(result.depth[mask], face.depth[mask])


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
    assert not (with_face.faces[0].mask & with_face.faces[1].mask).any()  # two people side by side
    assert without.faces == [] and without.message == "no face mesh found"
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
    maps = np.load(tmp_path / "mesh" / "maps" / "000001.npz")
    depth = maps["depth"][maps["mask"]]
    assert maps["mask"].sum() > 5_000 and 0.2 < depth.min() and depth.max() < 1.0
    tracks = np.load(tmp_path / "mesh" / "tracks.npz")
    # a frontal talking face shows most of the template's points, and keeps showing them
    assert tracks["visible"][0].mean() > 0.5 and tracks["visible"][1:].mean() > 0.5
