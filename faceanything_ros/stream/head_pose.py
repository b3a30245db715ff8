"""Head pose: the rigid fit of the canonical template to a face's metric points.

Each face pixel has a canonical coordinate (which facial point it is) and a metric 3-D point in
the camera optical frame. ``CanonicalSpace.denormalize`` maps the canonical coordinate to that
point's position on the metric template (metres, template frame); the rotation and translation
taking template positions onto camera points in the least-squares sense (Kabsch, no scale) is the
head pose.

Face frame (REP 103 body convention): origin at the template's origin (the mean point of the
template mesh, inside the face behind the nose); x forward, out of the face along the direction
the face looks; y to the subject's left; z up, towards the top of the head. In a frontal view x
points towards the camera (the optical frame's -z), y to the image's right, z up (image -y).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from faceanything_ros.canonical.space import CanonicalSpace
from faceanything_ros.geometry.pointcloud import PointCloud
from faceanything_ros.reconstruction import FaceReconstruction

# face-frame axes (columns: x forward, y left, z up) in the template frame (x the subject's left,
# y down, z from the face into the head)
FACE_AXES_IN_TEMPLATE = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, -1.0], [-1.0, 0.0, 0.0]])
MIN_POSE_POINTS = 10  # fewer face points give no pose
MAX_POSE_POINTS = 4096  # points used in the fit, evenly sampled (the fit's cost stays flat with face size)


@dataclass(frozen=True)
class HeadPose:
    """The face frame in the camera optical frame.

    rotation: ``(3, 3)`` float64, columns the face frame's x, y, z axes in the camera frame.
    translation: ``(3,)`` float64 metres, the face frame's origin in the camera frame.
    rms_m: root-mean-square distance, metres, of the fitted template points to the face points.
    """

    rotation: np.ndarray
    translation: np.ndarray
    rms_m: float

    def quaternion_xyzw(self) -> np.ndarray:
        """``(4,)`` float64 unit quaternion ``(x, y, z, w)`` of ``rotation`` (ROS order)."""
        return Rotation.from_matrix(self.rotation).as_quat()


def face_head_pose(face: FaceReconstruction, space: CanonicalSpace) -> HeadPose | None:
    """``fit_head_pose`` of a face's points on the coarsest pixel grid that still holds at least about
    ``MAX_POSE_POINTS`` of them (sampled before unprojection, so the fit's cost stays flat with the face's
    size; ``fit_head_pose`` then takes ``MAX_POSE_POINTS`` evenly)."""
    stride = max(1, int(np.sqrt(face.num_cloud_pixels / MAX_POSE_POINTS)))
    return fit_head_pose(face.point_cloud(stride), space)


def fit_head_pose(cloud: PointCloud, space: CanonicalSpace) -> HeadPose | None:
    """The head pose of one face from its ``cloud`` (points, metres, with ``canonical`` coordinates).

    None when the cloud has no canonical attribute or fewer than ``MIN_POSE_POINTS`` finite points.
    """
    if cloud.canonical is None:
        return None
    finite = np.isfinite(cloud.points).all(axis=1) & np.isfinite(cloud.canonical).all(axis=1)
    index = np.flatnonzero(finite)
    if len(index) < MIN_POSE_POINTS:
        return None
    index = index[np.linspace(0, len(index) - 1, min(len(index), MAX_POSE_POINTS)).astype(np.int64)]
    camera = cloud.points[index].astype(np.float64)
    template = space.denormalize(cloud.canonical[index])
    camera_mean, template_mean = camera.mean(axis=0), template.mean(axis=0)
    rotation, rssd = Rotation.align_vectors(camera - camera_mean, template - template_mean)
    camera_from_template = rotation.as_matrix()
    return HeadPose(rotation=camera_from_template @ FACE_AXES_IN_TEMPLATE,
                    translation=camera_mean - camera_from_template @ template_mean,
                    rms_m=float(rssd / np.sqrt(len(index))))
