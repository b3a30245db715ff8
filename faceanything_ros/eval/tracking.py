"""Dense tracks from canonical maps for evaluation, and their TAP-Vid scores.

A query (a frame and a pixel) takes the predicted canonical coordinate at its pixel; in every
frame its track is the face pixel whose predicted canonical coordinate is nearest, refined to
sub-pixel precision as the tracker refines it, visible when that distance is below
``max_distance`` (canonical units): the method's tracking principle, with no temporal filter, so
every method's maps are scored alike.
"""
from __future__ import annotations

import numpy as np

from faceanything_ros.config import TrackerConfig
from faceanything_ros.eval.metrics import MetricSums, tap_metrics
from faceanything_ros.tracking.neighbour_search import KDTreeNeighbours
from faceanything_ros.tracking.subpixel import refine_matches


def canonical_tracks(canonical: np.ndarray, masks: np.ndarray, queries: np.ndarray, query_frame: np.ndarray,
                     max_distance: float = TrackerConfig.max_distance) -> tuple[np.ndarray, np.ndarray]:
    """Track ``N`` queries through ``T`` frames of ``(T, H, W, 3)`` canonical maps with ``(T, H, W)``
    bool face masks.

    queries: ``(N, T, 2)`` pixels of which only each track's query frame ``query_frame`` ``(N,)`` is
    read (rounded to the nearest pixel). Returns ``(N, T, 2)`` float64 pixels (NaN where the frame
    has no face pixel) and ``(N, T)`` bool visibility.
    """
    frames, height, width = masks.shape
    count = len(query_frame)
    if count == 0:
        return np.zeros((0, frames, 2)), np.zeros((0, frames), dtype=bool)
    rows = np.arange(count)
    at = np.rint(queries[rows, query_frame]).astype(np.int64)
    at[:, 0] = at[:, 0].clip(0, width - 1)
    at[:, 1] = at[:, 1].clip(0, height - 1)
    descriptors = canonical[query_frame, at[:, 1], at[:, 0]]
    pixels = np.full((count, frames, 2), np.nan)
    visible = np.zeros((count, frames), dtype=bool)
    for t in range(frames):
        pixels[:, t], distance = locate_canonical_points(canonical[t], masks[t], descriptors)
        visible[:, t] = distance <= max_distance
    pixels[rows, query_frame] = queries[rows, query_frame]
    visible[rows, query_frame] = True
    return pixels, visible


def locate_canonical_points(canonical: np.ndarray, mask: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixels of ``(Q, 3)`` canonical ``points`` in one frame: the ``mask`` pixel of the ``(H, W, 3)``
    canonical map nearest to each (the tracker's ``KDTreeNeighbours``), refined to sub-pixel
    precision as the tracker refines its matches (``tracking.subpixel.refine_matches``); ``((Q, 2)
    float64 pixels (u, v), (Q,) distances there)``, NaN and inf for non-finite points and when the
    mask is empty."""
    pixels, distance = np.full((len(points), 2), np.nan), np.full(len(points), np.inf)
    face = np.flatnonzero(mask)
    finite = np.isfinite(points).all(axis=1)
    if not len(face) or not finite.any():
        return pixels, distance
    nearest, distance[finite] = KDTreeNeighbours(canonical.reshape(-1, 3)[face]).query(points[finite])
    v, u = np.divmod(face[nearest], mask.shape[1])
    pixels[finite], distance[finite] = refine_matches(canonical, mask, np.stack([u, v], axis=1), points[finite],
                                                      distance[finite])
    return pixels, distance


def score_tracks(sums: MetricSums, tracks: tuple[np.ndarray, np.ndarray], true_pixels: np.ndarray,
                 true_visible: np.ndarray, query_frame: np.ndarray, image_size: int) -> None:
    """Add the TAP-Vid metrics (``tap_metrics``) of predicted ``tracks`` (pixels, visible) of one
    sample to ``sums`` under ``tracking.*``."""
    for name, value in tap_metrics(tracks[0], tracks[1], true_pixels, true_visible, query_frame, image_size).items():
        sums.add(f"tracking.{name}", value)
