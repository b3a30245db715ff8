"""Pinhole projection / unprojection and sub-pixel sampling of per-pixel maps.

Conventions as in ``camera.py``: optical frame (x right, y down, z forward), metres; pixel
``(u, v)`` with the centre of pixel (row 0, col 0) at ``(0, 0)``. Depth is z-depth (the point's
z coordinate), not distance along the ray. Non-finite or non-positive depth is invalid and gives
NaN points.
"""
from __future__ import annotations

import numpy as np

from faceanything_ros.geometry.camera import pixel_grid, validate_intrinsics


def unproject_depth(depth: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` float64 points (metres, optical frame) of a ``(H, W)`` z-depth map (metres).

    Pixels with NaN, infinite or non-positive depth give NaN points.
    """
    depth = _as_array(depth, "depth", ndim=2)
    points = unproject_pixels(pixel_grid(*depth.shape).reshape(-1, 2), depth.reshape(-1), intrinsics)
    return points.reshape(*depth.shape, 3)


def unproject_pixels(pixels: np.ndarray, depth: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """``(N, 3)`` float64 points (metres, optical frame) at ``(N, 2)`` pixels ``(u, v)`` with ``(N,)`` z-depth.

    The point is ``depth * K^-1 @ (u, v, 1)``; invalid depth (non-finite or <= 0) gives NaN.
    """
    K = validate_intrinsics(intrinsics)
    pixels = _as_array(pixels, "pixels", ndim=2, last=2)
    depth = _as_array(depth, "depth", ndim=1)
    if depth.shape[0] != pixels.shape[0]:
        raise ValueError(f"depth must have shape ({pixels.shape[0]},) to match pixels, got {depth.shape}")
    inverse = np.linalg.inv(K)
    directions = pixels @ inverse[:, :2].T + inverse[:, 2]  # K^-1 (u, v, 1)
    valid_depth = np.where(np.isfinite(depth) & (depth > 0), depth, np.nan)
    return directions * valid_depth[:, None]


def project_points(points: np.ndarray, intrinsics: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project ``(N, 3)`` points (optical frame) to ``(N, 2)`` float64 pixels ``(u, v)`` and ``(N,)`` z-depth.

    Points with ``z <= 0`` (at or behind the camera) or non-finite coordinates get NaN pixels;
    the returned depth is their z coordinate as given.
    """
    K = validate_intrinsics(intrinsics)
    points = _as_array(points, "points", ndim=2, last=3)
    depth = points[:, 2].copy()
    in_front = np.isfinite(depth) & (depth > 0)
    safe_depth = np.where(in_front, depth, 1.0)
    pixels = (points @ K.T)[:, :2] / safe_depth[:, None]
    pixels[~in_front] = np.nan
    return pixels, depth


def sample_bilinear(image: np.ndarray, pixels: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Bilinear samples of a ``(H, W)`` or ``(H, W, C)`` map at ``(N, 2)`` pixels ``(u, v)``.

    Returns ``(N,)`` or ``(N, C)`` float64. A sample is NaN when the pixel is non-finite or outside
    ``[0, W-1] x [0, H-1]``, or when any of its 4 neighbours is NaN or (with ``valid``, a
    ``(H, W)`` bool map) not valid, even if its weight is zero.
    """
    image, pixels, valid = _check_sampling(image, pixels, valid)
    height, width = image.shape[:2]
    inside = _finite_rows(pixels) & (pixels[:, 0] >= 0) & (pixels[:, 0] <= width - 1)
    inside &= (pixels[:, 1] >= 0) & (pixels[:, 1] <= height - 1)
    u = np.where(inside, pixels[:, 0], 0.0)
    v = np.where(inside, pixels[:, 1], 0.0)
    u0 = np.clip(np.floor(u).astype(np.int64), 0, max(width - 2, 0))
    v0 = np.clip(np.floor(v).astype(np.int64), 0, max(height - 2, 0))
    u1 = np.minimum(u0 + 1, width - 1)
    v1 = np.minimum(v0 + 1, height - 1)
    wu = u - u0
    wv = v - v0
    corners = ((v0, u0, (1 - wu) * (1 - wv)), (v0, u1, wu * (1 - wv)), (v1, u0, (1 - wu) * wv), (v1, u1, wu * wv))
    result = sum(_weighted(image[rows, cols].astype(np.float64), weight) for rows, cols, weight in corners)
    usable = inside
    if valid is not None:
        usable = usable & np.logical_and.reduce([valid[rows, cols] for rows, cols, _ in corners])
    return _mask_rows(result, usable)


def sample_nearest(image: np.ndarray, pixels: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Value of the pixel whose centre is nearest to each of ``(N, 2)`` pixels ``(u, v)``.

    image: ``(H, W)`` or ``(H, W, C)``. Returns ``(N,)`` or ``(N, C)`` float64; NaN where the
    pixel is non-finite or outside the image area ``[-0.5, W-0.5) x [-0.5, H-0.5)``, or (with
    ``valid``, a ``(H, W)`` bool map) where the nearest pixel is not valid.
    """
    image, pixels, valid = _check_sampling(image, pixels, valid)
    height, width = image.shape[:2]
    finite = _finite_rows(pixels)
    cols = np.floor(np.where(finite, pixels[:, 0], -1.0) + 0.5).astype(np.int64)
    rows = np.floor(np.where(finite, pixels[:, 1], -1.0) + 0.5).astype(np.int64)
    inside = finite & (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
    cols = np.where(inside, cols, 0)
    rows = np.where(inside, rows, 0)
    usable = inside if valid is None else inside & valid[rows, cols]
    return _mask_rows(image[rows, cols].astype(np.float64), usable)


def sample_bilinear_or_nearest(image: np.ndarray, pixels: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """``sample_bilinear``, falling back to ``sample_nearest`` where bilinear gives NaN.

    Useful at the border of a masked region (e.g. the face), where a bilinear footprint touches
    an invalid neighbour but the nearest pixel is still valid. Same shapes as ``sample_bilinear``.
    """
    pixels = _as_array(pixels, "pixels", ndim=2, last=2)
    samples = sample_bilinear(image, pixels, valid)
    missing = np.isnan(samples) if samples.ndim == 1 else np.isnan(samples).any(axis=1)
    if missing.any():
        samples[missing] = sample_nearest(image, pixels[missing], valid)
    return samples


def _check_sampling(
    image: np.ndarray, pixels: np.ndarray, valid: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validated ``(image, pixels as (N, 2) float64, valid)`` for the samplers."""
    image = np.asarray(image)
    if image.ndim not in (2, 3) or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"image must have shape (H, W) or (H, W, C) with H, W >= 1, got {image.shape}")
    if valid is not None:
        valid = np.asarray(valid)
        if valid.shape != image.shape[:2] or valid.dtype != np.bool_:
            raise ValueError(f"valid must be a bool array of shape {image.shape[:2]}, got {valid.dtype} {valid.shape}")
    return image, _as_array(pixels, "pixels", ndim=2, last=2), valid


def _as_array(values: np.ndarray, name: str, ndim: int, last: int | None = None) -> np.ndarray:
    """``values`` as float64 with ``ndim`` dimensions (and last axis ``last``), else ``ValueError``."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != ndim or (last is not None and array.shape[-1] != last):
        expected = f"{ndim}-D" + (f" with last axis {last}" if last is not None else "")
        raise ValueError(f"{name} must be {expected}, got shape {array.shape}")
    return array


def _finite_rows(pixels: np.ndarray) -> np.ndarray:
    return np.all(np.isfinite(pixels), axis=1)


def _weighted(values: np.ndarray, weight: np.ndarray) -> np.ndarray:
    return values * (weight if values.ndim == 1 else weight[:, None])


def _mask_rows(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    values[~keep] = np.nan
    return values
