"""Triangle topology of mediapipe's 478-point face mesh, derived from its bundled tessellation edges.

mediapipe ships the face-mesh surface only as an edge set (``FACEMESH_TESSELATION``, 2556 directed
edges over the 468 surface landmarks; the edge set lost the triangle grouping). Triangles are
recovered as follows:

1. every 3-clique of the undirected edge graph is a candidate triangle (854 candidates);
2. a manifold surface has at most two triangles per edge: a clique whose three edges each carry
   three candidates is a "hole-spanning" cycle, not a face, and is dropped (2 of them), leaving
   852 = 2556 / 3 triangles;
3. triangles are oriented consistently by propagating across shared edges (neighbours traverse a
   shared edge in opposite directions), then globally flipped so that normals of the template
   face point towards a camera looking at the face (``-z`` in the template frame).

The result is checked by ``surface_report``: every interior edge is shared by exactly two
triangles with opposite orientation, no duplicate or degenerate triangles, and the Euler
characteristic ``V - E + F`` is -2 with 4 boundary loops: a disk (the face outline) with three
holes (two eyes, the mouth), i.e. ``chi = 2 - 4``.

The 10 iris landmarks (468-477, ``refine_landmarks=True``) are not part of the surface: they sit
in the eye holes and have no triangles, so they are never rasterised; their canonical
coordinates are still defined (the template holds all 478 points).
"""
from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass

import numpy as np

NUM_SURFACE_LANDMARKS = 468  # mesh vertices with triangles; 468-477 are the iris points
EXPECTED_EULER_CHARACTERISTIC = -2  # disk with eye and mouth holes: 2 - 4 boundary loops
EXPECTED_BOUNDARY_LOOPS = 4  # face outline, two eyes, mouth


@dataclass(frozen=True)
class SurfaceReport:
    """Combinatorial facts of a triangle mesh (see ``surface_report``)."""

    num_vertices: int  # vertices used by at least one triangle
    num_edges: int  # distinct undirected edges
    num_triangles: int
    interior_edges: int  # edges shared by exactly 2 triangles
    boundary_edges: int  # edges of exactly 1 triangle
    nonmanifold_edges: int  # edges of 3 or more triangles
    inconsistent_edges: int  # interior edges traversed in the same direction by both triangles
    duplicate_triangles: int  # triangles with the same vertex set as an earlier one
    degenerate_triangles: int  # triangles repeating a vertex
    boundary_loops: int  # connected boundary cycles

    @property
    def euler_characteristic(self) -> int:
        """``V - E + F``."""
        return self.num_vertices - self.num_edges + self.num_triangles


def mediapipe_tessellation_edges() -> set[tuple[int, int]]:
    """mediapipe's bundled ``FACEMESH_TESSELATION`` as a set of directed ``(i, j)`` landmark index pairs."""
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_TESSELATION

    return set(FACEMESH_TESSELATION)


def triangles_from_edges(edges: set[tuple[int, int]]) -> np.ndarray:
    """``(F, 3)`` int32 consistently oriented triangles whose edges are ``edges`` (steps 1-3 of the module docstring, without the global flip)."""
    neighbours: dict[int, set[int]] = defaultdict(set)
    for a, b in edges:
        neighbours[a].add(b)
        neighbours[b].add(a)
    cliques = sorted({tuple(sorted((a, b, c))) for a, b in edges for c in neighbours[a] & neighbours[b]})
    uses: dict[tuple[int, int], int] = defaultdict(int)
    for tri in cliques:
        for edge in _undirected_edges(tri):
            uses[edge] += 1
    faces = [tri for tri in cliques if not all(uses[edge] >= 3 for edge in _undirected_edges(tri))]
    return _orient_consistently(np.array(faces, dtype=np.int32))


def orient_towards_camera(triangles: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """``triangles`` reversed if their area-weighted mean normal points along ``+z`` (away from a camera at ``-z``)."""
    corners = vertices[triangles]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    return triangles[:, ::-1].copy() if normals.sum(axis=0)[2] > 0 else triangles


def surface_report(triangles: np.ndarray) -> SurfaceReport:
    """Edge sharing, orientation consistency, duplicates, degeneracies and boundary loops of ``(F, 3)`` triangles."""
    directed: dict[tuple[int, int], int] = defaultdict(int)
    for a, b, c in triangles.tolist():
        for edge in ((a, b), (b, c), (c, a)):
            directed[edge] += 1
    undirected: dict[tuple[int, int], int] = defaultdict(int)
    for (a, b), count in directed.items():
        undirected[(min(a, b), max(a, b))] += count
    boundary = [edge for edge, count in undirected.items() if count == 1]
    return SurfaceReport(
        num_vertices=len(np.unique(triangles)),
        num_edges=len(undirected),
        num_triangles=len(triangles),
        interior_edges=sum(1 for count in undirected.values() if count == 2),
        boundary_edges=len(boundary),
        nonmanifold_edges=sum(1 for count in undirected.values() if count >= 3),
        inconsistent_edges=sum(1 for count in directed.values() if count > 1),
        duplicate_triangles=len(triangles) - len({tuple(sorted(t)) for t in triangles.tolist()}),
        degenerate_triangles=sum(1 for t in triangles.tolist() if len(set(t)) < 3),
        boundary_loops=_count_components(boundary),
    )


def _undirected_edges(tri: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    a, b, c = sorted(tri)
    return (a, b), (b, c), (a, c)


def _orient_consistently(triangles: np.ndarray) -> np.ndarray:
    """Flip triangles so neighbours traverse shared edges in opposite directions (breadth-first per component)."""
    by_edge: dict[tuple[int, int], list[int]] = defaultdict(list)
    for index, tri in enumerate(triangles.tolist()):
        for edge in _undirected_edges(tuple(tri)):
            by_edge[edge].append(index)
    oriented = triangles.copy()
    done = np.zeros(len(triangles), dtype=bool)
    for seed in range(len(triangles)):
        if done[seed]:
            continue
        done[seed] = True
        queue = deque([seed])
        while queue:
            current = queue.popleft()
            a, b, c = oriented[current].tolist()
            for u, v in ((a, b), (b, c), (c, a)):
                for other in by_edge[(min(u, v), max(u, v))]:
                    if done[other]:
                        continue
                    x, y, z = oriented[other].tolist()
                    if (u, v) in ((x, y), (y, z), (z, x)):  # same direction: flip the neighbour
                        oriented[other] = oriented[other][::-1]
                    done[other] = True
                    queue.append(other)
    return oriented


def _count_components(edges: list[tuple[int, int]]) -> int:
    """Connected components of the graph spanned by ``edges``."""
    parent: dict[int, int] = {}

    def root(node: int) -> int:
        while parent.setdefault(node, node) != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for a, b in edges:
        parent[root(a)] = root(b)
    return len({root(node) for node in parent})
