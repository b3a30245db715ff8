"""Exact nearest-neighbour search of query points among reference points (Euclidean, 3-D).

Two interchangeable backends, built once per frame from that frame's reference points and then
queried: ``KDTreeNeighbours`` (scipy ``cKDTree``, CPU) and ``TorchNeighbours`` (brute force
``torch.cdist`` + argmin in chunks, for CUDA devices). Both return the same nearest index for
the same input (up to exact distance ties); distances agree to float32 precision.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np
import torch
from scipy.spatial import cKDTree

BACKENDS = ("kdtree", "torch")
DEFAULT_CHUNK_ELEMENTS = 1 << 24  # distance-matrix entries computed at once by the torch backend
KDTREE_LEAF_SIZE = 128  # points per k-d tree leaf


class NeighbourIndex(Protocol):
    """Reference points that answer nearest-neighbour queries."""

    def query(self, queries: np.ndarray, max_distance: float = np.inf) -> tuple[np.ndarray, np.ndarray]:
        """Nearest reference point of each of ``(Q, D)`` queries: ``(index (Q,) int64, distance (Q,) float64)``.

        A query with no reference point within ``max_distance`` gets index -1 and distance inf.
        """
        ...


class KDTreeNeighbours:
    """``cKDTree`` over ``(M, D)`` reference points, ``M >= 1``."""

    def __init__(self, points: np.ndarray) -> None:
        points = _check_points(points, "reference points", allow_empty=False)
        # Median-free, uncompacted build with large leaves: for a dense 200k-pixel face map ~3x faster to
        # build than the defaults, at the cost of slower queries (few: one per track); results stay exact.
        self._tree = cKDTree(points, leafsize=KDTREE_LEAF_SIZE, balanced_tree=False, compact_nodes=False)

    def query(self, queries: np.ndarray, max_distance: float = np.inf) -> tuple[np.ndarray, np.ndarray]:
        """``NeighbourIndex.query``; a bounded search also prunes the tree (far queries are fast)."""
        queries = _check_points(queries, "queries", allow_empty=True, dims=self._tree.m)
        distance, index = self._tree.query(queries, k=1, distance_upper_bound=max_distance)
        return _unmatched_as_minus_one(np.asarray(index, dtype=np.int64), np.asarray(distance, dtype=np.float64))


class TorchNeighbours:
    """Brute-force search over ``(M, D)`` reference points held on a torch ``device`` in float32.

    The ``(Q, M)`` distance matrix is computed in blocks of at most ``chunk_elements`` entries
    (query chunks, and reference chunks when ``M`` alone exceeds the budget), so memory stays
    bounded for full-resolution frames.
    """

    def __init__(
        self, points: np.ndarray, device: str | torch.device = "cpu", chunk_elements: int = DEFAULT_CHUNK_ELEMENTS
    ) -> None:
        if chunk_elements < 1:
            raise ValueError(f"chunk_elements must be >= 1, got {chunk_elements}")
        points = _check_points(points, "reference points", allow_empty=False)
        self._device = torch.device(device)
        self._points = torch.as_tensor(points, dtype=torch.float32, device=self._device)
        self._chunk_elements = chunk_elements

    def query(self, queries: np.ndarray, max_distance: float = np.inf) -> tuple[np.ndarray, np.ndarray]:
        """``NeighbourIndex.query``."""
        queries = _check_points(queries, "queries", allow_empty=True, dims=self._points.shape[1])
        count = self._points.shape[0]
        reference_chunk = min(count, self._chunk_elements)
        query_chunk = max(1, self._chunk_elements // reference_chunk)
        query_tensor = torch.as_tensor(queries, dtype=torch.float32, device=self._device)
        best_distance = torch.full((len(queries),), torch.inf, device=self._device)
        best_index = torch.zeros(len(queries), dtype=torch.int64, device=self._device)
        for q_start in range(0, len(queries), query_chunk):
            rows = slice(q_start, q_start + query_chunk)
            for r_start in range(0, count, reference_chunk):
                distances = torch.cdist(
                    query_tensor[rows],
                    self._points[r_start : r_start + reference_chunk],
                    compute_mode="donot_use_mm_for_euclid_dist",
                )
                chunk_distance, chunk_index = distances.min(dim=1)
                better = chunk_distance < best_distance[rows]
                best_distance[rows] = torch.where(better, chunk_distance, best_distance[rows])
                best_index[rows] = torch.where(better, chunk_index + r_start, best_index[rows])
        distance = best_distance.double().cpu().numpy()
        return _unmatched_as_minus_one(best_index.cpu().numpy(), np.where(distance <= max_distance, distance, np.inf))


def build_neighbour_index(
    points: np.ndarray, backend: str = "kdtree", device: str | torch.device = "cpu"
) -> NeighbourIndex:
    """A ``NeighbourIndex`` over ``(M, D)`` reference points; ``backend`` "kdtree" or "torch" (on ``device``)."""
    if backend == "kdtree":
        return KDTreeNeighbours(points)
    if backend == "torch":
        return TorchNeighbours(points, device)
    raise ValueError(f"unknown neighbour search backend {backend!r}; choose one of {BACKENDS}")


def _unmatched_as_minus_one(index: np.ndarray, distance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(index, distance)`` with index -1 wherever the distance is inf (no neighbour within the bound)."""
    return np.where(np.isfinite(distance), index, -1), distance


def _check_points(points: np.ndarray, name: str, allow_empty: bool, dims: int | None = None) -> np.ndarray:
    """``points`` as a 2-D finite array (``(N, dims)``), else ``ValueError`` naming ``name``."""
    array = np.asarray(points)
    if array.ndim != 2 or (dims is not None and array.shape[1] != dims):
        raise ValueError(f"{name} must have shape (N, {dims if dims is not None else 'D'}), got {array.shape}")
    if not allow_empty and array.shape[0] == 0:
        raise ValueError(f"{name} must not be empty")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contain NaN or infinite values")
    return array
