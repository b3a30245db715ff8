"""Novel cameras orbiting a posed face, for re-rendering (single views and smooth sequences).

World frame: the source camera's optical frame (x right, y down, z forward; metres). The face
frame is the world rotated by the face's head rotation ``face_rotation`` (template -> world), so
that yaw = pitch = roll = 0 looks at the face from the same side as a frontal source camera.
A camera at (yaw, pitch, roll, distance) sits at ``centre + R_face @ R_y(yaw) @ R_x(pitch) @ (0, 0,
-distance)`` and looks at the face centre, rolled by ``roll`` about its optical axis. Its focal
length makes the face span ``face_fill`` of the image: ``f = fill * S * distance / diameter``,
clipped to the focal range (pixels equivalent at 256 px). Poses are ``world_from_camera`` (4, 4):
``p_world = R @ p_camera + t``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from faceanything_ros.geometry.camera import intrinsics_matrix
from training.data.config import REFERENCE_SIZE, CameraSamplerConfig


@dataclass(frozen=True)
class CameraParameters:
    """Orbit parameters of one camera: angles in degrees, distance in metres, focal equivalent in
    pixels at 256 px, principal-point offset from the image centre as a fraction of the side, and
    ``face_fill`` (face diameter / image side) that set the focal length before clipping."""

    yaw_deg: float
    pitch_deg: float
    roll_deg: float
    distance_m: float
    face_fill: float
    principal_offset: tuple[float, float]

    def as_array(self) -> np.ndarray:
        """``(7,)`` float64 ``[yaw, pitch, roll, distance, fill, offset_u, offset_v]`` (for interpolation)."""
        return np.array([self.yaw_deg, self.pitch_deg, self.roll_deg, self.distance_m, self.face_fill,
                         *self.principal_offset], dtype=np.float64)

    @classmethod
    def from_array(cls, values: np.ndarray) -> "CameraParameters":
        """Inverse of ``as_array``."""
        v = [float(x) for x in values]
        return cls(v[0], v[1], v[2], v[3], v[4], (v[5], v[6]))


@dataclass(frozen=True)
class Camera:
    """A pinhole camera: ``intrinsics`` (3, 3) float64 pixels for a ``size x size`` image and
    ``world_from_camera`` (4, 4) float64 rigid pose (metres), plus the parameters it came from."""

    intrinsics: np.ndarray
    world_from_camera: np.ndarray
    size: int
    parameters: CameraParameters | None = None

    @property
    def camera_from_world(self) -> np.ndarray:
        """``(4, 4)`` float64 inverse pose: ``p_camera = R.T @ (p_world - t)``."""
        return invert_pose(self.world_from_camera)

    @property
    def focal_equivalent_px(self) -> float:
        """Focal length ``fx`` in pixels equivalent at 256 px output."""
        return float(self.intrinsics[0, 0] * REFERENCE_SIZE / self.size)

    def to_camera(self, points_world: np.ndarray) -> np.ndarray:
        """``(N, 3)`` world points -> ``(N, 3)`` float64 points in this camera's optical frame."""
        return transform_points(self.camera_from_world, points_world)


def invert_pose(pose: np.ndarray) -> np.ndarray:
    """``(4, 4)`` inverse of a rigid transform ``[[R, t], [0, 1]]`` (R orthonormal)."""
    rotation, translation = pose[:3, :3], pose[:3, 3]
    inverse = np.eye(4)
    inverse[:3, :3] = rotation.T
    inverse[:3, 3] = -rotation.T @ translation
    return inverse


