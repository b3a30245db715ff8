"""Head pose (rigid template fit) and stable face ids, on known geometry; no ROS."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from scipy.spatial.transform import Rotation

from faceanything_ros.canonical import load_canonical_space
from faceanything_ros.geometry.pointcloud import PointCloud
from faceanything_ros.stream.face_ids import FaceIdentities, box_iou
from faceanything_ros.stream.head_pose import FACE_AXES_IN_TEMPLATE, fit_head_pose


def cloud_of(points: np.ndarray, canonical: np.ndarray) -> PointCloud:
    count = len(points)
    return PointCloud(points=points.astype(np.float32), colors=np.zeros((count, 3), np.uint8),
                      pixels=np.zeros((count, 2), np.int32), canonical=canonical.astype(np.float32))


def test_head_pose_recovers_a_known_rigid_motion_of_the_template():
    space = load_canonical_space()
    rotation = Rotation.from_euler("xyz", [10.0, -25.0, 5.0], degrees=True).as_matrix()
    translation = np.array([0.05, -0.02, 0.6])
    rng = np.random.default_rng(0)
    camera = space.template @ rotation.T + translation + rng.normal(0.0, 0.001, space.template.shape)
    pose = fit_head_pose(cloud_of(camera, space.canonical_template), space)
    np.testing.assert_allclose(pose.rotation, rotation @ FACE_AXES_IN_TEMPLATE, atol=0.01)
    np.testing.assert_allclose(pose.translation, translation, atol=0.002)  # the template origin
    assert 0.0005 < pose.rms_m < 0.003  # the 1 mm noise per axis
    np.testing.assert_allclose(np.linalg.norm(pose.quaternion_xyzw()), 1.0)
    assert fit_head_pose(cloud_of(camera[:5], space.canonical_template[:5]), space) is None  # too few points


def face(x0: float, canonical_mean: tuple[float, float, float]) -> SimpleNamespace:
    canonical = np.tile(np.asarray(canonical_mean, np.float32), (10, 1))
    return SimpleNamespace(face=SimpleNamespace(x0=x0, y0=100.0, x1=x0 + 100.0, y1=200.0),
                           cloud=SimpleNamespace(canonical=canonical))


def test_face_ids_follow_boxes_and_canonical_consistency():
    assert box_iou(np.array([[0, 0, 10, 10]]), np.array([[5, 0, 15, 10], [20, 0, 30, 10]])).tolist() == [[1 / 3, 0]]
    ids = FaceIdentities()
    assert ids.assign([face(0.0, (0, 0, 0)), face(300.0, (0, 0, 0))]) == [1, 2]
    assert ids.assign([face(310.0, (0, 0, 0)), face(5.0, (0, 0, 0))]) == [2, 1]  # order changed, ids kept
    assert ids.assign([face(8.0, (0.5, 0, 0)), face(320.0, (0, 0, 0))]) == [3, 2]  # same box, other face part
    assert ids.assign([]) == []
    assert ids.assign([face(320.0, (0, 0, 0))]) == [2]  # remembered over a missed frame
    ids.reset()
    assert ids.assign([face(320.0, (0, 0, 0))]) == [4]  # ids are never reused
