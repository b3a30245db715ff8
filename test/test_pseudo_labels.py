"""Face-mesh pseudo-labels: exact pose recovery on synthetic faces, render consistency, real faces."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from conftest import face_image
from scene_net import exact_landmarks
from faceanything_ros.canonical import FaceMeshLabeler, label_from_landmarks, load_canonical_space
from faceanything_ros.canonical.fitting import similarity_transform
from faceanything_ros.canonical.mediapipe_space import NOSE_TIP
from faceanything_ros.canonical.topology import NUM_SURFACE_LANDMARKS
from faceanything_ros.config import DetectorConfig, FaceMeshConfig
from faceanything_ros.geometry.camera import intrinsics_from_fov, intrinsics_matrix
from faceanything_ros.geometry.projection import project_points
from faceanything_ros.io.face_detector import FaceDetector
from faceanything_ros.io.face_mesh import FaceLandmarks
from faceanything_ros.io.frames import read_image

K = intrinsics_matrix(800.0, 790.0, 330.0, 250.0)
REAL_IMAGES = ("mica_carell.jpg", "deca_aflw2000_image00202.jpg", "facerec_obama.jpg", "deca_exp_6_scream.jpg")


@pytest.fixture(scope="module")
def space():
    return load_canonical_space()


@pytest.fixture(scope="module")
def labeler():
    with FaceMeshLabeler() as labeler:
        yield labeler


def _boundary_vertices(triangles: np.ndarray) -> set[int]:
    """Vertices on edges used by a single triangle."""
    edges = np.sort(np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]]), axis=1)
    unique, counts = np.unique(edges, axis=0, return_counts=True)
    return set(unique[counts == 1].ravel().tolist())


@pytest.mark.parametrize("angles, translation, face_scale", [
    ((0.0, 0.0, 0.0), (0.0, 0.0, 0.5), 1.0),
    ((25.0, -15.0, 10.0), (0.03, -0.02, 0.7), 1.0),
    ((-40.0, 20.0, -12.0), (-0.05, 0.04, 1.2), 1.1),
])
def test_known_pose_is_recovered_exactly(space, angles, translation, face_scale):
    R = Rotation.from_euler("yxz", angles, degrees=True).as_matrix()
    t = np.array(translation)
    posed = face_scale * space.template @ R.T + t
    label = label_from_landmarks(exact_landmarks(posed, K), K, space, face_scale=face_scale)
    np.testing.assert_allclose(label.rotation, R, atol=1e-6)
    np.testing.assert_allclose(label.translation, t, atol=1e-6)
    np.testing.assert_allclose(label.vertices, posed, atol=1e-6)
    assert label.scale == face_scale
    np.testing.assert_array_equal(label.intrinsics, K)


def test_expression_is_kept_by_lifting_landmarks(space):
    R, t = Rotation.from_euler("y", 10, degrees=True).as_matrix(), np.array([0.0, 0.0, 0.6])
    template = space.template.copy()
    jaw = template[:, 1] > 0.04  # everything below the mouth drops by 15 mm: an open jaw
    template[jaw, 1] += 0.015
    posed = template @ R.T + t
    label = label_from_landmarks(exact_landmarks(posed, K), K, space)
    pixels, _ = project_points(label.vertices, K)
    np.testing.assert_allclose(pixels, project_points(posed, K)[0], atol=1e-9)
    # up to a similarity (the fit's depth offset), the lifted mesh has the open jaw; the rigid template has not
    def misfit(points: np.ndarray) -> float:
        scale, rotation, shift = similarity_transform(points, posed)
        return float(np.linalg.norm(scale * points @ rotation.T + shift - posed, axis=1).max())

    rigid = space.template @ label.rotation.T + label.translation
    assert misfit(label.vertices) < 0.002 and misfit(rigid) > 0.006


def test_render_is_consistent_with_the_mesh(space):
    R, t = Rotation.from_euler("yx", (20, -10), degrees=True).as_matrix(), np.array([0.01, 0.0, 0.45])
    label = label_from_landmarks(exact_landmarks(space.template @ R.T + t, K), K, space)
    labels = label.render(480, 640)
    pixels, depth = project_points(label.vertices, K)
    column, row = np.round(pixels).astype(int).T
    assert labels.visible[:NUM_SURFACE_LANDMARKS].mean() > 0.7  # a 20 degree yaw hides part of one side
    interior = np.ones(len(label.vertices), dtype=bool)
    interior[list(_boundary_vertices(label.triangles))] = False  # outline, eye and mouth rims may round off the mesh
    interior[NUM_SURFACE_LANDMARKS:] = False  # iris points sit in the eye holes
    chosen = interior & labels.visible
    assert chosen.sum() > 250
    on_mask = labels.mask[row, column] & chosen
    assert on_mask.sum() >= chosen.sum() - 3  # a few vertices on the turned side's silhouette round off the mesh
    # depth at the nearest pixel centre of a vertex differs by the local slope times <= 0.7 pixel
    # (0.4 mm at 0.45 m, f = 800 px): sub-millimetre on the face, more on steep nose sides
    error = np.abs(labels.depth[row[on_mask], column[on_mask]] - depth[on_mask])
    assert np.median(error) < 0.0005 and np.percentile(error, 90) < 0.002
    nose = labels.canonical[row[NOSE_TIP], column[NOSE_TIP]]
    np.testing.assert_allclose(nose, space.canonical_template[NOSE_TIP], atol=0.02)
    assert np.isnan(labels.depth[~labels.mask]).all() and np.isnan(labels.canonical[~labels.mask]).all()
    assert np.nanmin(labels.canonical) >= -1 - 1e-5 and np.nanmax(labels.canonical) <= 1 + 1e-5
    turned = Rotation.from_euler("y", 80, degrees=True).as_matrix()
    side = label_from_landmarks(exact_landmarks(space.template @ turned.T + t, K), K, space).render(480, 640)
    # +80 degrees about y brings the template's +x side (left tragion 454) towards the camera; 234 turns away
    assert (space.template[[454, 234]] @ turned.T)[:, 2].tolist() == sorted((space.template[[454, 234]] @ turned.T)[:, 2])
    assert side.visible[454] and not side.visible[234]


@pytest.mark.parametrize("name", REAL_IMAGES)
def test_real_faces_give_plausible_metric_labels(labeler, space, name):
    rgb = read_image(face_image(name))
    height, width = rgb.shape[:2]
    labels = labeler.label(rgb)
    assert len(labels) == 1
    label = labels[0]
    np.testing.assert_allclose(label.intrinsics, intrinsics_from_fov(width, height, 60.0))
    np.testing.assert_allclose(project_points(label.vertices, label.intrinsics)[0], label.landmarks_px, atol=1e-6)
    np.testing.assert_allclose(label.rotation @ label.rotation.T, np.eye(3), atol=1e-9)
    assert np.linalg.det(label.rotation) == pytest.approx(1.0)
    pixels = label.render(height, width)
    with FaceDetector(DetectorConfig()) as detector:
        box = detector.detect(rgb)[0]
    u, v = (round(c) for c in box.center)
    assert pixels.mask[v, u]
    depth = pixels.depth[pixels.mask]
    # tight face crops at the default 60 degree field of view put the face about 0.2 m away
    assert 0.15 < depth.min() and depth.max() < 3.0
    assert depth.max() - depth.min() < 0.2  # one face, not a smear through the scene
    nose_u, nose_v = np.round(label.landmarks_px[NOSE_TIP]).astype(int)
    np.testing.assert_allclose(pixels.canonical[nose_v, nose_u], space.canonical_template[NOSE_TIP], atol=0.05)
    assert pixels.visible[NOSE_TIP]


def test_no_face_and_bad_input(labeler):
    assert labeler.label(np.full((120, 160, 3), 127, dtype=np.uint8)) == []
    with pytest.raises(TypeError, match="uint8"):
        labeler.label(np.zeros((120, 160, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="intrinsics"):
        labeler.label(np.zeros((120, 160, 3), dtype=np.uint8), np.eye(2))
    with pytest.raises(ValueError, match="NaN"):
        label_from_landmarks(FaceLandmarks(np.full((478, 2), np.nan), np.zeros(478)), K, load_canonical_space())


def test_given_intrinsics_and_face_scale_set_the_metric_depth(space):
    rgb = read_image(face_image("mica_carell.jpg"))
    height, width = rgb.shape[:2]
    with FaceMeshLabeler(space, FaceMeshConfig(face_scale=1.2)) as big:
        wide = intrinsics_from_fov(width, height, 60.0)
        narrow = intrinsics_from_fov(width, height, 30.0)
        depth_wide = big.label(rgb, wide)[0].translation[2]
        depth_narrow = big.label(rgb, narrow)[0].translation[2]
    with FaceMeshLabeler(space) as mean_face:
        depth_mean = mean_face.label(rgb, wide)[0].translation[2]
    # the same image: depth scales with the focal length and with the assumed face size
    assert depth_narrow / depth_wide == pytest.approx(narrow[0, 0] / wide[0, 0], rel=0.02)
    assert depth_wide / depth_mean == pytest.approx(1.2, rel=0.01)
