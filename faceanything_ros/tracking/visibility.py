"""Geometric visibility checks of matched track points: facing the camera and depth consistency.

A nearest canonical neighbour always exists on a face, even for a point that is turned away or
hidden: it is then some pixel near the silhouette. These checks decide from the frame's
geometry whether the matched point is really the query's point:

* facing: the query's template normal, rotated into the camera by the head rotation fitted to
  the frame (the well-matched tracks' canonical coordinates against their 3-D points), must
  point towards the camera along the ray through the matched pixel;
* depth: the matched pixel must lie on its neighbourhood's surface: not off the median depth of
  its face neighbourhood (a flying pixel) and not behind a much nearer neighbour (the far side
  of an occluding edge, e.g. the cheek beside the nose of a turned head, where a hidden point's
  nearest canonical neighbour is a visible pixel next to it).
"""
from __future__ import annotations

import warnings

import numpy as np
from scipy.spatial.transform import Rotation

from faceanything_ros.geometry.projection import unproject_pixels

MIN_POSE_POINTS = 8  # fewer matched points: no rotation, the facing check passes
DEPTH_WINDOW = 2  # depth neighbourhood half-size, pixels (a 5x5 window)


def head_rotation(canonical: np.ndarray, points: np.ndarray) -> np.ndarray | None:
    """``(3, 3)`` rotation taking canonical (template-frame) directions into the camera optical frame.

    Least-squares (Kabsch, ``scipy``) fit of ``(N, 3)`` centred canonical coordinates against
    their ``(N, 3)`` centred 3-D points (metres, optical frame), e.g. the well-matched tracks of a
    frame; rows with a NaN are ignored. None with fewer than ``MIN_POSE_POINTS`` usable rows.
    """
    usable = np.all(np.isfinite(canonical), axis=1) & np.all(np.isfinite(points), axis=1)
    if usable.sum() < MIN_POSE_POINTS:
        return None
    canonical, points = canonical[usable], points[usable]
    rotation, _ = Rotation.align_vectors(points - points.mean(0), canonical - canonical.mean(0))
    return rotation.as_matrix()


def facing(normals: np.ndarray, rotation: np.ndarray | None, pixels: np.ndarray,
           intrinsics: np.ndarray | None) -> np.ndarray:
    """``(Q,)`` cosine between each rotated template normal and the direction from the point to the camera.

    normals: ``(Q, 3)`` unit template normals; pixels: ``(Q, 2)`` matched pixels ``(u, v)``.
    1 = facing the camera, 0 = grazing, < 0 = turned away. NaN for a NaN pixel; 1 (unknown, so
    no veto) for every query when ``rotation`` or ``intrinsics`` is None.
    """
    if rotation is None or intrinsics is None:
        return np.ones(len(pixels))
    rays = unproject_pixels(pixels, np.ones(len(pixels)), intrinsics)
    rays /= np.linalg.norm(rays, axis=1, keepdims=True)
    return -np.einsum("qk,qk->q", normals @ rotation.T, rays)


def depth_step(depth: np.ndarray | None, valid: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """``(Q,)`` metres ``max(|d(p) - median of p's 5x5 window|, d(p) - min of its 3x3 window)`` of valid depths ``d``.

    depth: ``(H, W)`` metres or None (then 0: no veto); valid: ``(H, W)`` bool pixels that count;
    pixels: ``(Q, 2)`` ``(u, v)`` inside the image. NaN where ``p`` has no finite depth or pixel.
    """
    if depth is None:
        return np.zeros(len(pixels))
    height, width = valid.shape
    finite = np.all(np.isfinite(pixels), axis=1)
    centre = np.round(np.where(finite[:, None], pixels, 0.0)).astype(np.int64)
    offsets = np.arange(-DEPTH_WINDOW, DEPTH_WINDOW + 1)
    rows = np.clip(centre[:, 1, None, None] + offsets[None, :, None], 0, height - 1)  # (Q, 5, 1)
    cols = np.clip(centre[:, 0, None, None] + offsets[None, None, :], 0, width - 1)  # (Q, 1, 5)
    window = np.where(valid[rows, cols], depth[rows, cols], np.nan)  # (Q, 5, 5)
    median = _row_nanmedian(window.reshape(len(pixels), -1))
    with warnings.catch_warnings():  # an all-NaN window gives a NaN minimum, as documented
        warnings.simplefilter("ignore", RuntimeWarning)
        nearest = np.nanmin(window[:, 1:-1, 1:-1].reshape(len(pixels), -1), axis=1)
    own = depth[centre[:, 1], centre[:, 0]]
    step = np.maximum(np.abs(own - median), own - nearest)
    return np.where(finite, step, np.nan)



def _row_nanmedian(values: np.ndarray) -> np.ndarray:
    """``(Q,)`` median of the non-NaN values of each row of ``(Q, N)`` ``values`` (NaN for a row with none):
    ``numpy.nanmedian(values, axis=1)`` without its slow masked-array path for short rows."""
    ordered = np.sort(values, axis=1)  # NaN sorts last
    count = np.count_nonzero(~np.isnan(values), axis=1)
    upper = np.take_along_axis(ordered, np.minimum(count // 2, values.shape[1] - 1)[:, None], axis=1)[:, 0]
    lower = np.take_along_axis(ordered, np.maximum((count - 1) // 2, 0)[:, None], axis=1)[:, 0]
    return np.where(count > 0, (upper + lower) / 2.0, np.nan)
