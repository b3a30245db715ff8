"""Coloured point clouds of the face from a depth map (optical frame, metres)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from faceanything_ros.geometry.camera import strided_grid
from faceanything_ros.geometry.projection import unproject_pixels
from faceanything_ros.stages import timed

DEFAULT_COLOR = 255  # RGB value of every point when no image is given (white)


@dataclass
class PointCloud:
    """``N`` points with their colour, source pixel and optional per-point attributes.

    points: ``(N, 3)`` float32 metres, camera optical frame (x right, y down, z forward).
    colors: ``(N, 3)`` uint8 RGB.
    pixels: ``(N, 2)`` int32 ``(u, v)`` source pixel of each point.
    canonical: ``(N, 3)`` float32 canonical face coordinate in ``[-1, 1]^3``, or None.
    confidence: ``(N,)`` float32 per-point confidence, or None.
    """

    points: np.ndarray
    colors: np.ndarray
    pixels: np.ndarray
    canonical: np.ndarray | None = None
    confidence: np.ndarray | None = None

    def __post_init__(self) -> None:
        count = len(self.points)
        expected = {
            "points": ((count, 3), np.float32),
            "colors": ((count, 3), np.uint8),
            "pixels": ((count, 2), np.int32),
        }
        if self.canonical is not None:
            expected["canonical"] = ((count, 3), np.float32)
        if self.confidence is not None:
            expected["confidence"] = ((count,), np.float32)
        for name, (shape, dtype) in expected.items():
            value = getattr(self, name)
            if not isinstance(value, np.ndarray) or value.shape != shape or value.dtype != dtype:
                got = f"{value.dtype} {value.shape}" if isinstance(value, np.ndarray) else type(value).__name__
                raise ValueError(f"PointCloud.{name} must be a {np.dtype(dtype)} array of shape {shape}, got {got}")

    def __len__(self) -> int:
        return len(self.points)

    @classmethod
    def empty(cls) -> "PointCloud":
        """A cloud with no points (and no canonical / confidence attributes)."""
        return cls(
            points=np.zeros((0, 3), np.float32), colors=np.zeros((0, 3), np.uint8), pixels=np.zeros((0, 2), np.int32)
        )

    @classmethod
    def concatenate(cls, clouds: Sequence["PointCloud"]) -> "PointCloud":
        """All points of ``clouds`` in order (``empty()`` for none).

        ``canonical`` / ``confidence`` are kept when any non-empty cloud has them; the points of
        clouds without them get NaN.
        """
        clouds = [cloud for cloud in clouds if len(cloud)]
        if not clouds:
            return cls.empty()

        def optional(name: str, width: tuple[int, ...]) -> np.ndarray | None:
            parts = [getattr(cloud, name) for cloud in clouds]
            if all(part is None for part in parts):
                return None
            return np.concatenate([np.full((len(cloud), *width), np.nan, np.float32) if part is None else part
                                   for part, cloud in zip(parts, clouds)])

        return cls(
            points=np.concatenate([cloud.points for cloud in clouds]),
            colors=np.concatenate([cloud.colors for cloud in clouds]),
            pixels=np.concatenate([cloud.pixels for cloud in clouds]),
            canonical=optional("canonical", (3,)),
            confidence=optional("confidence", ()),
        )


def mask_region(mask: np.ndarray) -> tuple[slice, slice]:
    """``(rows, cols)`` slices of the bounding box of an ``(H, W)`` bool mask's True pixels (empty when none)."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return slice(0, 0), slice(0, 0)
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)


def budget_stride(pixels: int, stride: int, max_points: int) -> int:
    """The sampling stride of a cloud from ``pixels`` candidate pixels: ``stride``, or the smallest larger
    one that leaves about ``max_points`` points at most (``pixels / stride**2 <= max_points``); 0 = no cap."""
    if max_points < 0 or stride < 1:
        raise ValueError(f"max_points must be >= 0 and stride >= 1, got {max_points} and {stride}")
    if max_points == 0 or pixels <= max_points * stride * stride:
        return stride
    return max(stride, math.ceil(math.sqrt(pixels / max_points)))


@timed("cloud")
def point_cloud_from_depth(
    depth: np.ndarray,
    intrinsics: np.ndarray,
    valid: np.ndarray | None = None,
    image: np.ndarray | None = None,
    canonical: np.ndarray | None = None,
    confidence: np.ndarray | None = None,
    stride: int = 1,
    origin: tuple[int, int] = (0, 0),
) -> PointCloud:
    """Unproject a ``(H, W)`` z-depth map (metres) with ``(3, 3)`` intrinsics into a ``PointCloud``.

    The maps may cover a region of an image: ``origin`` is the image pixel ``(u, v)`` of their pixel
    ``(0, 0)`` (``intrinsics`` are the maps' own: the image's with the principal point moved by
    ``-origin``), and the cloud's ``pixels`` are image pixels. The pixels are sampled first: every
    ``stride``-th row and column of the image (rows/cols 0, stride, 2*stride, ...: one grid whatever
    the region); of those, the pixels with finite positive depth inside ``valid`` (``(H, W)`` bool,
    None = all) are unprojected, in row-major order. image: ``(H, W, 3)`` uint8 RGB for the colours
    (None = white). canonical: ``(H, W, 3)`` canonical map; confidence: ``(H, W)``; each copied to
    the points when given.
    """
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise ValueError(f"depth must have shape (H, W), got {depth.shape}")
    if not isinstance(stride, (int, np.integer)) or stride < 1:
        raise ValueError(f"stride must be a positive integer, got {stride!r}")
    height, width = depth.shape
    _check_map(valid, "valid", (height, width), np.bool_)
    _check_map(image, "image", (height, width, 3), np.uint8)
    _check_map(canonical, "canonical", (height, width, 3), None)
    _check_map(confidence, "confidence", (height, width), None)
    grid = strided_grid(origin, stride)
    sampled = depth[grid]
    keep = np.isfinite(sampled) & (sampled > 0)
    if valid is not None:
        keep &= np.asarray(valid)[grid]
    row, col = np.nonzero(keep)
    pixels = np.stack([col * stride + grid[1].start, row * stride + grid[0].start], axis=1)
    points = unproject_pixels(pixels, sampled[row, col], intrinsics)
    pixels += np.asarray(origin)

    def at_pixels(values: np.ndarray, dtype: type) -> np.ndarray:
        return np.asarray(values)[grid][row, col].astype(dtype, copy=False)

    return PointCloud(
        points=points.astype(np.float32),
        colors=at_pixels(image, np.uint8) if image is not None else np.full((len(row), 3), DEFAULT_COLOR, np.uint8),
        pixels=pixels.astype(np.int32),
        canonical=None if canonical is None else at_pixels(canonical, np.float32),
        confidence=None if confidence is None else at_pixels(confidence, np.float32),
    )


def _check_map(value: np.ndarray | None, name: str, shape: tuple[int, ...], dtype: type | None) -> None:
    """Raise ``ValueError`` unless ``value`` is None or an array of ``shape`` (and ``dtype``)."""
    if value is None:
        return
    array = np.asarray(value)
    if array.shape != shape or (dtype is not None and array.dtype != dtype):
        wanted = f"{np.dtype(dtype)} " if dtype is not None else ""
        raise ValueError(f"{name} must be a {wanted}array of shape {shape}, got {array.dtype} {array.shape}")
