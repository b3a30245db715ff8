"""Track queries defined on the canonical template surface: the same id is the same facial point everywhere.

The canonical space's template mesh (``canonical.space``: vertices and triangles) is sampled
densely and deterministically (the centroids of an ``n x n`` subdivision of every triangle, with
smooth, area-weighted vertex normals interpolated there); ``canonical_queries(Q)`` takes ``Q`` of
those samples by farthest-point sampling, starting from the front-most sample (the nose tip). No
random numbers are involved, so query ``k`` has the same canonical coordinate in every video,
session and person, and the first ``Q`` of ``Q' > Q`` queries are the same points.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
from scipy.spatial import cKDTree

from faceanything_ros.canonical.space import MEDIAPIPE_SPACE_ID, CanonicalSpace, load_canonical_space

SUBDIVISION = 6  # each template triangle is split into SUBDIVISION^2 sub-triangles, one sample per sub-triangle


@dataclass(frozen=True)
class TemplateSurface:
    """Dense samples of a canonical template surface (``S`` samples).

    points: ``(S, 3)`` float64 canonical coordinates on the template surface, ``[-1, 1]^3``.
    normals: ``(S, 3)`` float64 unit outward normals (pointing out of the face, towards a camera
        that sees the face frontally; template frame: x image right, y down, z into the head).
    triangles: ``(S, 3)`` int64 vertex indices of the template triangle holding each sample.
    barycentrics: ``(S, 3)`` float64 weights of those vertices (``points = barycentrics . vertices``).
    """

    points: np.ndarray
    normals: np.ndarray
    triangles: np.ndarray
    barycentrics: np.ndarray

    @classmethod
    def of_space(cls, space: CanonicalSpace, subdivision: int = SUBDIVISION) -> "TemplateSurface":
        """Samples of ``space``'s template mesh in canonical coordinates (module docstring)."""
        vertices = space.canonical_template
        triangles = np.asarray(space.topology, dtype=np.int64)
        corners = vertices[triangles]  # (F, 3, 3)
        face_normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])  # |n| = 2 area
        if face_normals.sum(axis=0)[2] > 0:  # orient out of the face: towards -z, the frontal camera
            face_normals = -face_normals
        vertex_normals = np.zeros_like(vertices)
        for corner in range(3):
            np.add.at(vertex_normals, triangles[:, corner], face_normals)
        vertex_normals /= np.maximum(np.linalg.norm(vertex_normals, axis=1, keepdims=True), 1e-12)
        weights = _subdivision_barycentrics(subdivision)  # (n^2, 3)
        points = np.einsum("sk,fkc->fsc", weights, corners).reshape(-1, 3)
        normals = np.einsum("sk,fkc->fsc", weights, vertex_normals[triangles]).reshape(-1, 3)
        normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
        return cls(points=points, normals=normals, triangles=np.repeat(triangles, len(weights), axis=0),
                   barycentrics=np.tile(weights, (len(triangles), 1)))

    @cached_property
    def _index(self) -> cKDTree:
        return cKDTree(self.points)

    def nearest(self, canonical: np.ndarray) -> np.ndarray:
        """``(Q,)`` int64 index of the surface sample nearest to each of ``(Q, 3)`` canonical points."""
        _, index = self._index.query(np.asarray(canonical, dtype=np.float64).reshape(-1, 3))
        return np.asarray(index, dtype=np.int64)

    def normals_at(self, canonical: np.ndarray) -> np.ndarray:
        """``(Q, 3)`` unit template normals at the surface samples nearest to ``(Q, 3)`` canonical points."""
        return self.normals[self.nearest(canonical)]

    def on_mesh(self, canonical: np.ndarray, vertices: np.ndarray) -> np.ndarray:
        """``(Q, 3)`` positions of ``(Q, 3)`` canonical points on a mesh with the template's topology.

        vertices: ``(V, 3)`` the mesh's vertices (e.g. a posed, metric face mesh); each point is
        placed with the triangle and barycentric weights of its nearest template sample.
        """
        index = self.nearest(canonical)
        return np.einsum("qk,qkc->qc", self.barycentrics[index], np.asarray(vertices)[self.triangles[index]])

    def farthest_points(self, count: int) -> np.ndarray:
        """``(count,)`` int64 sample indices chosen by farthest-point sampling from the front-most sample."""
        if not 1 <= count <= len(self.points):
            raise ValueError(f"number of canonical queries must be in [1, {len(self.points)}], got {count}")
        chosen = np.empty(count, dtype=np.int64)
        chosen[0] = int(np.argmin(self.points[:, 2]))
        distance = np.linalg.norm(self.points - self.points[chosen[0]], axis=1)
        for k in range(1, count):
            chosen[k] = int(np.argmax(distance))
            np.minimum(distance, np.linalg.norm(self.points - self.points[chosen[k]], axis=1), out=distance)
        return chosen


@lru_cache(maxsize=4)
def template_surface(space_id: str = MEDIAPIPE_SPACE_ID) -> TemplateSurface:
    """The (cached) ``TemplateSurface`` of canonical space ``space_id``."""
    return TemplateSurface.of_space(load_canonical_space(space_id))


@lru_cache(maxsize=8)
def _farthest(space_id: str, count: int) -> np.ndarray:
    return template_surface(space_id).farthest_points(count)


def canonical_queries(count: int, space_id: str = MEDIAPIPE_SPACE_ID) -> np.ndarray:
    """``(count, 3)`` float64 canonical coordinates of the semantic track queries ``0 .. count-1``."""
    return template_surface(space_id).points[_farthest(space_id, count)].copy()


def _subdivision_barycentrics(n: int) -> np.ndarray:
    """``(n^2, 3)`` barycentric coordinates of the centroids of the ``n x n`` subdivision of a triangle."""
    upward = [((i + 1 / 3) / n, (j + 1 / 3) / n) for i in range(n) for j in range(n - i)]
    downward = [((i + 2 / 3) / n, (j + 2 / 3) / n) for i in range(n - 1) for j in range(n - 1 - i)]
    second_third = np.array(upward + downward)
    return np.column_stack([1.0 - second_third.sum(axis=1), second_third])
