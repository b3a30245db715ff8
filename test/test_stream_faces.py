"""Head pose (rigid template fit) on known geometry; no ROS."""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from faceanything_ros.canonical import load_canonical_space
from faceanything_ros.geometry.pointcloud import PointCloud
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
