"""Per-pixel camera rays <-> pinhole intrinsics.

The network predicts a unit ray for every pixel of a face crop, in the crop's virtual camera
(``geometry.virtual_camera``; optical frame: x right, y down, z forward). ``rays_from_intrinsics``
renders the ray map of a plain pinhole ``K``; ``fit_focal_scale`` finds the focal length that
best explains the predicted rays of one or more crops, with the principal point known.

The fit measures the angle between each predicted ray and the ray the candidate camera gives
its pixel, weighted by the predicted ray confidence, and minimises it over the focal length
(a 1-D search over ``log f``, every candidate of a scan evaluated at once). The pixels are exact and the noise sits in the rays, so the
residual is taken where the noise is: the estimate is unbiased, unlike a regression of pixels on
noisy ``x/z`` ratios, which attenuates the focal length (errors in the regressor).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np
from scipy.optimize import minimize_scalar

from faceanything_ros.geometry.camera import pixel_grid, validate_intrinsics
from faceanything_ros.geometry.projection import unproject_depth
from faceanything_ros.geometry.virtual_camera import pixel_virtual_directions, virtual_rotation

if TYPE_CHECKING:
    from faceanything_ros.io.crop import CropBox

MIN_FIT_RAYS = 16  # usable rays a crop needs before its rays can constrain a focal length
RAY_SAMPLE_STRIDE = 4  # every 4th crop pixel per axis: ~3,000 rays of a crop fix its focal length
MIN_RAY_GRID_SIDE = 32  # smaller crops are sampled more densely, on at least this many pixels per axis
FOCAL_SCALE_RANGE = (0.1, 10.0)  # the search spans these multiples of the reference focal length
COARSE_STEPS = 17  # log-spaced candidates (evaluated at once) that bracket the minimum before the bounded refinement
LOG_FOCAL_TOLERANCE = 1e-6  # refinement stops at this change of log focal (1e-4 % of the focal)


def rays_from_intrinsics(intrinsics: np.ndarray, height: int, width: int) -> np.ndarray:
    """``(H, W, 3)`` float64 unit ray directions (optical frame) through each pixel centre.

    ``ray[v, u]`` is ``K^-1 @ (u, v, 1)`` normalised to length 1, so its z component is > 0.
    """
    K = validate_intrinsics(intrinsics)
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got height={height}, width={width}")
    directions = unproject_depth(np.ones((height, width)), K)  # K^-1 (u, v, 1) at every pixel
    return directions / np.linalg.norm(directions, axis=-1, keepdims=True)


@dataclass(frozen=True)
class CropRays:
    """Predicted rays of one face crop at sampled pixels.

    rays: ``(N, 3)`` float64 unit rays in the crop's virtual frame; pixels: ``(N, 2)`` float64 crop
    pixels ``(u, v)``; weights: ``(N,)`` float64 > 0 (ray confidence); crop: the ``CropBox`` that
    maps image intrinsics to the crop's (``crop.intrinsics(K)``, ``crop.output_size`` pixels a side).
    """

    rays: np.ndarray
    pixels: np.ndarray
    weights: np.ndarray
    crop: "CropBox"


def ray_sample_stride(size: int) -> int:
    """Pixel stride of a ``size``-pixel crop's rays for the focal fit: ``RAY_SAMPLE_STRIDE``, denser
    for crops under 128 px so at least ``MIN_RAY_GRID_SIDE`` pixels per axis are sampled (every pixel
    at 32 px)."""
    return max(1, min(RAY_SAMPLE_STRIDE, size // MIN_RAY_GRID_SIDE))


def sample_crop_rays(rays: np.ndarray, confidence: np.ndarray, valid: np.ndarray, crop: "CropBox",
                     stride: int) -> CropRays:
    """Every ``stride``-th valid pixel per axis of a crop's ``(S, S, 3)`` ray map.

    confidence: ``(S, S)`` ray confidence (>= 1), the fit's weight; valid: ``(S, S)`` bool pixels to
    use (e.g. the face mask). Non-finite rays or weights and rays not pointing forward are left out.
    Raises ``ValueError`` when fewer than ``MIN_FIT_RAYS`` remain.
    """
    rays = np.asarray(rays, dtype=np.float64)
    size = crop.output_size
    if rays.shape != (size, size, 3) or np.shape(confidence) != (size, size) or np.shape(valid) != (size, size):
        raise ValueError(f"rays (S, S, 3), confidence and valid (S, S) must match the crop side S = {size}, got "
                         f"{rays.shape}, {np.shape(confidence)} and {np.shape(valid)}")
    step = (slice(None, None, stride), slice(None, None, stride))
    rays, weights = rays[step].reshape(-1, 3), np.asarray(confidence, dtype=np.float64)[step].reshape(-1)
    pixels = pixel_grid(size, size)[step].reshape(-1, 2)
    usable = (np.asarray(valid)[step].reshape(-1) & np.all(np.isfinite(rays), axis=1) & np.isfinite(weights)
              & (weights > 0) & (np.nan_to_num(rays[:, 2]) > 0))
    if usable.sum() < MIN_FIT_RAYS:
        raise ValueError(f"only {int(usable.sum())} usable rays in the crop (finite, forward, valid pixel); "
                         f"a focal length needs at least {MIN_FIT_RAYS}")
    unit = rays[usable] / np.linalg.norm(rays[usable], axis=1, keepdims=True)
    return CropRays(rays=unit, pixels=pixels[usable], weights=weights[usable], crop=crop)


def fit_focal_scale(crops: Sequence[CropRays], reference: np.ndarray) -> float:
    """The factor ``s`` by which to scale the focal lengths of ``reference`` to explain the crops' rays.

    reference: ``(3, 3)`` image intrinsics (pixels) fixing the principal point and the aspect
    ``fy / fx``; the fitted camera is ``reference`` with ``fx, fy`` times ``s``. Minimises the
    confidence-weighted mean squared angle between each predicted virtual ray and
    ``normalise(R^T K_c^-1 [u, v, 1])`` of the candidate camera (``K_c`` its crop intrinsics, ``R``
    its crop's virtual rotation) over ``log s`` in ``FOCAL_SCALE_RANGE``: a log-spaced scan (its
    candidates evaluated at once), then a bounded scalar minimisation between the scan's neighbours
    of the best candidate. Raises ``ValueError`` without crops.
    """
    reference = validate_intrinsics(reference, "reference intrinsics")
    if not crops:
        raise ValueError("fitting a focal length needs the rays of at least one crop")
    candidates = np.linspace(*np.log(FOCAL_SCALE_RANGE), COARSE_STEPS)
    best = int(np.argmin(_focal_costs(crops, reference, candidates)))
    bounds = (candidates[max(best - 1, 0)], candidates[min(best + 1, COARSE_STEPS - 1)])
    result = minimize_scalar(lambda log_scale: _focal_costs(crops, reference, np.array([log_scale]))[0],
                             bounds=bounds, method="bounded", options={"xatol": LOG_FOCAL_TOLERANCE})
    return float(np.exp(result.x))


def _focal_costs(crops: Sequence[CropRays], reference: np.ndarray, log_scales: np.ndarray) -> np.ndarray:
    """``(C,)`` confidence-weighted mean squared ray angle (rad^2) of the crops for ``reference`` with its
    focal lengths scaled by each of ``(C,)`` ``exp(log_scales)``."""
    cameras = np.repeat(reference[None], len(log_scales), axis=0)
    cameras[:, 0, :2] *= np.exp(log_scales)[:, None]
    cameras[:, 1, 1] *= np.exp(log_scales)
    total, weight = np.zeros(len(log_scales)), 0.0
    for crop in crops:
        crop_K = crop.crop.intrinsics(cameras)
        size = crop.crop.output_size
        expected = pixel_virtual_directions(crop_K, virtual_rotation(crop_K, size, size), crop.pixels)  # (C, N, 3)
        cosine = np.einsum("nk,cnk->cn", crop.rays, expected)  # |expected| cos(angle): the rays are unit
        sine = np.sqrt(np.maximum(np.einsum("cnk,cnk->cn", expected, expected) - cosine ** 2, 0.0))
        angle = np.arctan2(sine, cosine)
        total += angle ** 2 @ crop.weights
        weight += float(crop.weights.sum())
    return total / weight