def transform_points(pose: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``(N, 3)`` float64 points mapped by the ``(4, 4)`` rigid transform ``pose``: ``R @ p + t``."""
    return np.asarray(points, dtype=np.float64) @ pose[:3, :3].T + pose[:3, 3]


def orbit_camera(
    parameters: CameraParameters,
    face_centre: np.ndarray,
    face_rotation: np.ndarray,
    face_diameter_m: float,
    size: int,
    focal_range_px: tuple[float, float],
) -> Camera:
    """The ``Camera`` (``size`` x ``size`` pixels) at ``parameters`` around a face.

    face_centre: ``(3,)`` world point (metres) the camera looks at; face_rotation: ``(3, 3)`` head
    rotation template -> world; face_diameter_m: face extent (metres) used with ``face_fill``;
    focal_range_px: ``(min, max)`` focal length in pixels equivalent at 256 px.
    """
    if not face_diameter_m > 0:
        raise ValueError(f"face diameter must be positive metres, got {face_diameter_m}")
    orbit = Rotation.from_euler("YX", [parameters.yaw_deg, parameters.pitch_deg], degrees=True).as_matrix()
    roll = Rotation.from_euler("Z", parameters.roll_deg, degrees=True).as_matrix()
    rotation = np.asarray(face_rotation, dtype=np.float64) @ orbit
    pose = np.eye(4)
    pose[:3, :3] = rotation @ roll
    pose[:3, 3] = np.asarray(face_centre, dtype=np.float64) + rotation @ np.array([0.0, 0.0, -parameters.distance_m])
    scale = size / REFERENCE_SIZE
    focal = parameters.face_fill * size * parameters.distance_m / face_diameter_m
    focal = float(np.clip(focal, focal_range_px[0] * scale, focal_range_px[1] * scale))
    centre = (size - 1) / 2.0
    cx = centre + parameters.principal_offset[0] * size
    cy = centre + parameters.principal_offset[1] * size
    return Camera(intrinsics_matrix(focal, focal, cx, cy), pose, size, parameters)


class CameraSampler:
    """Draws novel-camera parameters uniformly within ``CameraSamplerConfig`` ranges (seeded)."""

    def __init__(self, config: CameraSamplerConfig | None = None) -> None:
        self.config = config or CameraSamplerConfig()

    def sample_parameters(self, rng: np.random.Generator) -> CameraParameters:
        """One ``CameraParameters`` draw from ``rng``."""
        c = self.config
        jitter = rng.uniform(-c.principal_point_jitter, c.principal_point_jitter, size=2)
        return CameraParameters(
            yaw_deg=float(rng.uniform(*c.yaw_deg)),
            pitch_deg=float(rng.uniform(*c.pitch_deg)),
            roll_deg=float(rng.uniform(*c.roll_deg)),
            distance_m=float(rng.uniform(*c.distance_m)),
            face_fill=float(rng.uniform(*c.face_fill)),
            principal_offset=(float(jitter[0]), float(jitter[1])),
        )

    def camera(self, parameters: CameraParameters, face_centre: np.ndarray, face_rotation: np.ndarray,
               face_diameter_m: float, size: int) -> Camera:
        """``orbit_camera`` with this sampler's focal range."""
        return orbit_camera(parameters, face_centre, face_rotation, face_diameter_m, size,
                            self.config.focal_equivalent_px)

    def sample_trajectory(
        self,
        rng: np.random.Generator,
        face_centres: np.ndarray,
        face_rotation: np.ndarray,
        face_diameter_m: float,
        size: int,
    ) -> list[Camera]:
        """``T`` cameras moving smoothly (linear in every parameter) from a random draw towards a
        second one, ``trajectory_span`` of the way (convex, so every frame stays within the ranges).

        face_centres: ``(T, 3)`` per-frame face centres (world, metres) each camera looks at;
        face_rotation: ``(3, 3)`` head rotation of the first frame, shared by the whole trajectory
        so that head motion in a video stays visible. ``T == 1`` gives one random camera.
        """
        face_centres = np.asarray(face_centres, dtype=np.float64).reshape(-1, 3)
        start = self.sample_parameters(rng).as_array()
        end = start + self.config.trajectory_span * (self.sample_parameters(rng).as_array() - start)
        steps = np.linspace(0.0, 1.0, len(face_centres)) if len(face_centres) > 1 else np.zeros(1)
        return [
            self.camera(CameraParameters.from_array(start + s * (end - start)), centre, face_rotation,
                        face_diameter_m, size)
            for s, centre in zip(steps, face_centres)
        ]
