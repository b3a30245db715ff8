"""Exact-geometry re-renders: a frame's posed face mesh, textured with the frame's own pixels,
rendered from a new camera with exact ground truth.

World frame = the source camera's optical frame (x right, y down, z forward; metres), where the
pseudo-label's posed mesh lives. For every pixel of the new view the rasteriser gives the visible
surface point (perspective-correct barycentrics of one triangle, so the interpolated world
position is exactly the mesh point seen through the pixel centre). That point is projected into
the source camera and the source image is sampled there (bilinear, ``cv2.remap``), but only when the point is
visible in the source (its depth is not behind the source depth map by more than
``SOURCE_DEPTH_TOLERANCE`` of its depth): surface the source never saw is *marked* (``surface`` True, ``mask`` False) and
shows background, and all ground truth is restricted to ``mask``. A re-render from the source
camera itself therefore reproduces the source pixels and the pseudo-label's maps.

Ground truth per view (``RenderedView``): z-depth (metres), canonical coordinates ([-1, 1]^3), mask,
intrinsics, ``world_from_camera`` pose; the ray map is ``rays_from_intrinsics(intrinsics)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from faceanything_ros.geometry.camera import crop_resize_intrinsics, validate_intrinsics
from faceanything_ros.geometry.projection import project_points
from faceanything_ros.geometry.rasterizer import rasterize
from faceanything_ros.geometry.rays import rays_from_intrinsics
from training.data.cameras import Camera

SOURCE_DEPTH_TOLERANCE = 0.01  # relative z difference below which a point counts as seen by the source
SOURCE_VISIBILITY_PIXELS = 320  # the source depth map is rendered with the face at most this many pixels wide
UNTEXTURED = -16.0  # source pixel coordinate looked up for untextured pixels: outside, so black


@dataclass
class SourceFrame:
    """A labelled source frame: ``rgb`` (H, W, 3) uint8, the posed mesh ``vertices`` (V, 3) float64
    metres in its camera frame (= world), ``intrinsics`` (3, 3) pixels, ``rotation`` (3, 3) head
    rotation template -> camera, and ``source_depth``/``source_intrinsics``: the mesh's z-depth
    (h, w) float32 (NaN background) rendered at a possibly reduced resolution, for visibility."""

    rgb: np.ndarray
    vertices: np.ndarray
    intrinsics: np.ndarray
    rotation: np.ndarray
    source_depth: np.ndarray
    source_intrinsics: np.ndarray

    @property
    def face_centre(self) -> np.ndarray:
        """``(3,)`` float64 centre (metres, world) of the mesh's bounding box."""
        return (self.vertices.min(axis=0) + self.vertices.max(axis=0)) / 2.0

    @property
    def face_diameter_m(self) -> float:
        """Largest bounding-box side of the mesh (metres)."""
        return float(np.max(self.vertices.max(axis=0) - self.vertices.min(axis=0)))


