"""Dense face tracking by nearest-neighbour search of canonical coordinates (no optical flow), one face.

Every query is a canonical face coordinate (``[-1, 1]^3``): by default a point of the canonical
template surface (``template_surface.canonical_queries``: query id ``k`` is the same facial point
in every video, session and person), or the value read from a frame at a pixel. In each new
frame it is found again as the confident face pixel whose canonical value is nearest to it
(first in a window around its last pixel, ``window_search``, else over the whole face,
``neighbour_search``), refined to sub-pixel precision, lifted to 3-D with the frame's depth and
intrinsics, and judged visible or not (``TrackerConfig``: canonical distance, facing the
camera, depth consistency, with hysteresis). A point that is not visible is reported invisible
at its best match, never moved onto another point; it is found again when it reappears.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from faceanything_ros.config import TRACK_QUERIES, TrackerConfig
from faceanything_ros.geometry.camera import strided_grid
from faceanything_ros.geometry.projection import sample_bilinear_or_nearest, unproject_pixels
from faceanything_ros.tracking.frame import TrackingFrame
from faceanything_ros.tracking.neighbour_search import BACKENDS, build_neighbour_index
from faceanything_ros.tracking.one_euro import OneEuroFilter
from faceanything_ros.tracking.subpixel import refine_matches
from faceanything_ros.tracking.template_surface import canonical_queries, template_surface
from faceanything_ros.tracking.tracks import Tracks, TrackState
from faceanything_ros.tracking.visibility import depth_step, facing, head_rotation
from faceanything_ros.tracking.window_search import window_descent, window_nearest

COARSE_STRIDE = 2  # a query found anew is first matched over every COARSE_STRIDE-th face pixel row and column,
# or every n-th for a larger n on a face of more than COARSE_CANDIDATES * COARSE_STRIDE^2 pixels, so that the index
# built per frame holds about COARSE_CANDIDATES pixels at most however close the face is (then refined in
# n-pixel windows: tracking.window_search.window_descent)
COARSE_CANDIDATES = 16_384
# Pixels up to SEARCH_BOUND * max_distance away are matched: near the silhouette one pixel spans a large
# canonical step, and only the distance after sub-pixel refinement decides visibility.
SEARCH_BOUND = 2.0


class CanonicalTracker:
    """Streaming canonical tracker of one face: ``seed`` (or ``add_queries``), then ``step`` once per frame.

    config: thresholds, query kind and filter (``TrackerConfig``). device: torch device of the
    global neighbour search; backend: ``"kdtree"`` (scipy, CPU) or ``"torch"`` (``torch.cdist`` on
    ``device``); None picks ``"torch"`` on CUDA devices and ``"kdtree"`` otherwise. Both give the
    same tracks. face: the face id written into every ``TrackState``.
    Ids: canonical template queries have their query index ``k`` as id (``seed_canonical``);
    pixel queries get ids from a counter above them, in query order, never reused by this tracker.
    """

    def __init__(self, config: TrackerConfig | None = None, device: str | torch.device = "cpu",
                 backend: str | None = None, face: int = 0) -> None:
        self.config = config if config is not None else TrackerConfig()
        _check_config(self.config)
        self.device = torch.device(device)
        self.backend = backend if backend is not None else ("torch" if self.device.type == "cuda" else "kdtree")
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown neighbour search backend {self.backend!r}; choose one of {BACKENDS}")
        self.face = int(face)
        self._filters = (OneEuroFilter(self.config.filter_min_cutoff_hz, self.config.filter_beta_pixels),
                         OneEuroFilter(self.config.filter_min_cutoff_hz, self.config.filter_beta_metres))
        self._next_id = 0
        self._first_pixel_id: int | None = None  # id of the first pixel query ever added
        self.reset()

    def reset(self) -> None:
        """Drop all queries and filter states (start a new sequence); the pixel-query id counter keeps counting."""
        self._ids = np.zeros(0, np.int64)
        self._canonical = np.zeros((0, 3), np.float64)
        self._normals = np.zeros((0, 3), np.float64)
        self._visible = np.zeros(0, bool)  # visibility on the last step (hysteresis)
        self._last_pixel = np.full((0, 2), -1, np.int64)  # nearest image pixel on the last step, -1 = none
        self._steps = 0
        for one_euro in self._filters:
            one_euro.reset()

    @property
    def ids(self) -> np.ndarray:
        """``(Q,)`` int64 ids of the current queries, in the order ``step`` reports them."""
        return self._ids.copy()

    @property
    def canonical(self) -> np.ndarray:
        """``(Q, 3)`` float64 canonical coordinates of the current queries."""
        return self._canonical.copy()

    @property
    def num_queries(self) -> int:
        """Number of current queries ``Q``."""
        return len(self._ids)

    def seed(self, frame: TrackingFrame) -> np.ndarray:
        """Seed ``config.num_tracks`` queries of the configured kind (``config.queries``); returns their ids."""
        return self.seed_canonical() if self.config.queries == "canonical" else self.seed_grid(frame)

    def seed_canonical(self, num_tracks: int | None = None) -> np.ndarray:
        """Add the template queries ``0 .. num_tracks-1`` (default ``config.num_tracks``) not already tracked.

        Their ids are their query indices, so id ``k`` is the same facial point in every tracker.
        Returns the ``(K,)`` int64 ids added. Raises ``ValueError`` if pixel-query ids below
        ``num_tracks`` were already given out (they would collide).
        """
        num_tracks = self.config.num_tracks if num_tracks is None else num_tracks
        if self._first_pixel_id is not None and self._first_pixel_id < num_tracks:
            raise ValueError(f"pixel-query ids from {self._first_pixel_id} are in use; seed canonical queries "
                             f"(ids 0 .. {num_tracks - 1}) before adding pixel queries")
        ids = np.setdiff1d(np.arange(num_tracks, dtype=np.int64), self._ids)
        self._next_id = max(self._next_id, num_tracks)
        self._append(ids, canonical_queries(num_tracks)[ids])
        return ids

    def add_queries(self, frame: TrackingFrame, pixels: np.ndarray) -> np.ndarray:
        """Start tracks at ``(Q, 2)`` image pixels ``(u, v)`` of ``frame``; returns their ``(Q,)`` int64 ids.

        Each query's canonical coordinate is sampled bilinearly from ``frame.canonical`` over the
        searchable face pixels (mask, confidence >= ``min_confidence``), falling back to the
        nearest pixel at the face border. Raises ``ValueError`` (adding nothing) if a pixel lies
        outside the frame's area (``[-0.5, W-0.5) x [-0.5, H-0.5)`` from its ``origin``) or its nearest pixel is not
        searchable face.
        """
        _check_frame(frame)
        pixels = np.asarray(pixels, dtype=np.float64)
        if pixels.ndim != 2 or pixels.shape[1] != 2:
            raise ValueError(f"query pixels must have shape (Q, 2) as (u, v), got {pixels.shape}")
        grid = frame.to_grid(pixels)
        inside = np.all(np.isfinite(grid), axis=1)
        inside &= np.all((grid >= -0.5) & (grid < [frame.width - 0.5, frame.height - 0.5]), axis=1)
        if not inside.all():
            where = "" if frame.origin == (0, 0) else f" at {frame.origin}"
            raise ValueError(
                f"query pixels {pixels[~inside].tolist()} (rows {np.flatnonzero(~inside).tolist()}) lie outside "
                f"the {frame.width}x{frame.height} image{where}"
            )
        canonical = sample_bilinear_or_nearest(frame.canonical, grid, frame.searchable(self.config.min_confidence))
        off_face = np.isnan(canonical).any(axis=1)
        if off_face.any():
            raise ValueError(
                f"query pixels {pixels[off_face].tolist()} (rows {np.flatnonzero(off_face).tolist()}) are not on the "
                f"confident face (mask and confidence >= {self.config.min_confidence})"
            )
        if self._first_pixel_id is None:
            self._first_pixel_id = self._next_id
        ids = np.arange(self._next_id, self._next_id + len(pixels), dtype=np.int64)
        self._next_id += len(pixels)
        self._append(ids, canonical)
        return ids

    def _append(self, ids: np.ndarray, canonical: np.ndarray) -> None:
        self._ids = np.concatenate([self._ids, ids])
        self._canonical = np.concatenate([self._canonical, canonical])
        self._normals = np.concatenate([self._normals, template_surface().normals_at(canonical)])
        self._visible = np.concatenate([self._visible, np.zeros(len(ids), bool)])
        self._last_pixel = np.concatenate([self._last_pixel, np.full((len(ids), 2), -1, np.int64)])

    def seed_grid(self, frame: TrackingFrame, num_tracks: int | None = None, avoid: np.ndarray | None = None,
                  limit: int | None = None) -> np.ndarray:
        """Add pixel queries on a regular grid of about ``num_tracks`` (default ``config.num_tracks``) face pixels.

        The grid spacing ``sqrt(face pixels / num_tracks)`` (at least 1 pixel) is laid over the
        searchable face's bounding box; grid nodes on searchable pixels become queries, in
        row-major order. avoid: ``(A, 2)`` image pixels ``(u, v)`` (e.g. of tracks kept); nodes closer
        than half a spacing to one of them are skipped. limit: at most this many nodes are added.
        Returns their ``(Q,)`` int64 ids (empty if the frame has no face pixel).
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
        pixels = frame.to_image(np.stack([node_cols[on_face], node_rows[on_face]], axis=1).astype(np.float64))
        if avoid is not None and len(avoid):
            gap = np.linalg.norm(pixels[:, None] - np.asarray(avoid, np.float64)[None], axis=2).min(axis=1)
            pixels = pixels[gap >= spacing / 2]
        return self.add_queries(frame, pixels[:limit])

    def replace_lost(self, frame: TrackingFrame) -> np.ndarray:
        """Replace the pixel-query tracks invisible on the last step by grid queries on ``frame``'s uncovered face.

        Visible tracks and canonical template tracks keep their ids (a template track that is
        not visible is found again when its point reappears, so it is never replaced). Returns the
        ``(K,)`` int64 ids added (at most as many as were dropped).
        """
        if self._first_pixel_id is None:
            return np.zeros(0, np.int64)
        lost = ~self._visible & (self._ids >= self._first_pixel_id)
        if not lost.any():
            return np.zeros(0, np.int64)
        kept = ~lost
        for name in ("_ids", "_canonical", "_normals", "_visible", "_last_pixel"):
            setattr(self, name, getattr(self, name)[kept])
        covered = self._last_pixel[self._visible]
        return self.seed_grid(frame, avoid=covered, limit=int(lost.sum()))

    def step(self, frame: TrackingFrame, time_s: float | None = None) -> TrackState:
        """Locate every current query in ``frame``; see ``TrackState`` for the fields.

        The nearest searchable pixel (canonical distance) is refined to sub-pixel precision with
        ``config.refine`` (``subpixel.refine_matches``; the reported distance is the one at the refined
        pixel). Its 3-D point is
        the depth sampled there (bilinear, nearest at the face border), unprojected with the
        frame's intrinsics. Visibility: see ``TrackerConfig``. time_s: the frame's time in
        seconds for the optional One-Euro filter (default: steps ``1 / config.filter_rate_hz``
        apart). A query with no searchable pixel within ``SEARCH_BOUND * config.max_distance`` of it in
        canonical space (e.g. a point turned away, hidden, or outside the image) is invisible with NaN pixel,
        point and distance: it is never moved onto another facial point.
        """
        _check_frame(frame)
        searchable = frame.searchable(self.config.min_confidence)
        last = np.where(self._last_pixel >= 0, frame.to_grid(self._last_pixel), -1)  # this frame's grid
        nearest, distance = self._nearest(frame, searchable, last)
        found = nearest >= 0
        rows, cols = np.divmod(np.where(found, nearest, 0), frame.width)
        grid_pixel = np.stack([cols, rows], 1)
        pixels = np.where(found[:, None], grid_pixel, np.nan).astype(np.float64)
        if self.config.refine and found.any():
            pixels[found], distance[found] = refine_matches(frame.canonical, searchable, grid_pixel[found],
                                                            self._canonical[found], distance[found])
        self._last_pixel = np.where(found[:, None], frame.to_image(grid_pixel), -1)
        points = _points_at(frame, pixels)
        well_matched = distance <= self.config.enter_distance
        rotation = head_rotation(self._canonical[well_matched], points[well_matched])
        cosine = facing(self._normals, rotation, pixels, frame.intrinsics)
        jump = depth_step(frame.depth, searchable, pixels)
        config = self.config
        # NaN facing or depth step (no depth at the pixel) is unknown and vetoes nothing.
        consistent = ~(jump > config.max_depth_step)
        stays = (distance <= config.max_distance) & ~(cosine < config.min_facing) & consistent
        enters = (distance <= config.enter_distance) & ~(cosine < config.enter_facing) & consistent
        self._visible = np.where(self._visible, stays, enters)
        pixels = frame.to_image(pixels)
        if config.filter:
            pixels, points = self._filtered(pixels, points, time_s)
        self._steps += 1
        return TrackState(
            ids=self._ids.copy(),
            face=np.full(self.num_queries, self.face, np.int64),
            pixels=pixels.astype(np.float32),
            points=points.astype(np.float32),
            canonical=self._canonical.astype(np.float32),
            distance=distance.astype(np.float32),
            visible=self._visible.copy(),
        )

    def _nearest(self, frame: TrackingFrame, searchable: np.ndarray, last: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(flat pixel index (Q,) int64, -1 = none; canonical distance (Q,) float64, NaN = none)`` on the
        frame's grid; ``last``: ``(Q, 2)`` each query's last pixel on this grid (negative = none).

        Only pixels within ``SEARCH_BOUND * config.max_distance`` count (twice that for the coarse match).
        ``config.search_radius`` 0: exact search of every query over every searchable pixel (an
        index built per frame). Otherwise, while the windows hold fewer pixels than the face, a query
        visible on the last step is first matched in the ``search_radius`` window around its last
        pixel (kept when interior and within the bound); the others are matched over every
        n-th searchable row and column (``coarse_stride``: ``COARSE_STRIDE``, more on a large face), then
        in n-pixel windows around that match at full resolution, re-centred while the match lies on a
        window's border (``window_descent``).
        """
        nearest = np.full(self.num_queries, -1, np.int64)
        if not self.num_queries or not searchable.any():
            return nearest, np.full(self.num_queries, np.nan)
        radius = self.config.search_radius
        pending = np.ones(self.num_queries, bool)
        warm = self._visible & np.all((last >= 0) & (last < [frame.width, frame.height]), 1)
        # Windows pay while they read fewer pixels than an index over the face holds (measured in bench.tracking:
        # 640x480, 53k face pixels: 256 tracks 5.5 vs 7.8 ms CPU per step, 2048 tracks 16.7 vs 14.0 ms).
        window_pixels = int(warm.sum()) * (2 * radius + 1) ** 2
        if radius and warm.any() and window_pixels < np.count_nonzero(searchable):
            index, squared, interior = window_nearest(frame.canonical, searchable, self._canonical[warm],
                                                      last[warm], radius)
            accepted = interior & (squared <= (SEARCH_BOUND * self.config.max_distance) ** 2)
            rows = np.flatnonzero(warm)[accepted]
            nearest[rows], pending[rows] = index[accepted], False
        if pending.any():
            stride = coarse_stride(np.count_nonzero(searchable)) if radius else 1
            coarse = np.zeros_like(searchable)
            grid = strided_grid(frame.origin, stride)
            coarse[grid] = searchable[grid]
            candidates = np.flatnonzero(coarse if coarse.any() else searchable)
            reference = np.take(frame.canonical.reshape(-1, 3), candidates, axis=0)
            # A coarse match may lie a grid step from the best pixel: a looser bound. The step grows with the
            # face, so it spans about the same canonical distance on every face.
            bound = SEARCH_BOUND * self.config.max_distance * (2.0 if stride > 1 else 1.0)
            index = build_neighbour_index(reference, self.backend, self.device)
            found, _ = index.query(self._canonical[pending], bound)
            rows = np.flatnonzero(pending)[found >= 0]
            nearest[rows] = candidates[found[found >= 0]]
            if stride > 1 and len(rows):
                nearest[rows] = window_descent(frame.canonical, searchable, self._canonical[rows], nearest[rows],
                                               stride)
        # Distances recomputed in float64 so every search path reports identical values.
        distance = np.where(nearest >= 0, np.linalg.norm(
            self._canonical - frame.canonical.reshape(-1, 3)[np.maximum(nearest, 0)], axis=1), np.nan)
        return nearest, distance

    def _filtered(self, pixels: np.ndarray, points: np.ndarray, time_s: float | None
                  ) -> tuple[np.ndarray, np.ndarray]:
        """One-Euro filtered pixels and points of the visible tracks (invisible ones as given, filter restarted)."""
        time_s = self._steps / self.config.filter_rate_hz if time_s is None else time_s
        shown = self._visible[:, None]
        smooth = [np.where(shown, one_euro(self._ids, np.where(shown, values, np.nan), time_s), values)
                  for one_euro, values in zip(self._filters, (pixels, points))]
        return smooth[0], smooth[1]

    def track(
        self, frames: Sequence[TrackingFrame], queries: Sequence[tuple[int, np.ndarray]] | None = None
    ) -> Tracks:
        """Track a whole sequence; the same as ``reset`` then ``add_queries`` + ``step`` per frame.

        queries: ``(frame_index, pixels (Q_i, 2))`` entries, added (in list order) just before
        their frame is stepped; None seeds ``seed`` on the first frame with face pixels.
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
            if queries is None and self.num_queries == 0 and frame.searchable(self.config.min_confidence).any():
                self.seed(frame)
            for query_frame, pixels in queries or ():
                if query_frame == frame_index:
                    self.add_queries(frame, pixels)
            states.append(self.step(frame))
        return Tracks.from_states(states)


def coarse_stride(pixels: int) -> int:
    """Grid step of the coarse match over a face of ``pixels`` searchable pixels: ``COARSE_STRIDE``, or the
    smallest larger step whose grid holds about ``COARSE_CANDIDATES`` of them at most."""
    return max(COARSE_STRIDE, math.ceil(math.sqrt(pixels / COARSE_CANDIDATES)))


def _check_config(config: TrackerConfig) -> None:
    """``ValueError`` naming the first ``TrackerConfig`` field out of its range."""
    if config.queries not in TRACK_QUERIES:
        raise ValueError(f"TrackerConfig.queries = {config.queries!r}; choose one of {list(TRACK_QUERIES)}")
    if config.num_tracks < 1:
        raise ValueError(f"TrackerConfig.num_tracks must be >= 1, got {config.num_tracks}")
    if not 0 < config.enter_distance <= config.max_distance:
        raise ValueError(f"TrackerConfig needs 0 < enter_distance <= max_distance, got {config.enter_distance} and "
                         f"{config.max_distance}")
    if not -1 <= config.min_facing <= config.enter_facing <= 1:
        raise ValueError(f"TrackerConfig needs -1 <= min_facing <= enter_facing <= 1, got {config.min_facing} and "
                         f"{config.enter_facing}")
    if not config.max_depth_step > 0 or config.search_radius < 0 or not config.filter_rate_hz > 0:
        raise ValueError("TrackerConfig needs max_depth_step > 0, search_radius >= 0 and filter_rate_hz > 0, got "
                         f"{config.max_depth_step}, {config.search_radius}, {config.filter_rate_hz}")


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
