"""The virtual camera of a face crop: the image camera rotated to look through the crop's centre.

A crop of an off-centre face is seen obliquely by the image camera, and a crop alone cannot show
where the image's principal point lies. The network therefore predicts depth and rays in the
crop's *virtual camera*: the same camera centre, rotated by ``R`` (``camera_from_virtual``, the
smallest rotation, no roll about the viewing ray) so that its optical axis passes through the
crop's centre pixel. A point ``X_v`` in the virtual frame is ``X = R @ X_v`` in the image camera's
optical frame (x right, y down, z forward; metres).

Pixel convention: pixel centres at integer coordinates; the crop's centre pixel is
``((W - 1) / 2, (H - 1) / 2)``.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from faceanything_ros.geometry.camera import pixel_grid


def rotation_onto(direction: np.ndarray) -> np.ndarray:
    """``(..., 3, 3)`` float64 minimal rotation ``R`` with ``R @ [0, 0, 1]`` along ``(..., 3)`` ``direction``
    (any length > 0, z > -|d|): Rodrigues' formula about ``z x d``, so no roll about the direction."""
    axis = np.asarray(direction, dtype=np.float64)
    axis = axis / np.linalg.norm(axis, axis=-1, keepdims=True)
    cross = np.cross(np.array([0.0, 0.0, 1.0]), axis)  # rotation axis * sin(angle)
    skew = np.zeros(axis.shape[:-1] + (3, 3))
    skew[..., 0, 1], skew[..., 0, 2] = -cross[..., 2], cross[..., 1]
    skew[..., 1, 0], skew[..., 1, 2] = cross[..., 2], -cross[..., 0]
    skew[..., 2, 0], skew[..., 2, 1] = -cross[..., 1], cross[..., 0]
    factor = (1.0 / (1.0 + axis[..., 2]))[..., None, None]  # (1 - cos) / sin^2
    return np.eye(3) + skew + skew @ skew * factor


def virtual_rotation(intrinsics: np.ndarray, height: int, width: int) -> np.ndarray:
    """``(..., 3, 3)`` float64 ``R`` (camera_from_virtual) of crops with ``(..., 3, 3)`` intrinsics.

    ``R @ [0, 0, 1]`` is the ray of the crop's centre pixel ``K^-1 [(W-1)/2, (H-1)/2, 1]``
    (``rotation_onto``).
    """
    K = np.asarray(intrinsics, dtype=np.float64)
    centre = np.array([(width - 1) / 2.0, (height - 1) / 2.0, 1.0])
    return rotation_onto(np.linalg.solve(K, np.broadcast_to(centre, K.shape[:-1])[..., None])[..., 0])


def virtual_directions(intrinsics: np.ndarray, rotation: np.ndarray, height: int, width: int) -> np.ndarray:
    """``(H, W, 3)`` float64 ``R^T K^-1 [u, v, 1]`` of every pixel centre: directions in the virtual
    frame scaled so that the image camera's z component is 1 (not unit length).

    Multiplying by the image camera's z-depth gives the point in the virtual frame; the z
    component is the virtual z-depth per metre of image z-depth.
    """
    K = np.asarray(intrinsics, dtype=np.float64)
    return _homogeneous_grid(height, width) @ (np.linalg.inv(K).T @ np.asarray(rotation, dtype=np.float64))


def pixel_virtual_directions(intrinsics: np.ndarray, rotation: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """``(..., 3)`` float64 ``R^T K^-1 [u, v, 1]`` of ``(..., 2)`` pixels ``(u, v)`` (``virtual_directions``
    at chosen pixels); ``(C, N, 3)`` for a batch of ``(C, 3, 3)`` intrinsics and rotations and ``(N, 2)`` pixels."""
    pixels = np.asarray(pixels, dtype=np.float64)
    homogeneous = np.concatenate([pixels, np.ones(pixels.shape[:-1] + (1,))], axis=-1)
    directions = homogeneous @ np.swapaxes(np.linalg.inv(np.asarray(intrinsics, dtype=np.float64)), -1, -2)
    return directions @ np.asarray(rotation, dtype=np.float64)


def virtual_rays(intrinsics: np.ndarray, rotation: np.ndarray, height: int, width: int) -> np.ndarray:
    """``(H, W, 3)`` float64 unit rays of every pixel centre in the virtual frame (what the ray head
    predicts): ``normalise(R^T K^-1 [u, v, 1])``."""
    directions = virtual_directions(intrinsics, rotation, height, width)
    return directions / np.linalg.norm(directions, axis=-1, keepdims=True)


@lru_cache(maxsize=8)
def _homogeneous_grid(height: int, width: int) -> np.ndarray:
    """``(H, W, 3)`` float64 ``(u, v, 1)`` of every pixel centre (read-only, cached per size)."""
    grid = np.concatenate([pixel_grid(height, width), np.ones((height, width, 1))], axis=-1)
    grid.flags.writeable = False
    return grid


def depth_to_virtual(depth: np.ndarray, intrinsics: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """``(H, W)`` image-camera z-depth (metres) -> ``(H, W)`` float64 virtual-camera z-depth (metres).

    NaN stays NaN. Inverse: ``depth_from_virtual``.
    """
    depth = np.asarray(depth, dtype=np.float64)
    return depth * virtual_directions(intrinsics, rotation, *depth.shape)[..., 2]


def depth_from_virtual(virtual_depth: np.ndarray, intrinsics: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """``(H, W)`` virtual-camera z-depth (metres) -> ``(H, W)`` float64 image-camera z-depth (metres)."""
    virtual_depth = np.asarray(virtual_depth, dtype=np.float64)
    return virtual_depth / virtual_directions(intrinsics, rotation, *virtual_depth.shape)[..., 2]


def virtual_view_homography(intrinsics: np.ndarray, rotation: np.ndarray, view_intrinsics: np.ndarray) -> np.ndarray:
    """``(3, 3)`` float64 homography from pixels of a virtual camera (rotation ``R``, ``(3, 3)``
    intrinsics ``K_view``) to the image's pixels (``(3, 3)`` intrinsics ``K``):
    ``p_image ~ K R K_view^-1 p_view``.

    The view itself is ``cv2.warpPerspective(image, H, size, flags=WARP_INVERSE_MAP)``.
    """
    K = np.asarray(intrinsics, dtype=np.float64)
    return K @ np.asarray(rotation, dtype=np.float64) @ np.linalg.inv(np.asarray(view_intrinsics, dtype=np.float64))
