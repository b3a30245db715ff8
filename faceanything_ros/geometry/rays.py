"""Per-pixel camera rays <-> pinhole intrinsics.

The network predicts a unit ray direction for every pixel (optical frame: x right, y down,
z forward). ``rays_from_intrinsics`` renders such a map from a ``K``; ``solve_intrinsics`` fits
the pinhole ``K`` that best explains a set of rays, by the separable linear least squares
``u = fx * x / z + cx`` and ``v = fy * y / z + cy`` (zero skew).
"""
from __future__ import annotations

import numpy as np

from faceanything_ros.geometry.camera import intrinsics_matrix, pixel_grid, validate_intrinsics
from faceanything_ros.geometry.projection import unproject_depth

MIN_RAY_Z = 1e-6  # rays with forward component at or below this (unit rays) are ignored by the fit
MIN_SPREAD = 1e-12  # variance of x/z (or y/z) below which the rays cannot determine a focal length


def rays_from_intrinsics(intrinsics: np.ndarray, height: int, width: int) -> np.ndarray:
    """``(H, W, 3)`` float64 unit ray directions (optical frame) through each pixel centre.

    ``ray[v, u]`` is ``K^-1 @ (u, v, 1)`` normalised to length 1, so its z component is > 0.
    """
    K = validate_intrinsics(intrinsics)
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got height={height}, width={width}")
    directions = unproject_depth(np.ones((height, width)), K)  # K^-1 (u, v, 1) at every pixel
    return directions / np.linalg.norm(directions, axis=-1, keepdims=True)


def solve_intrinsics(rays: np.ndarray, pixels: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Weighted least-squares pinhole ``K`` (3, 3) float64 mapping ``rays`` onto ``pixels``.

    rays: ``(N, 3)`` ray directions in the optical frame (any length; only ``x/z``, ``y/z`` matter).
    pixels: ``(N, 2)`` pixel coordinates ``(u, v)`` of each ray.
    weights: ``(N,)`` non-negative weights (e.g. a confidence), or None for all ones.
    Rays with ``z <= 1e-6`` or any non-finite value, and zero weights, are ignored.
    Raises ``ValueError`` with fewer than 3 usable rays, when the usable rays have no spread in
    ``x/z`` or ``y/z`` (all identical), or when the fitted focal length is not positive.
    """
    rays = np.asarray(rays, dtype=np.float64)
    pixels = np.asarray(pixels, dtype=np.float64)
    if rays.ndim != 2 or rays.shape[1] != 3:
        raise ValueError(f"rays must have shape (N, 3), got {rays.shape}")
    if pixels.shape != (rays.shape[0], 2):
        raise ValueError(f"pixels must have shape ({rays.shape[0]}, 2) to match rays, got {pixels.shape}")
    if weights is None:
        weights = np.ones(rays.shape[0])
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (rays.shape[0],):
        raise ValueError(f"weights must have shape ({rays.shape[0]},) to match rays, got {weights.shape}")
    if np.any(weights < 0):
        raise ValueError("weights must be non-negative")
    usable = (
        np.all(np.isfinite(rays), axis=1)
        & np.all(np.isfinite(pixels), axis=1)
        & np.isfinite(weights)
        & (weights > 0)
        & (rays[:, 2] > MIN_RAY_Z * np.linalg.norm(np.nan_to_num(rays), axis=1))
    )
    count = int(usable.sum())
    if count < 3:
        raise ValueError(
            f"need at least 3 usable rays (finite, z > 0, positive weight) to solve intrinsics, got {count}"
        )
    normalised = rays[usable, :2] / rays[usable, 2:3]
    focal_x, centre_x = _fit_axis(normalised[:, 0], pixels[usable, 0], weights[usable], "x")
    focal_y, centre_y = _fit_axis(normalised[:, 1], pixels[usable, 1], weights[usable], "y")
    return intrinsics_matrix(focal_x, focal_y, centre_x, centre_y)


def intrinsics_from_rays(rays: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """``(3, 3)`` float64 ``K`` of a ``(H, W, 3)`` ray map, each ray belonging to its pixel centre.

    weights: ``(H, W)`` non-negative per-pixel weights (e.g. ray confidence), or None.
    Same rules and errors as ``solve_intrinsics``.
    """
    rays = np.asarray(rays, dtype=np.float64)
    if rays.ndim != 3 or rays.shape[2] != 3:
        raise ValueError(f"ray map must have shape (H, W, 3), got {rays.shape}")
    height, width = rays.shape[:2]
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != (height, width):
            raise ValueError(f"weights must have shape ({height}, {width}) to match the ray map, got {weights.shape}")
        weights = weights.reshape(-1)
    return solve_intrinsics(rays.reshape(-1, 3), pixel_grid(height, width).reshape(-1, 2), weights)


def _fit_axis(normalised: np.ndarray, pixels: np.ndarray, weights: np.ndarray, axis: str) -> tuple[float, float]:
    """Weighted LSQ ``pixels = focal * normalised + centre`` for one image axis; ``(focal, centre)``."""
    total = weights.sum()
    mean_n = np.dot(weights, normalised) / total
    mean_p = np.dot(weights, pixels) / total
    spread = np.dot(weights, (normalised - mean_n) ** 2) / total
    if not spread > MIN_SPREAD:
        raise ValueError(
            f"rays are degenerate along {axis}: the {axis}/z spread is {spread:.3g}, cannot fit a focal length"
        )
    focal = np.dot(weights, (normalised - mean_n) * (pixels - mean_p)) / (total * spread)
    if not focal > 0:
        raise ValueError(f"fitted focal length f{axis}={focal:.6g} is not positive; rays do not match a pinhole camera")
    return float(focal), float(mean_p - focal * mean_n)
