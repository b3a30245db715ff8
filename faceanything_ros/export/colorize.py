"""False-colour pictures of depth and canonical maps for people to look at (uint8 RGB)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import cv2
import numpy as np

if TYPE_CHECKING:
    from faceanything_ros.reconstruction import Reconstruction


def colorize_depth(depth: np.ndarray, near: float | None = None, far: float | None = None) -> np.ndarray:
    """``(H, W)`` depth in metres -> ``(H, W, 3)`` uint8 RGB (turbo, near = red); NaN -> black.

    ``near``/``far`` default to the 2nd/98th percentile of the finite depths.
    """
    finite = np.isfinite(depth)
    if not finite.any():
        return np.zeros(depth.shape + (3,), dtype=np.uint8)
    if near is None or far is None:
        low, high = np.percentile(depth[finite], [2, 98])
        near, far = (float(low) if near is None else near), (float(high) if far is None else far)
    scaled = np.clip((far - np.where(finite, depth, far)) * (255.0 / max(far - near, 1e-6)), 0.0, 255.0)
    image = cv2.cvtColor(cv2.applyColorMap(scaled.astype(np.uint8), cv2.COLORMAP_TURBO), cv2.COLOR_BGR2RGB)
    image[~finite] = 0
    return image


def colorize_canonical(canonical: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` canonical coordinates in [-1, 1] -> uint8 RGB ``(c + 1) / 2 * 255``; NaN -> black."""
    finite = np.all(np.isfinite(canonical), axis=-1)
    scaled = (np.clip(np.where(finite[..., None], canonical, -1.0), -1.0, 1.0) + 1.0) * 127.5
    return np.rint(scaled).astype(np.uint8)


def colorize_region(colorize: Callable[[np.ndarray], np.ndarray], reconstruction: Reconstruction,
                    name: str) -> np.ndarray:
    """``(H, W[, C])`` image of the reconstruction's whole frame: ``colorize`` (e.g. ``colorize_depth``, or
    ``export.depth.depth_to_millimetres``) of its frame map ``name`` inside its faces' ``region``
    (``Reconstruction.in_region``), zeros (black) elsewhere, in ``colorize``'s dtype: the image ``colorize``
    makes of the whole map (NaN outside the region), at the region's cost."""
    inside = colorize(reconstruction.in_region(name))
    image = np.zeros(tuple(reconstruction.image_size) + inside.shape[2:], dtype=inside.dtype)
    image[reconstruction.region] = inside
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
    """Copy of ``image`` (H, W, 3) uint8 RGB with a filled dot of ``radius`` pixels per visible track at
    ``pixels`` (Q, 2) (u, v), in the track's ``track_colors`` colour (all dots stamped at once)."""
    canvas = image.copy()
    shown = np.asarray(visible, dtype=bool) & np.all(np.isfinite(pixels), axis=1)
    limit = max(image.shape[:2]) + radius  # farther dots are off the image anyway
    centres = np.rint(np.clip(np.asarray(pixels, dtype=np.float64)[shown], -limit, limit)).astype(np.int64)
    dv, du = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    disc = du * du + dv * dv <= radius * radius
    u = (centres[:, :1] + du[disc]).ravel()
    v = (centres[:, 1:] + dv[disc]).ravel()
    colors = np.repeat(track_colors(np.asarray(ids)[shown]), int(disc.sum()), axis=0)
    inside = (u >= 0) & (u < image.shape[1]) & (v >= 0) & (v < image.shape[0])
    canvas[v[inside], u[inside]] = colors[inside]
    return canvas
