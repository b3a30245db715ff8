"""The metric scale of a face's depth from the face's size: the canonical face space is metric.

A network's depth fixes a face's shape well and its distance poorly: from one crop, the distance
follows the focal length the network believes. The canonical map names the template point of
every face pixel, and the template has a metric size (``CanonicalSpace.mm_per_unit``), so the
least-squares similarity transform that takes the template points onto the face's points (depth
along the camera's rays) has a scale: its inverse is the factor by which the depth must be
multiplied for the face to have the template's size, as a face of average size seen through this
camera (the assumption the face-mesh method makes too). Faces larger or smaller than the template
come out nearer or farther by their ratio.

The fit runs from the template to the points, not the other way: a least-squares scale shrinks
with the noise of the points it maps (regression dilution), and the depth's per-pixel noise is
the larger one. Pixels whose canonical coordinate or depth is an outlier (hair or neck taken for
face) are dropped once (``TRIM_FRACTION`` of the largest residuals) and the fit repeated. On the
validation splits of the data-engine sets this halves the scale's bias (-5.4 % to -1.9 % on
single crops, -4.8 % to -1.2 % on sequences) and lowers its mean error by a fifth.
"""
from __future__ import annotations

import numpy as np

MIN_SCALE_PIXELS = 64  # face pixels a size fit needs (a crop with fewer gives no scale)
TRIM_FRACTION = 0.2  # the share of pixels with the largest residuals dropped before the second fit


def similarity(source: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """``(s, R, t)`` of the least-squares similarity ``target ~ s R source + t`` of ``(N, 3)`` point sets
    (Umeyama 1991: rotation ``R`` ``(3, 3)`` proper, ``t`` ``(3,)``; ``N >= 3``, ``source`` not all one point)."""
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    source, target = source - source_mean, target - target_mean
    spread = float(np.einsum("nk,nk->", source, source)) / len(source)
    if not spread > 0.0:
        raise ValueError("a similarity scale needs source points that are not all one point")
    u, singular, vt = np.linalg.svd(target.T @ source / len(source))
    sign = np.sign(np.linalg.det(u) * np.linalg.det(vt))  # a proper rotation, no reflection
    singular[-1] *= sign
    rotation = u @ np.diag([1.0, 1.0, sign]) @ vt
    scale = float(singular.sum()) / spread
    return scale, rotation, target_mean - scale * rotation @ source_mean


def similarity_scale(source: np.ndarray, target: np.ndarray) -> float:
    """Scale ``s`` of the least-squares similarity ``target ~ s R source + t`` (``similarity``)."""
    return similarity(source, target)[0]


def face_size_scale(depth: np.ndarray, rays: np.ndarray, canonical: np.ndarray, valid: np.ndarray,
                    metres_per_unit: float) -> float | None:
    """The factor that gives a face's depth the canonical template's metric size.

    depth: ``(H, W)`` z-depth (any scale) along ``rays`` ``(H, W, 3)`` (directions of the same
    camera frame, z > 0); canonical: ``(H, W, 3)`` canonical coordinates; valid: ``(H, W)`` bool
    face pixels to use (non-finite depth or canonical values are left out); metres_per_unit: the
    canonical space's metric size. None when fewer than ``MIN_SCALE_PIXELS`` pixels remain or
    they give no positive scale (e.g. all at one canonical point).
    """
    rays = np.asarray(rays, dtype=np.float64)
    depth = np.asarray(depth, dtype=np.float64)
    canonical = np.asarray(canonical, dtype=np.float64)
    use = (np.asarray(valid, dtype=bool) & np.isfinite(depth) & (depth > 0) & np.isfinite(canonical).all(axis=-1)
           & (rays[..., 2] > 0))
    if np.count_nonzero(use) < MIN_SCALE_PIXELS:
        return None
    points = depth[use, None] * rays[use] / rays[use, 2:3]
    template = canonical[use] * metres_per_unit
    try:
        scale, rotation, shift = similarity(template, points)
    except ValueError:  # every pixel at one canonical point: no size to compare
        return None
    residual = np.linalg.norm(points - scale * template @ rotation.T - shift, axis=1)
    keep = residual <= np.quantile(residual, 1.0 - TRIM_FRACTION)
    if np.count_nonzero(keep) >= MIN_SCALE_PIXELS:
        scale = similarity_scale(template[keep], points[keep])
    return 1.0 / scale if scale > 0.0 else None
