"""Dense face tracking by nearest-neighbour search of canonical coordinates (no optical flow).

Every query point carries the canonical face coordinate (``[-1, 1]^3``) read from the frame it
was added on. In each new frame it is found again as the confident face pixel whose canonical
value is nearest to it (one neighbour index per frame), optionally refined to sub-pixel
precision, and lifted to 3-D with the frame's depth and intrinsics. Frames are independent, so
tracks never drift and a point lost behind an occluder is found again when it reappears.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from faceanything_ros.config import TrackerConfig
from faceanything_ros.geometry.projection import sample_bilinear_or_nearest, unproject_pixels
from faceanything_ros.tracking.frame import TrackingFrame
from faceanything_ros.tracking.neighbour_search import BACKENDS, build_neighbour_index
from faceanything_ros.tracking.subpixel import refine_subpixel
from faceanything_ros.tracking.tracks import Tracks, TrackState


class CanonicalTracker:
    """Streaming canonical tracker: ``add_queries`` / ``seed_grid``, then ``step`` once per frame.

    config: thresholds and grid size (``TrackerConfig``). device: torch device of the neighbour
    search; backend: ``"kdtree"`` (scipy, CPU) or ``"torch"`` (``torch.cdist`` on ``device``);
    None picks ``"torch"`` on CUDA devices and ``"kdtree"`` otherwise. Both give the same tracks.
    Track ids come from a counter, in query order, and are never reused by this tracker.
    """

    def __init__(
        self, config: TrackerConfig | None = None, device: str | torch.device = "cpu", backend: str | None = None
    ) -> None:
        self.config = config if config is not None else TrackerConfig()
        if not self.config.max_distance > 0:
            raise ValueError(f"TrackerConfig.max_distance must be > 0, got {self.config.max_distance}")
        if self.config.num_tracks < 1:
            raise ValueError(f"TrackerConfig.num_tracks must be >= 1, got {self.config.num_tracks}")
        self.device = torch.device(device)
        self.backend = backend if backend is not None else ("torch" if self.device.type == "cuda" else "kdtree")
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown neighbour search backend {self.backend!r}; choose one of {BACKENDS}")
        self._next_id = 0
        self.reset()

    def reset(self) -> None:
        """Drop all queries (start a new sequence); the id counter keeps counting."""
        self._ids = np.zeros(0, np.int64)
        self._canonical = np.zeros((0, 3), np.float64)

    @property
    def ids(self) -> np.ndarray:
        """``(Q,)`` int64 ids of the current queries, in the order ``step`` reports them."""
        return self._ids.copy()

    @property
    def num_queries(self) -> int:
        """Number of current queries ``Q``."""
        return len(self._ids)

    def add_queries(self, frame: TrackingFrame, pixels: np.ndarray) -> np.ndarray:
        """Start tracks at ``(Q, 2)`` pixels ``(u, v)`` of ``frame``; returns their ``(Q,)`` int64 ids.

        Each query's canonical coordinate is sampled bilinearly from ``frame.canonical`` over the
        searchable face pixels (mask, confidence >= ``min_confidence``), falling back to the
        nearest pixel at the face border. Raises ``ValueError`` (adding nothing) if a pixel lies
        outside the image area ``[-0.5, W-0.5) x [-0.5, H-0.5)`` or its nearest pixel is not
        searchable face.
        """
        _check_frame(frame)
        pixels = np.asarray(pixels, dtype=np.float64)
        if pixels.ndim != 2 or pixels.shape[1] != 2:
            raise ValueError(f"query pixels must have shape (Q, 2) as (u, v), got {pixels.shape}")
        inside = np.all(np.isfinite(pixels), axis=1)
        inside &= np.all((pixels >= -0.5) & (pixels < [frame.width - 0.5, frame.height - 0.5]), axis=1)
        if not inside.all():
            raise ValueError(
                f"query pixels {pixels[~inside].tolist()} (rows {np.flatnonzero(~inside).tolist()}) lie outside "
                f"the {frame.width}x{frame.height} image"
            )
        canonical = sample_bilinear_or_nearest(frame.canonical, pixels, frame.searchable(self.config.min_confidence))
        off_face = np.isnan(canonical).any(axis=1)
        if off_face.any():
            raise ValueError(
                f"query pixels {pixels[off_face].tolist()} (rows {np.flatnonzero(off_face).tolist()}) are not on the "
                f"confident face (mask and confidence >= {self.config.min_confidence})"
            )
        ids = np.arange(self._next_id, self._next_id + len(pixels), dtype=np.int64)
        self._next_id += len(pixels)
        self._ids = np.concatenate([self._ids, ids])
        self._canonical = np.concatenate([self._canonical, canonical])
        return ids

    def seed_grid(self, frame: TrackingFrame, num_tracks: int | None = None) -> np.ndarray:
        """Add queries on a regular grid of about ``num_tracks`` (default ``config.num_tracks``) face pixels.

        The grid spacing ``sqrt(face pixels / num_tracks)`` (at least 1 pixel) is laid over the
        searchable face's bounding box; grid nodes on searchable pixels become queries, in
        row-major order. Returns their ``(Q,)`` int64 ids (empty if the frame has no face pixel).
        """
        _check_frame(frame)
        num_tracks = self.config.num_tracks if num_tracks is None else num_tracks
        if num_tracks < 1:
            raise ValueError(f"num_tracks must be >= 1, got {num_tracks}")
        searchable = frame.searchable(self.config.min_confidence)
        rows, cols = np.nonzero(searchable)
        if rows.size == 0:
            return np.zeros(0, np.int64)
        spacing = max(1.0, math.sqrt(rows.size / num_tracks))
        grid_rows = _grid_nodes(rows.min(), rows.max(), spacing)
        grid_cols = _grid_nodes(cols.min(), cols.max(), spacing)
        node_rows, node_cols = np.meshgrid(grid_rows, grid_cols, indexing="ij")
        on_face = searchable[node_rows, node_cols]
        pixels = np.stack([node_cols[on_face], node_rows[on_face]], axis=1).astype(np.float64)
        return self.add_queries(frame, pixels)

    def step(self, frame: TrackingFrame) -> TrackState:
        """Locate every current query in ``frame``; see ``TrackState`` for the fields.

        A query is visible iff its nearest searchable pixel is within ``config.max_distance`` in
        canonical space. With ``config.refine`` the pixel is refined to sub-pixel precision
        (``refine_subpixel``). Its 3-D point is the depth sampled at that pixel (bilinear, nearest
        at the face border), unprojected with the frame's intrinsics. A frame with no searchable
        face pixel leaves every query invisible with NaN pixels.
        """
        _check_frame(frame)
        count = self.num_queries
        pixels = np.full((count, 2), np.nan)
        distance = np.full(count, np.nan)
        searchable = frame.searchable(self.config.min_confidence)
        face_pixels = np.flatnonzero(searchable)
        if count and face_pixels.size:
            reference = np.take(frame.canonical.reshape(-1, 3), face_pixels, axis=0)
            nearest, _ = build_neighbour_index(reference, self.backend, self.device).query(self._canonical)
            # Distances recomputed in float64 so both backends report identical values.
            distance = np.linalg.norm(self._canonical - reference[nearest], axis=1)
            rows, cols = np.divmod(face_pixels[nearest], frame.width)
            pixels = np.stack([cols, rows], axis=1).astype(np.float64)
            if self.config.refine:
                pixels = refine_subpixel(frame.canonical, searchable, pixels, self._canonical)
        visible = distance <= self.config.max_distance
        return TrackState(
            ids=self._ids.copy(),
            pixels=pixels.astype(np.float32),
            points=_points_at(frame, pixels).astype(np.float32),
            canonical=self._canonical.astype(np.float32),
            distance=distance.astype(np.float32),
            visible=visible,
        )

    def track(
        self, frames: Sequence[TrackingFrame], queries: Sequence[tuple[int, np.ndarray]] | None = None
    ) -> Tracks:
        """Track a whole sequence; the same as ``reset`` then ``add_queries`` + ``step`` per frame.

        queries: ``(frame_index, pixels (Q_i, 2))`` entries, added (in list order) just before
        their frame is stepped; None seeds ``seed_grid`` on the first frame with face pixels.
        Returns ``Tracks`` with ``T = len(frames)``.
        """
        if queries is not None:
            for entry_index, (frame_index, _) in enumerate(queries):
                if not isinstance(frame_index, (int, np.integer)) or not 0 <= frame_index < len(frames):
                    raise ValueError(
                        f"queries[{entry_index}] frame index {frame_index!r} is not in [0, {len(frames)})"
                    )
        self.reset()
        states = []
        for frame_index, frame in enumerate(frames):
            if queries is None and self.num_queries == 0:
                self.seed_grid(frame)
            for query_frame, pixels in queries or ():
                if query_frame == frame_index:
                    self.add_queries(frame, pixels)
            states.append(self.step(frame))
        return Tracks.from_states(states)


def _check_frame(frame: TrackingFrame) -> None:
    if not isinstance(frame, TrackingFrame):
        raise TypeError(f"expected a TrackingFrame, got {type(frame).__name__}")


def _grid_nodes(first: int, last: int, spacing: float) -> np.ndarray:
    """Integer pixel indices of grid nodes ``spacing`` apart, centred in cells over ``[first, last]``."""
    centres = np.arange(first - 0.5 + spacing / 2.0, last + 0.5, spacing)
    nodes = np.floor(centres + 0.5).astype(np.int64)
    return nodes[nodes <= last]


def _points_at(frame: TrackingFrame, pixels: np.ndarray) -> np.ndarray:
    """``(Q, 3)`` float64 points (metres, optical frame) at ``(Q, 2)`` pixels; NaN without depth or K."""
    if frame.depth is None or frame.intrinsics is None or len(pixels) == 0:
        return np.full((len(pixels), 3), np.nan)
    depth = sample_bilinear_or_nearest(frame.depth, pixels, frame.mask)
    return unproject_pixels(pixels, depth, frame.intrinsics)
