"""The metric scale of a face's depth from the face's size: the canonical face space is metric.

A network's depth fixes a face's shape well and its distance poorly: from one crop, the distance
follows the focal length the network believes. The canonical map names the template point of
every face pixel, and the template has a metric size (``CanonicalSpace.mm_per_unit``), so the
least-squares similarity transform that takes the face's points (depth along the camera's rays)
onto their template points has a scale: the factor by which the depth must be multiplied for the
face to have the template's size, as a face of average size seen through this camera (the
assumption the face-mesh method makes too). Faces larger or smaller than the template come out
nearer or farther by their ratio.
"""
from __future__ import annotations

import numpy as np

MIN_SCALE_PIXELS = 64  # face pixels a size fit needs (a crop with fewer gives no scale)


def similarity_scale(source: np.ndarray, target: np.ndarray) -> float:
    """Scale ``s`` of the least-squares similarity ``target ~ s R source + t`` of ``(N, 3)`` point sets
    (Umeyama 1991: rotation ``R`` proper, ``N >= 3``, ``source`` not all one point)."""
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    source = source - source.mean(axis=0)
    target = target - target.mean(axis=0)
    spread = float(np.einsum("nk,nk->", source, source)) / len(source)
    if not spread > 0.0:
        raise ValueError("a similarity scale needs source points that are not all one point")
    u, singular, vt = np.linalg.svd(target.T @ source / len(source))
    singular[-1] *= np.sign(np.linalg.det(u) * np.linalg.det(vt))  # a proper rotation, no reflection
    return float(singular.sum()) / spread


def face_size_scale(depth: np.ndarray, rays: np.ndarray, canonical: np.ndarray, valid: np.ndarray,
                    metres_per_unit: float) -> float | None:
    """The factor that gives a face's depth the canonical template's metric size.

    depth: ``(H, W)`` z-depth (any scale) along ``rays`` ``(H, W, 3)`` (directions of the same
    camera frame, z > 0); canonical: ``(H, W, 3)`` canonical coordinates; valid: ``(H, W)`` bool
    face pixels to use (non-finite depth or canonical values are left out); metres_per_unit: the
    canonical space's metric size. None when fewer than ``MIN_SCALE_PIXELS`` pixels remain or
    they give no positive scale.
    """
    rays = np.asarray(rays, dtype=np.float64)
    depth = np.asarray(depth, dtype=np.float64)
    canonical = np.asarray(canonical, dtype=np.float64)
    use = (np.asarray(valid, dtype=bool) & np.isfinite(depth) & (depth > 0) & np.isfinite(canonical).all(axis=-1)
           & (rays[..., 2] > 0))
    if np.count_nonzero(use) < MIN_SCALE_PIXELS:
        return None
    points = depth[use, None] * rays[use] / rays[use, 2:3]
    scale = similarity_scale(points, canonical[use] * metres_per_unit)
    return scale if scale > 0.0 else None
