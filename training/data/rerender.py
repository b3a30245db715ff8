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

Pixels off the textured face show the source frame's own surroundings (hair, neck, shoulders,
background) where the source has them: the source image is treated as a plane facing the source
camera ``CONTEXT_DEPTH_FACES`` face diameters behind the face centre, and each such pixel's ray is
intersected with that plane and looked up in the source (``context``; source pixels on the face
itself are not used, so no second face appears). Context is image only, never ground truth.

Ground truth per view (``RenderedView``): z-depth (metres), canonical coordinates ([-1, 1]^3), mask,
intrinsics, ``world_from_camera`` pose; the ray map is ``rays_from_intrinsics(intrinsics)``.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

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
CONTEXT_DEPTH_FACES = 0.5  # the context plane lies this many face diameters behind the face centre


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

    @cached_property
    def farthest_depth(self) -> np.ndarray:
        """``(h + 1, w + 1)`` float32: entry ``[r, c]`` is the largest finite ``source_depth`` of rows
        ``r - 1, r`` and columns ``c - 1, c`` (the 2 x 2 pixels around a point projected between them), NaN if none."""
        padded = np.pad(self.source_depth, 1, constant_values=np.nan)
        return np.fmax(np.fmax(padded[:-1, :-1], padded[1:, :-1]), np.fmax(padded[:-1, 1:], padded[1:, 1:]))


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
    mesh surface (``mask`` plus surface the source never saw); context: (S, S) bool, pixels off
    ``mask`` that show the source's surroundings (image only); triangle: (S, S) int32 visible
    triangle (-1 background); barycentrics: (S, S, 3) float32 perspective-correct weights;
    intrinsics: (3, 3) float64; world_from_camera: (4, 4) float64.
    """

    rgb: np.ndarray
    depth: np.ndarray
    canonical: np.ndarray
    mask: np.ndarray
    surface: np.ndarray
    context: np.ndarray
    triangle: np.ndarray
    barycentrics: np.ndarray
    intrinsics: np.ndarray
    world_from_camera: np.ndarray

    def restricted(self, keep: np.ndarray) -> "RenderedView":
        """A copy whose ``mask``, ``surface`` and ``context`` are limited to ``keep`` (S, S) bool
        (e.g. pixels inside the camera frame, not behind an occluder); depth and canonical become
        NaN where the mask is removed."""
        mask = self.mask & keep
        return RenderedView(self.rgb, np.where(mask, self.depth, np.float32(np.nan)),
                            np.where(mask[..., None], self.canonical, np.float32(np.nan)), mask,
                            self.surface & keep, self.context & keep, self.triangle, self.barycentrics,
                            self.intrinsics, self.world_from_camera)

    @property
    def rays(self) -> np.ndarray:
        """``(S, S, 3)`` float64 unit ray map (optical frame): ``rays_from_intrinsics(intrinsics)``."""
        return rays_from_intrinsics(self.intrinsics, *self.depth.shape)


def render_view(source: SourceFrame, camera: Camera, triangles: np.ndarray, canonical: np.ndarray) -> RenderedView:
    """Render ``source``'s textured mesh from ``camera``.

    triangles: (F, 3) int topology; canonical: (V, 3) per-vertex canonical coordinates in [-1, 1].
    """
    size = camera.size
    # interpolate canonical coordinates and world positions of the visible surface point at once
    raster = rasterize(camera.to_camera(source.vertices), triangles, camera.intrinsics, size, size,
                       np.concatenate([canonical, source.vertices], axis=1))
    surface = raster.mask
    flat = np.flatnonzero(surface)
    points = np.take(raster.attributes.reshape(-1, 6)[:, 3:], flat, axis=0).astype(np.float64)
    pixels, _ = project_points(points, source.intrinsics)
    height, width = source.rgb.shape[:2]
    textured = ((pixels[:, 0] >= 0) & (pixels[:, 0] <= width - 1) & (pixels[:, 1] >= 0) & (pixels[:, 1] <= height - 1)
                & _seen_by_source(source, points))
    mask = np.zeros(size * size, dtype=bool)
    mask[flat[textured]] = True
    # bilinear texture lookup of every textured pixel at its source projection, context elsewhere
    lookup = np.full((size * size, 2), UNTEXTURED, dtype=np.float32)
    context = _context_lookup(source, camera, ~mask)
    lookup[context[0]] = context[1]
    lookup[flat[textured]] = pixels[textured]
    lookup = lookup.reshape(size, size, 2)
    context_mask = np.zeros(size * size, dtype=bool)
    context_mask[context[0]] = True
    rgb = cv2.remap(source.rgb, lookup[..., 0], lookup[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    mask = mask.reshape(size, size)
    depth = np.where(mask, raster.depth, np.float32(np.nan))
    canonical_map = np.where(mask[..., None], raster.attributes[..., :3], np.float32(np.nan))
    return RenderedView(rgb, depth, canonical_map, mask, surface, context_mask.reshape(size, size), raster.triangle,
                        raster.barycentrics, camera.intrinsics.copy(), camera.world_from_camera.copy())


def _context_lookup(source: SourceFrame, camera: Camera, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(flat pixel indices, (N, 2) float32 source pixels)`` of the ``candidates`` ((S*S,) bool) whose
    ray meets the context plane (see module docstring) at a source pixel inside the image and off the face."""
    size = camera.size
    flat = np.flatnonzero(candidates)
    v, u = np.divmod(flat, size)
    rays = np.stack([u, v, np.ones_like(u)], axis=1).astype(np.float64) @ np.linalg.inv(camera.intrinsics).T
    rotation, origin = camera.world_from_camera[:3, :3], camera.world_from_camera[:3, 3]
    directions = rays @ rotation.T
    plane_z = source.face_centre[2] + CONTEXT_DEPTH_FACES * source.face_diameter_m
    with np.errstate(divide="ignore", invalid="ignore"):
        distance = (plane_z - origin[2]) / directions[:, 2]
    ahead = np.isfinite(distance) & (distance > 0)
    points = origin + distance[ahead, None] * directions[ahead]
    pixels, _ = project_points(points, source.intrinsics)
    height, width = source.rgb.shape[:2]
    inside = (pixels[:, 0] >= 0) & (pixels[:, 0] <= width - 1) & (pixels[:, 1] >= 0) & (pixels[:, 1] <= height - 1)
    reduced, _ = project_points(points, source.source_intrinsics)
    rows = np.clip(np.rint(reduced[:, 1]), 0, source.source_depth.shape[0] - 1).astype(np.int64)
    cols = np.clip(np.rint(reduced[:, 0]), 0, source.source_depth.shape[1] - 1).astype(np.int64)
    off_face = np.isnan(source.source_depth[rows, cols])
    keep = inside & off_face
    return flat[ahead][keep], pixels[keep].astype(np.float32)


def _seen_by_source(source: SourceFrame, points: np.ndarray) -> np.ndarray:
    """``(N,)`` bool: world points (N, 3) not hidden behind the source depth map.

    The point's source depth is compared with the farthest of the 2 x 2 source pixels around its
    projection (``SourceFrame.farthest_depth``), so steep (grazing) surface is not lost to the pixel grid.
    """
    pixels, z = project_points(points, source.source_intrinsics)
    height, width = source.source_depth.shape
    inside = (pixels[:, 0] > -0.5) & (pixels[:, 0] < width - 0.5) & (pixels[:, 1] > -0.5) & (pixels[:, 1] < height - 0.5)
    cols = np.floor(np.where(inside, pixels[:, 0], 0.0)).astype(np.int64) + 1
    rows = np.floor(np.where(inside, pixels[:, 1], 0.0)).astype(np.int64) + 1
    return inside & (z <= source.farthest_depth[rows, cols] * (1.0 + SOURCE_DEPTH_TOLERANCE))
