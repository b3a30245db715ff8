"""Exact tracking frames of the canonical template seen from a known head pose (for tests and benchmarks).

The template mesh of a canonical space is posed in the camera (``X = R @ template + t``, metres,
optical frame), rasterised with back-face culling (``geometry.rasterizer``: a closed head would
hide the back of the face surface) and its canonical coordinates interpolated per pixel, so the
canonical map, depth and intrinsics of the frame are exact and the true pixel of every canonical
point is known.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.spatial.transform import Rotation

from faceanything_ros.canonical.space import MEDIAPIPE_SPACE_ID, load_canonical_space
from faceanything_ros.geometry.projection import project_points
from faceanything_ros.geometry.rasterizer import rasterize
from faceanything_ros.tracking.frame import TrackingFrame


def head_rotation_matrix(yaw_deg: float = 0.0, pitch_deg: float = 0.0, roll_deg: float = 0.0) -> np.ndarray:
    """``(3, 3)`` head rotation in the optical frame: yaw about y (down), pitch about x, roll about z; degrees."""
    return Rotation.from_euler("yxz", [yaw_deg, pitch_deg, roll_deg], degrees=True).as_matrix()


def render_template_frame(rotation: np.ndarray, translation: np.ndarray, intrinsics: np.ndarray, height: int,
                          width: int, space_id: str = MEDIAPIPE_SPACE_ID) -> TrackingFrame:
    """``TrackingFrame`` (``H x W``) of the template posed by ``rotation`` (3, 3) and ``translation`` (3,) metres.

    Canonical confidence is 2 on the face and NaN elsewhere; depth is z-depth in metres.
    """
    space = load_canonical_space(space_id)
    vertices = space.template @ np.asarray(rotation, np.float64).T + np.asarray(translation, np.float64)
    raster = rasterize(vertices, space.topology, intrinsics, height, width, attributes=space.canonical_template,
                       cull_backfaces=True)
    confidence = np.where(raster.mask, 2.0, np.nan)
    return TrackingFrame(raster.attributes, confidence, raster.mask, raster.depth, intrinsics)


def template_pixels(canonical: np.ndarray, rotation: np.ndarray, translation: np.ndarray, intrinsics: np.ndarray,
                    space_id: str = MEDIAPIPE_SPACE_ID) -> np.ndarray:
    """``(Q, 2)`` true pixels ``(u, v)`` of ``(Q, 3)`` canonical template points under the pose (occlusion ignored)."""
    space = load_canonical_space(space_id)
    points = space.denormalize(canonical) @ np.asarray(rotation, np.float64).T + np.asarray(translation, np.float64)
    return project_points(points, intrinsics)[0]


def face_distance_for(width_fraction: float, focal: float, image_width: int, space_id: str = MEDIAPIPE_SPACE_ID
                      ) -> float:
    """Distance in metres at which the template's width covers ``width_fraction`` of an image ``image_width`` wide."""
    space = load_canonical_space(space_id)
    face_width = float(np.ptp(space.template[:, 0]))
    return focal * face_width / (width_fraction * image_width) if width_fraction > 0 else math.inf
