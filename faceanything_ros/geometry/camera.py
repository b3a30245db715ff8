"""Pinhole camera intrinsics in the OpenCV / ROS optical convention.

Frame: x right, y down, z forward (REP 103 optical frame). Pixel coordinates ``(u, v)`` put the
centre of pixel ``(row 0, col 0)`` at ``(0.0, 0.0)``; ``K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``
maps a point ``(x, y, z)`` to ``u = fx * x / z + cx``, ``v = fy * y / z + cy``. Focal lengths and
principal points are in pixels.
"""
from __future__ import annotations

import math

import numpy as np


def intrinsics_matrix(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """``(3, 3)`` float64 pinhole matrix from focal lengths and principal point (pixels)."""
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=np.float64)


def intrinsics_from_fov(width: int, height: int, horizontal_fov_deg: float) -> np.ndarray:
    """``(3, 3)`` intrinsics of a ``width x height`` image with square pixels, centred principal point."""
    if not 1.0 <= horizontal_fov_deg <= 179.0:
        raise ValueError(f"horizontal field of view must be in [1, 179] degrees, got {horizontal_fov_deg}")
    focal = (width / 2.0) / math.tan(math.radians(horizontal_fov_deg) / 2.0)
    return intrinsics_matrix(focal, focal, (width - 1) / 2.0, (height - 1) / 2.0)


def validate_intrinsics(intrinsics: np.ndarray, name: str = "intrinsics") -> np.ndarray:
    """Check a ``(3, 3)`` pinhole matrix (finite, positive focal lengths); return it as float64.

    Raises ``ValueError`` naming the problem.
    """
    K = np.asarray(intrinsics, dtype=np.float64)
    if K.shape != (3, 3):
        raise ValueError(f"{name} must have shape (3, 3), got {K.shape}")
    if not np.all(np.isfinite(K)):
        raise ValueError(f"{name} contains NaN or infinite values: {K.tolist()}")
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ValueError(f"{name} focal lengths must be positive, got fx={K[0, 0]}, fy={K[1, 1]}")
    if K[2, 0] != 0 or K[2, 1] != 0 or K[2, 2] != 1 or K[1, 0] != 0:
        raise ValueError(f"{name} must be an upper-triangular pinhole matrix with K[2] = [0, 0, 1], got {K.tolist()}")
    return K


def mean_focal(intrinsics: np.ndarray) -> float:
    """Mean of ``fx`` and ``fy`` of a ``(3, 3)`` K, pixels."""
    return float(intrinsics[0, 0] + intrinsics[1, 1]) / 2.0


def crop_resize_intrinsics(intrinsics: np.ndarray, x0: float, y0: float, scale: float,
                           scale_y: float | None = None) -> np.ndarray:
    """``(..., 3, 3)`` intrinsics of the image cropped at top-left corner ``(x0, y0)`` then resized by ``scale``.

    ``x0, y0`` are the crop's left/top pixel *edges* in the source image (pixels); ``scale`` is
    output pixels per source pixel (``scale_y``, when given, vertically: a resize to a whole number of
    pixels on each axis). A source pixel centre ``u`` lands at ``(u - x0 + 0.5) * scale - 0.5`` in the
    crop, so ``fx' = scale * fx`` and ``cx' = (cx - x0 + 0.5) * scale - 0.5`` (same for y). Inverse:
    ``uncrop_intrinsics``.
    """
    scale_y = scale if scale_y is None else scale_y
    K = np.asarray(intrinsics, dtype=np.float64)
    out = K.copy()
    out[..., 0, 0] = K[..., 0, 0] * scale
    out[..., 1, 1] = K[..., 1, 1] * scale_y
    out[..., 0, 1] = K[..., 0, 1] * scale
    out[..., 0, 2] = (K[..., 0, 2] - x0 + 0.5) * scale - 0.5
    out[..., 1, 2] = (K[..., 1, 2] - y0 + 0.5) * scale_y - 0.5
    return out


def uncrop_intrinsics(crop_intrinsics: np.ndarray, x0: float, y0: float, scale: float) -> np.ndarray:
    """Inverse of ``crop_resize_intrinsics``: source-image intrinsics from a crop's intrinsics."""
    K = np.asarray(crop_intrinsics, dtype=np.float64)
    out = K.copy()
    out[0, 0] = K[0, 0] / scale
    out[1, 1] = K[1, 1] / scale
    out[0, 1] = K[0, 1] / scale
    out[0, 2] = (K[0, 2] + 0.5) / scale - 0.5 + x0
    out[1, 2] = (K[1, 2] + 0.5) / scale - 0.5 + y0
    return out


def pixel_grid(height: int, width: int) -> np.ndarray:
    """``(H, W, 2)`` float64 pixel-centre coordinates ``(u, v)``: ``grid[v, u] == (u, v)``."""
    v, u = np.meshgrid(np.arange(height, dtype=np.float64), np.arange(width, dtype=np.float64), indexing="ij")
    return np.stack([u, v], axis=-1)


def strided_grid(origin: tuple[int, int], stride: int) -> tuple[slice, slice]:
    """``(rows, cols)`` slices of a map covering part of an image, whose pixel ``(0, 0)`` is image pixel
    ``origin`` ``(u, v)``, that select the image's every ``stride``-th row and column (image rows and
    columns 0, stride, 2 * stride, ...: one grid wherever the map starts)."""
    u0, v0 = origin
    return slice((-v0) % stride, None, stride), slice((-u0) % stride, None, stride)