def source_frame(rgb: np.ndarray, vertices: np.ndarray, intrinsics: np.ndarray, rotation: np.ndarray,
                 triangles: np.ndarray) -> SourceFrame:
    """Build a ``SourceFrame``, rendering the source depth map used for visibility.

    rgb: (H, W, 3) uint8; vertices: (V, 3) metres, camera frame; intrinsics: (3, 3) of ``rgb``;
    rotation: (3, 3) template -> camera; triangles: (F, 3) int topology. The depth map keeps the
    source resolution unless the face is wider than ``SOURCE_VISIBILITY_PIXELS`` pixels.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"source rgb must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
    K = validate_intrinsics(intrinsics, "source intrinsics")
    vertices = np.asarray(vertices, dtype=np.float64)
    if not np.all(np.isfinite(vertices)) or np.any(vertices[:, 2] <= 0):
        raise ValueError("source mesh vertices must be finite and in front of the camera (z > 0)")
    pixels, _ = project_points(vertices, K)
    extent = float(np.max(pixels.max(axis=0) - pixels.min(axis=0)))
    scale = min(1.0, SOURCE_VISIBILITY_PIXELS / max(extent, 1.0))
    height, width = (max(1, round(n * scale)) for n in rgb.shape[:2])
    reduced = crop_resize_intrinsics(K, 0.0, 0.0, scale) if scale < 1.0 else K
    depth = rasterize(vertices, triangles, reduced, height, width).depth
    return SourceFrame(rgb, vertices, K, np.asarray(rotation, dtype=np.float64), depth, reduced)


@dataclass
class RenderedView:
    """One re-rendered view of ``size x size`` pixels with exact ground truth.

    rgb: (S, S, 3) uint8 texture from the source (0 outside ``mask``); depth: (S, S) float32 z-depth
    metres, NaN outside ``mask``; canonical: (S, S, 3) float32 in [-1, 1], NaN outside ``mask``;
    mask: (S, S) bool, surface seen by the source (ground truth valid); surface: (S, S) bool, any
    mesh surface (``mask`` plus surface the source never saw); triangle: (S, S) int32 visible
    triangle (-1 background); barycentrics: (S, S, 3) float32 perspective-correct weights;
    intrinsics: (3, 3) float64; world_from_camera: (4, 4) float64.
    """

    rgb: np.ndarray
    depth: np.ndarray
    canonical: np.ndarray
    mask: np.ndarray
    surface: np.ndarray
    triangle: np.ndarray
    barycentrics: np.ndarray
    intrinsics: np.ndarray
    world_from_camera: np.ndarray

    @property
    def rays(self) -> np.ndarray:
        """``(S, S, 3)`` float64 unit ray map (optical frame): ``rays_from_intrinsics(intrinsics)``."""
        return rays_from_intrinsics(self.intrinsics, *self.depth.shape)


def render_view(source: SourceFrame, camera: Camera, triangles: np.ndarray, canonical: np.ndarray) -> RenderedView:
    """Render ``source``'s textured mesh from ``camera``.

    triangles: (F, 3) int topology; canonical: (V, 3) per-vertex canonical coordinates in [-1, 1].
    """
    vertices_camera = camera.to_camera(source.vertices)
    raster = rasterize(vertices_camera, triangles, camera.intrinsics, camera.size, camera.size, canonical)
    surface = raster.mask
    corners = triangles[raster.triangle[surface]]
    points = np.einsum("nk,nkc->nc", raster.barycentrics[surface].astype(np.float64), source.vertices[corners])
    pixels, _ = project_points(points, source.intrinsics)
    height, width = source.rgb.shape[:2]
    inside = np.all((pixels >= 0) & (pixels <= [width - 1, height - 1]), axis=1)
    seen = _seen_by_source(source, points) & inside
    mask = np.zeros_like(surface)
    mask[surface] = seen
    # bilinear texture lookup of every textured pixel at its source projection
    lookup = np.full((camera.size, camera.size, 2), UNTEXTURED, dtype=np.float32)
    lookup[mask] = pixels[seen]
    rgb = cv2.remap(source.rgb, lookup[..., 0], lookup[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    depth = np.where(mask, raster.depth, np.float32(np.nan))
    canonical_map = np.where(mask[..., None], raster.attributes, np.float32(np.nan))
    return RenderedView(rgb, depth, canonical_map, mask, surface, raster.triangle, raster.barycentrics,
                        camera.intrinsics.copy(), camera.world_from_camera.copy())


def _seen_by_source(source: SourceFrame, points: np.ndarray) -> np.ndarray:
    """``(N,)`` bool: world points (N, 3) not hidden behind the source depth map.

    The point's source depth is compared with the farthest of the 2 x 2 source pixels around its
    projection, so steep (grazing) surface is not lost to the pixel grid.
    """
    pixels, z = project_points(points, source.source_intrinsics)
    height, width = source.source_depth.shape
    finite = np.all(np.isfinite(pixels), axis=1)
    u = np.where(finite, pixels[:, 0], -2.0)
    v = np.where(finite, pixels[:, 1], -2.0)
    inside = finite & (u > -0.5) & (u < width - 0.5) & (v > -0.5) & (v < height - 0.5)
    surface_z = np.full(len(points), np.nan)
    with np.errstate(invalid="ignore"):
        for cols, rows in ((np.floor(u), np.floor(v)), (np.ceil(u), np.floor(v)), (np.floor(u), np.ceil(v)),
                           (np.ceil(u), np.ceil(v))):
            cols = np.clip(cols, 0, width - 1).astype(np.int64)
            rows = np.clip(rows, 0, height - 1).astype(np.int64)
            surface_z = np.fmax(surface_z, np.where(inside, source.source_depth[rows, cols], np.nan))
        return inside & (z <= surface_z * (1.0 + SOURCE_DEPTH_TOLERANCE))


