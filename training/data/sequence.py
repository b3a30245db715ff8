"""Sequence samples: T re-rendered frames with exact dense correspondences (tracks).

A track starts at a query pixel centre of one frame's ``mask``; its surface point is fixed by
the topology (triangle id + barycentric weights), so in any other frame it is the same facial
point on that frame's posed mesh, even when the face deforms between video frames. Its position
in frame ``t`` is the projection of that point by camera ``t``; it is visible in frame ``t`` when it
lies in the image, on the rendered face (``mask``) and in front (its z-depth agrees with the
frame's depth map at the nearest pixel within ``OCCLUSION_TOLERANCE`` of its depth).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from faceanything_ros.geometry.projection import project_points
from training.data.cameras import Camera, invert_pose, transform_points
from training.data.rerender import RenderedView, SourceFrame, render_view

OCCLUSION_TOLERANCE = 0.01  # relative z difference below which a tracked point counts as unoccluded


@dataclass
class Tracks:
    """Correspondences of ``N`` query points over ``T`` frames.

    pixels: (N, T, 2) float32 pixel positions (u, v) in every frame (NaN when behind a camera);
    visible: (N, T) bool; canonical: (N, 3) float32 canonical coordinates of the points;
    query_frame: (N,) int32 frame of each query (its pixel there is a pixel centre).
    """

    pixels: np.ndarray
    visible: np.ndarray
    canonical: np.ndarray
    query_frame: np.ndarray


def render_sequence(sources: list[SourceFrame], cameras: list[Camera], triangles: np.ndarray,
                    canonical: np.ndarray) -> list[RenderedView]:
    """Render frame ``t`` of ``sources`` (T labelled frames) from ``cameras[t]``; T views."""
    if len(sources) != len(cameras) or not sources:
        raise ValueError(f"need one camera per source frame, got {len(sources)} frames and {len(cameras)} cameras")
    return [render_view(source, camera, triangles, canonical) for source, camera in zip(sources, cameras)]


def surface_points(vertices: np.ndarray, triangles: np.ndarray, triangle: np.ndarray,
                   barycentrics: np.ndarray) -> np.ndarray:
    """``(N, 3)`` float64 mesh points: ``sum_k barycentrics[:, k] * vertices[triangles[triangle, k]]``.

    vertices: (V, 3) metres; triangle: (N,) int ids; barycentrics: (N, 3) weights.
    """
    corners = vertices[triangles[triangle]]
    return np.einsum("nk,nkc->nc", np.asarray(barycentrics, dtype=np.float64), corners)


def sample_tracks(rng: np.random.Generator, views: list[RenderedView], vertices: list[np.ndarray],
                  triangles: np.ndarray, count: int) -> Tracks:
    """``count`` tracks with queries drawn uniformly from the masked pixels of all frames.

    views: T rendered views; vertices: T posed meshes (V, 3) in world metres (the meshes the
    views were rendered from). Raises ``ValueError`` when no frame has a masked pixel.
    """
    masks = np.stack([view.mask for view in views])
    candidates = np.flatnonzero(masks)
    if not len(candidates):
        raise ValueError("cannot sample tracks: no frame shows any face pixel")
    chosen = rng.choice(candidates, size=count, replace=len(candidates) < count)
    frame, row, col = np.unravel_index(chosen, masks.shape)
    pixels = np.empty((count, len(views), 2), dtype=np.float32)
    visible = np.zeros((count, len(views)), dtype=bool)
    triangle = np.stack([view.triangle for view in views])[frame, row, col]
    weights = np.stack([view.barycentrics for view in views])[frame, row, col]
    canonical = np.stack([view.canonical for view in views])[frame, row, col]
    for t, (view, mesh) in enumerate(zip(views, vertices)):
        camera_points = transform_points(invert_pose(view.world_from_camera), surface_points(mesh, triangles, triangle, weights))
        projected, z = project_points(camera_points, view.intrinsics)
        pixels[:, t] = projected
        visible[:, t] = _unoccluded(view, projected, z)
    query = frame.astype(np.int32)
    pixels[np.arange(count), query] = np.stack([col, row], axis=1)
    visible[np.arange(count), query] = True
    return Tracks(pixels, visible, canonical.astype(np.float32), query)


def _unoccluded(view: RenderedView, pixels: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``(N,)`` bool: projected points inside the image, on the mask and not behind the depth map."""
    height, width = view.mask.shape
    finite = np.all(np.isfinite(pixels), axis=1)
    cols = np.rint(np.where(finite, pixels[:, 0], -1)).astype(np.int64)
    rows = np.rint(np.where(finite, pixels[:, 1], -1)).astype(np.int64)
    inside = finite & (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
    on_mask = np.zeros(len(z), dtype=bool)
    on_mask[inside] = view.mask[rows[inside], cols[inside]]
    depth = np.full(len(z), np.nan)
    depth[on_mask] = view.depth[rows[on_mask], cols[on_mask]]
    with np.errstate(invalid="ignore"):
        return on_mask & (np.abs(z - depth) <= OCCLUSION_TOLERANCE * z)
