"""Nearest canonical value in a small pixel window around a given pixel, for many queries at once.

The tracker's search without a per-frame index over every face pixel: a face moves a few pixels
between frames and its canonical map is smooth and one-to-one, so a query visible on the last
frame is matched in a window around its last pixel, and a query to be found anew is matched by
an index over every ``stride``-th face pixel row and column followed by windows around that
coarse match at full resolution, re-centred while the match lies on a window's border
(``window_descent``; ``CanonicalTracker._nearest``). The windows pay while they read fewer pixels
than the face has (few tracks on a large face).
"""
from __future__ import annotations

import numpy as np

DESCENT_WINDOWS = 4  # windows at most per query in window_descent


def window_nearest(canonical: np.ndarray, valid: np.ndarray, queries: np.ndarray, centres: np.ndarray,
                   radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest valid pixel to each query in the ``(2 radius + 1)^2`` window around its centre pixel.

    canonical: ``(H, W, 3)`` float32 map; valid: ``(H, W)`` bool searchable pixels; queries:
    ``(Q, 3)`` canonical coordinates; centres: ``(Q, 2)`` int64 pixels ``(u, v)`` inside the image.
    Returns ``(flat pixel index (Q,) int64 (-1: no valid pixel in the window), squared canonical
    distance (Q,) float32 (inf: none), interior (Q,) bool)``; interior: the match is not on the
    window's border unless that border is the image's (a minimum on it may continue outside).
    """
    height, width = valid.shape
    offsets = np.arange(-radius, radius + 1)
    rows = np.clip(centres[:, 1, None] + offsets, 0, height - 1)  # (Q, n)
    cols = np.clip(centres[:, 0, None] + offsets, 0, width - 1)
    flat = (rows[:, :, None] * width + cols[:, None, :]).reshape(len(queries), -1)  # (Q, n^2); clipped repeats
    difference = canonical.reshape(-1, 3)[flat] - queries[:, None, :].astype(np.float32)
    squared = np.einsum("qnk,qnk->qn", difference, difference)
    squared[~valid.reshape(-1)[flat]] = np.inf
    best = np.argmin(squared, axis=1)
    best_squared = squared[np.arange(len(queries)), best]
    row, col = np.divmod(best, len(offsets))
    best_row, best_col = rows[np.arange(len(queries)), row], cols[np.arange(len(queries)), col]
    interior = ((np.abs(offsets[row]) < radius) | (best_row == 0) | (best_row == height - 1)) & (
        (np.abs(offsets[col]) < radius) | (best_col == 0) | (best_col == width - 1))
    found = np.isfinite(best_squared)
    return np.where(found, best_row * width + best_col, -1), best_squared, interior & found


def window_descent(canonical: np.ndarray, valid: np.ndarray, queries: np.ndarray, starts: np.ndarray,
                   radius: int, windows: int = DESCENT_WINDOWS) -> np.ndarray:
    """``(Q,)`` int64 flat pixel index of each query's nearest valid pixel, found by ``window_nearest``
    windows of ``radius`` from each ``starts`` ``(Q,)`` flat pixel index (a valid pixel, so the match
    is never -1), re-centred on their match while it lies on the window's border (the distance may
    fall further outside), ``windows`` windows at most: the exact nearest pixel wherever no other
    local minimum of the distance lies between the start and it. Other arguments as ``window_nearest``."""
    width = valid.shape[1]
    index = np.array(starts, dtype=np.int64)
    moving = np.ones(len(index), bool)
    for _ in range(windows):
        if not moving.any():
            break
        rows, cols = np.divmod(index[moving], width)
        index[moving], _, settled = window_nearest(canonical, valid, queries[moving], np.stack([cols, rows], 1),
                                                   radius)
        moving[moving] = ~settled
    return index
