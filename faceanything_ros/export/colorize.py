"""False-colour pictures of depth and canonical maps for people to look at (uint8 RGB)."""
from __future__ import annotations

from typing import Callable

import cv2
import numpy as np


def colorize_depth(depth: np.ndarray, near: float | None = None, far: float | None = None) -> np.ndarray:
    """``(H, W)`` depth in metres -> ``(H, W, 3)`` uint8 RGB (turbo, near = red); NaN -> black.

    ``near``/``far`` default to the 2nd/98th percentile of the finite depths.
    """
    finite = np.isfinite(depth)
    image = np.zeros(depth.shape + (3,), dtype=np.uint8)
    if not finite.any():
        return image
    values = depth[finite]
    near = float(np.percentile(values, 2)) if near is None else near
    far = float(np.percentile(values, 98)) if far is None else far
    scaled = np.clip((far - depth) / max(far - near, 1e-6), 0.0, 1.0)
    turbo = cv2.applyColorMap(np.nan_to_num(scaled * 255.0).astype(np.uint8), cv2.COLORMAP_TURBO)
    image[finite] = turbo[finite][:, ::-1]
    return image


def colorize_canonical(canonical: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` canonical coordinates in [-1, 1] -> uint8 RGB ``(c + 1) / 2 * 255``; NaN -> black."""
    finite = np.all(np.isfinite(canonical), axis=-1)
    image = np.zeros(canonical.shape, dtype=np.uint8)
    image[finite] = np.round((np.clip(canonical[finite], -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)
    return image


def colorize_region(colorize: Callable[[np.ndarray], np.ndarray], values: np.ndarray,
                    region: tuple[slice, slice]) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB: ``colorize`` (e.g. ``colorize_depth``) of ``values[region]`` in a black image.

    The same picture as ``colorize(values)`` when every finite value lies inside ``region`` (a
    ``(rows, cols)`` slice pair, e.g. ``geometry.pointcloud.mask_region`` of the face mask), at the cost of the region only.
    """
    image = np.zeros(values.shape[:2] + (3,), dtype=np.uint8)
    image[region] = colorize(values[region])
    return image


def track_colors(ids: np.ndarray) -> np.ndarray:
    """``(Q,)`` track ids -> ``(Q, 3)`` uint8 RGB, a fixed colour per id (golden-angle hues)."""
    ids = np.asarray(ids, dtype=np.int64)
    if ids.size == 0:
        return np.zeros((0, 3), dtype=np.uint8)
    hues = (ids * 137.508) % 360.0 / 2.0  # OpenCV hue range is [0, 180)
    hsv = np.stack([hues, np.full_like(hues, 220), np.full_like(hues, 255)], axis=-1).astype(np.uint8)
    return cv2.cvtColor(hsv[None], cv2.COLOR_HSV2RGB)[0]


def draw_tracks(image: np.ndarray, ids: np.ndarray, pixels: np.ndarray, visible: np.ndarray,
                radius: int = 2) -> np.ndarray:
    """Copy of ``image`` (H, W, 3) uint8 RGB with a dot per visible track at ``pixels`` (Q, 2) (u, v)."""
    canvas = np.ascontiguousarray(image.copy())
    colors = track_colors(ids)
    for (u, v), color, shown in zip(pixels, colors, visible):
        if shown and np.isfinite(u) and np.isfinite(v):
            cv2.circle(canvas, (int(round(u)), int(round(v))), radius, tuple(int(c) for c in color), -1, cv2.LINE_AA)
    return canvas
