"""Novel cameras for re-rendering: a face anywhere in a full camera frame, seen through the
detector-like square crop that inference would make (single views and smooth sequences).

World frame: the source camera's optical frame (x right, y down, z forward; metres). The face
frame is the world rotated by the face's head rotation ``face_rotation`` (template -> world), so
that yaw = pitch = roll = 0 looks at the face from the same side as a frontal source camera.

A draw places a *look-at* camera at ``centre + R_face @ R_y(yaw) @ R_x(pitch) @ (0, 0, -distance)``
looking at the face centre, rolled by ``roll``. The physical camera has the same centre but is
turned so that the face centre appears at ``frame_position`` (fractions of a ``frame_width x
frame_height`` image with horizontal field of view ``hfov_deg`` and the principal point at the
image centre), so the face is seen obliquely when off-centre, as a real camera sees it. The
sample image is the square crop the predictor would make around the face: the face's projected
box (mesh extent) times ``crop_scale``, shifted by ``crop_shift`` (fractions of the crop side),
resampled to ``size`` pixels (``faceanything_ros.io.crop.CropBox``): so the crop's principal point
is wherever the image's lies, often far outside the crop. ``Camera.in_frame`` says which crop
pixels lie inside the full image (the rest is padding, as at run time). Poses are
``world_from_camera`` (4, 4): ``p_world = R @ p_camera + t``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from faceanything_ros.geometry.camera import intrinsics_matrix
from faceanything_ros.geometry.projection import project_points
from faceanything_ros.geometry.virtual_camera import rotation_onto
from faceanything_ros.io.crop import CropBox
from training.data.config import CameraSamplerConfig


@dataclass(frozen=True)
class CameraParameters:
    """One camera draw: angles in degrees about the face, ``distance_m`` camera to face centre
    (metres), ``hfov_deg`` horizontal field of view of the full frame, ``frame_position`` (u, v) of
    the face centre as fractions of the frame's width and height, ``crop_scale`` crop side / face
    box side and ``crop_shift`` (du, dv) crop-centre offset as fractions of the crop side."""

    yaw_deg: float
    pitch_deg: float
    roll_deg: float
    distance_m: float
    hfov_deg: float
    frame_position: tuple[float, float]
    crop_scale: float
    crop_shift: tuple[float, float]

    def as_array(self) -> np.ndarray:
        """``(10,)`` float64 of all fields in order, pairs flattened (for interpolation)."""
        return np.array([self.yaw_deg, self.pitch_deg, self.roll_deg, self.distance_m, self.hfov_deg,
                         *self.frame_position, self.crop_scale, *self.crop_shift], dtype=np.float64)

    @classmethod
    def from_array(cls, values: np.ndarray) -> "CameraParameters":
        """Inverse of ``as_array``."""
        v = [float(x) for x in values]
        return cls(v[0], v[1], v[2], v[3], v[4], (v[5], v[6]), v[7], (v[8], v[9]))


@dataclass(frozen=True)
class Camera:
    """A pinhole camera: ``intrinsics`` (3, 3) float64 pixels for a ``size x size`` image and
    ``world_from_camera`` (4, 4) float64 rigid pose (metres), plus the parameters it came from.

    ``frame_box`` ``(x0, y0, x1, y1)``: the full camera frame in this image's pixel coordinates
    (pixel-centre convention; crop pixels outside it are padding), or None when the whole image is
    in frame. ``crop_side_px``: side of the crop in full-frame pixels (None: native resolution).
    """

    intrinsics: np.ndarray
    world_from_camera: np.ndarray
    size: int
    parameters: CameraParameters | None = None
    frame_box: tuple[float, float, float, float] | None = None
    crop_side_px: float | None = None

    @property
    def in_frame(self) -> np.ndarray:
        """``(size, size)`` bool: pixels whose centre lies inside the full camera frame."""
        inside = np.ones((self.size, self.size), dtype=bool)
        if self.frame_box is not None:
            x0, y0, x1, y1 = self.frame_box
            index = np.arange(self.size)
            inside &= ((index >= x0) & (index <= x1))[None, :] & ((index >= y0) & (index <= y1))[:, None]
        return inside

    @property
    def camera_from_world(self) -> np.ndarray:
        """``(4, 4)`` float64 inverse pose: ``p_camera = R.T @ (p_world - t)``."""
        return invert_pose(self.world_from_camera)

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


def look_at_pose(parameters: CameraParameters, face_centre: np.ndarray, face_rotation: np.ndarray) -> np.ndarray:
    """``(4, 4)`` world_from_camera of the camera at ``parameters``' orbit looking at ``face_centre``
    (metres, world) with its optical axis, rolled by ``roll``; ``face_rotation`` (3, 3) template -> world."""
    orbit = Rotation.from_euler("YX", [parameters.yaw_deg, parameters.pitch_deg], degrees=True).as_matrix()
    roll = Rotation.from_euler("Z", parameters.roll_deg, degrees=True).as_matrix()
    rotation = np.asarray(face_rotation, dtype=np.float64) @ orbit
    pose = np.eye(4)
    pose[:3, :3] = rotation @ roll
    pose[:3, 3] = np.asarray(face_centre, dtype=np.float64) + rotation @ np.array([0.0, 0.0, -parameters.distance_m])
    return pose


def frame_camera(parameters: CameraParameters, face_vertices: np.ndarray, face_rotation: np.ndarray,
                 frame_size: tuple[int, int], size: int) -> Camera:
    """The ``Camera`` of the ``size x size`` face crop of a full frame at ``parameters``.

    face_vertices: ``(V, 3)`` posed mesh (world metres); its box centre is looked at and its
    projected extent is the face box; face_rotation: ``(3, 3)`` template -> world; frame_size:
    ``(width, height)`` of the full frame in pixels.
    """
    vertices = np.asarray(face_vertices, dtype=np.float64)
    centre = (vertices.min(axis=0) + vertices.max(axis=0)) / 2.0
    width, height = frame_size
    focal = (width / 2.0) / np.tan(np.radians(parameters.hfov_deg) / 2.0)
    K = intrinsics_matrix(focal, focal, (width - 1) / 2.0, (height - 1) / 2.0)
    face_pixel = np.array([parameters.frame_position[0] * (width - 1), parameters.frame_position[1] * (height - 1)])
    look = look_at_pose(parameters, centre, face_rotation)
    # camera_from_look: the minimal rotation turning the look-at axis onto the face pixel's ray
    turn = rotation_onto(np.linalg.solve(K, np.append(face_pixel, 1.0)))
    pose = look.copy()
    pose[:3, :3] = look[:3, :3] @ turn.T
    return crop_camera(K, pose, vertices, frame_size, size, parameters.crop_scale, parameters.crop_shift, parameters)


def crop_camera(intrinsics: np.ndarray, world_from_camera: np.ndarray, face_vertices: np.ndarray,
                frame_size: tuple[int, int], size: int, crop_scale: float, crop_shift: tuple[float, float],
                parameters: CameraParameters | None = None) -> Camera:
    """The ``Camera`` of the ``size x size`` detector-like crop around the face in a full frame.

    intrinsics: ``(3, 3)`` of the full ``frame_size`` (width, height) frame (pixels);
    world_from_camera: ``(4, 4)`` pose (metres); face_vertices: ``(V, 3)`` posed mesh (world
    metres) whose projected box times ``crop_scale``, shifted by ``crop_shift`` (fractions of the
    crop side), is the crop.
    """
    width, height = frame_size
    pixels, _ = project_points(transform_points(invert_pose(world_from_camera), face_vertices), intrinsics)
    low, high = pixels.min(axis=0), pixels.max(axis=0)
    side = crop_scale * float(np.max(high - low))
    box_centre = (low + high) / 2.0 + side * np.asarray(crop_shift)
    crop = CropBox.centred(box_centre[0], box_centre[1], side, size)
    corners = crop.image_pixels_to_crop(np.array([[-0.5, -0.5], [width - 0.5, height - 0.5]]))
    return Camera(crop.intrinsics(intrinsics), np.asarray(world_from_camera, dtype=np.float64), size, parameters,
                  tuple(corners.reshape(-1)), side)


class CameraSampler:
    """Draws camera parameters uniformly within ``CameraSamplerConfig`` ranges (seeded)."""

    def __init__(self, config: CameraSamplerConfig | None = None) -> None:
        self.config = config or CameraSamplerConfig()

    def sample_parameters(self, rng: np.random.Generator) -> CameraParameters:
        """One ``CameraParameters`` draw from ``rng``."""
        c = self.config
        margin = c.frame_margin
        return CameraParameters(
            yaw_deg=float(rng.uniform(*c.yaw_deg)),
            pitch_deg=float(rng.uniform(*c.pitch_deg)),
            roll_deg=float(rng.uniform(*c.roll_deg)),
            distance_m=float(np.exp(rng.uniform(*np.log(c.distance_m)))),
            hfov_deg=float(rng.uniform(*c.hfov_deg)),
            frame_position=tuple(float(x) for x in rng.uniform(margin, 1.0 - margin, size=2)),
            crop_scale=float(rng.uniform(*c.crop_scale)),
            crop_shift=tuple(float(x) for x in rng.uniform(-c.crop_shift, c.crop_shift, size=2)),
        )

    def camera(self, parameters: CameraParameters, face_vertices: np.ndarray, face_rotation: np.ndarray, size: int,
               frame_size: tuple[int, int] = (640, 480)) -> Camera:
        """``frame_camera`` of one given draw in a ``frame_size`` (width, height) frame."""
        return frame_camera(parameters, face_vertices, face_rotation, frame_size, size)

    def sample_frame_size(self, rng: np.random.Generator) -> tuple[int, int]:
        """``(width, height)`` pixels of a full camera frame: a width of ``frame_widths`` and an
        aspect (height / width) of ``frame_aspects``."""
        width = int(rng.choice(self.config.frame_widths))
        return width, int(round(width * float(rng.choice(self.config.frame_aspects))))

    def sample_trajectory(
        self,
        rng: np.random.Generator,
        face_vertices: list[np.ndarray],
        face_rotation: np.ndarray,
        size: int,
    ) -> list[Camera]:
        """``T`` cameras moving smoothly (linear in every parameter) from a random draw towards a
        second one, ``trajectory_span`` of the way (convex, so every frame stays within the ranges).

        face_vertices: T posed meshes (V, 3) (world, metres), one per frame; face_rotation: ``(3, 3)``
        head rotation of the first frame, shared by the whole trajectory so that head motion in a
        video stays visible. One physical camera: frame size and field of view stay fixed.
        """
        frame_size = self.sample_frame_size(rng)
        start = self.sample_parameters(rng).as_array()
        end = start + self.config.trajectory_span * (self.sample_parameters(rng).as_array() - start)
        end[4] = start[4]  # same lens for the whole sequence
        steps = np.linspace(0.0, 1.0, len(face_vertices)) if len(face_vertices) > 1 else np.zeros(1)
        return [
            frame_camera(CameraParameters.from_array(start + s * (end - start)), vertices, face_rotation,
                         frame_size, size)
            for s, vertices in zip(steps, face_vertices)
        ]

    def source_trajectory(self, rng: np.random.Generator, face_vertices: list[np.ndarray], intrinsics: np.ndarray,
                          frame_size: tuple[int, int], size: int) -> list[Camera]:
        """``T`` cameras that are the source camera itself (identity pose, the source's own
        ``intrinsics`` (3, 3) and ``frame_size`` (width, height)), each cropping its frame's face
        as a detector would (one crop scale and shift drawn for the whole sequence): the sample
        shows the real source pixels, surroundings included, with the pseudo-label as ground truth."""
        scale = float(rng.uniform(*self.config.crop_scale))
        shift = tuple(float(x) for x in rng.uniform(-self.config.crop_shift, self.config.crop_shift, size=2))
        return [crop_camera(intrinsics, np.eye(4), vertices, frame_size, size, scale, shift) for vertices in face_vertices]
