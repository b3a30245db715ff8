"""Warm-started nearest-neighbour search: each query is looked for in a pixel window around its last pixel.

A face moves a few pixels between frames, and its canonical map is smooth and one-to-one, so a
query that was visible last frame is almost always matched inside a small window around its last
pixel. Searching ``(2r + 1)^2`` pixels per query needs no index over the frame's face pixels,
which the global search (``neighbour_search``) rebuilds from scratch every frame. A window
match counts only when it lies strictly inside the window (a minimum on the window's border
may continue outside it) and is within the acceptance distance; the caller searches the other
queries globally.
"""
from __future__ import annotations

import numpy as np


def window_nearest(canonical: np.ndarray, valid: np.ndarray, queries: np.ndarray, centres: np.ndarray,
                   radius: int, max_distance: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest valid pixel to each query in the ``(2 radius + 1)^2`` window around its centre pixel.

    canonical: ``(H, W, 3)`` map; valid: ``(H, W)`` bool searchable pixels; queries: ``(Q, 3)``
    canonical coordinates; centres: ``(Q, 2)`` int64 pixels ``(u, v)`` inside the image.
    Returns ``(flat pixel index (Q,) int64, distance (Q,) float64, accepted (Q,) bool)``: accepted
    where the nearest valid window pixel lies strictly inside the window (or on the image border)
    and within ``max_distance``; other rows hold -1 / NaN.
    """
    height, width = valid.shape
    offsets = np.arange(-radius, radius + 1)
    rows = centres[:, 1, None, None] + offsets[None, :, None]  # (Q, n, 1)
    cols = centres[:, 0, None, None] + offsets[None, None, :]  # (Q, 1, n)
    inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
    flat = (np.clip(rows, 0, height - 1) * width + np.clip(cols, 0, width - 1)).reshape(len(queries), -1)
    usable = inside.reshape(len(queries), -1) & valid.reshape(-1)[flat]
    values = canonical.reshape(-1, 3)[flat]  # (Q, n^2, 3)
    squared = np.where(usable, ((values - queries[:, None].astype(np.float32)) ** 2).sum(axis=2), np.inf)
    best = np.argmin(squared, axis=1)
    distance = np.sqrt(np.take_along_axis(squared, best[:, None], axis=1)[:, 0].astype(np.float64))
    row_offset, col_offset = np.divmod(best, len(offsets))
    best_rows, best_cols = centres[:, 1] + offsets[row_offset], centres[:, 0] + offsets[col_offset]
    interior = ((np.abs(offsets[row_offset]) < radius) | (best_rows == 0) | (best_rows == height - 1)) & (
        (np.abs(offsets[col_offset]) < radius) | (best_cols == 0) | (best_cols == width - 1))
    accepted = interior & (distance <= max_distance)
    index = np.where(accepted, np.take_along_axis(flat, best[:, None], axis=1)[:, 0], -1)
    return index, np.where(accepted, distance, np.nan), accepted
