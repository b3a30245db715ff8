"""Checks on the images, clips and intrinsics that enter the pipeline, with errors that say what to fix.

Images are ``uint8`` RGB arrays ``(H, W, 3)`` in ``[0, 255]``; clips stack them as ``(T, H, W, 3)``.
The size limits below are module-level so the CLI and the ROS node can quote them.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from faceanything_ros.geometry.camera import validate_intrinsics

MIN_IMAGE_SIDE_PX = 32  # smallest accepted image height or width, pixels
MAX_IMAGE_SIDE_PX = 8192  # largest accepted image height or width, pixels
MAX_IMAGE_PIXELS = 40_000_000  # largest accepted height * width (40 megapixels)
PRINCIPAL_POINT_MARGIN = 1.0  # principal point may lie this many image sizes beyond each border


def validate_rgb(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Check one RGB image and return it as a C-contiguous ``(H, W, 3)`` uint8 array.

    ``image`` must be a numpy ``uint8`` array ``(H, W, 3)`` with ``MIN_IMAGE_SIDE_PX <= H, W <=
    MAX_IMAGE_SIDE_PX`` and ``H * W <= MAX_IMAGE_PIXELS``. The input is returned unchanged when it
    is already contiguous, otherwise as a contiguous copy. Raises ``TypeError`` (not an array, wrong
    dtype) or ``ValueError`` (wrong shape or size) naming ``name`` and what was expected.
    """
    _check_array_and_dtype(image, name)
    if image.ndim == 2:
        raise ValueError(
            f"{name} is greyscale with shape {image.shape}; expected RGB (H, W, 3), "
            "e.g. np.repeat(image[..., None], 3, axis=-1)"
        )
    if image.ndim != 3:
        raise ValueError(f"{name} must have shape (H, W, 3), got {image.ndim} dimensions {image.shape}")
    _check_channels(image.shape, name)
    _check_size(image.shape[0], image.shape[1], name)
    return np.ascontiguousarray(image)


def validate_frames(frames: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """Check a clip and return it as a C-contiguous ``(T, H, W, 3)`` uint8 array.

    Accepts one image ``(H, W, 3)`` (returned as ``T = 1``), a stacked clip ``(T, H, W, 3)``, or a
    non-empty list/tuple of same-size ``(H, W, 3)`` images. Every frame obeys ``validate_rgb``.
    A C-contiguous image or clip, alone or as a one-image list, is returned without a copy (a
    stream's frame is not copied again); several images are stacked.
    Raises ``TypeError``/``ValueError`` naming the problem (empty clip, mixed sizes, ...).
    """
    if isinstance(frames, (list, tuple)):
        if not frames:
            raise ValueError("frames is an empty list; expected at least one (H, W, 3) uint8 RGB image")
        checked = [validate_rgb(frame, name=f"frames[{i}]") for i, frame in enumerate(frames)]
        sizes = sorted({frame.shape[:2] for frame in checked})
        if len(sizes) > 1:
            raise ValueError(f"frames have mixed sizes {sizes} (H, W); every frame of a clip must have the same size")
        return checked[0][None] if len(checked) == 1 else np.stack(checked)
    _check_array_and_dtype(frames, "frames")
    if frames.ndim == 3:
        return validate_rgb(frames, name="frames")[None]
    if frames.ndim != 4:
        raise ValueError(f"frames must have shape (H, W, 3) or (T, H, W, 3), got {frames.shape}")
    if frames.shape[0] == 0:
        raise ValueError(f"frames has no frames (shape {frames.shape}); expected T >= 1")
    _check_channels(frames.shape, "frames")
    _check_size(frames.shape[1], frames.shape[2], "frames")
    return np.ascontiguousarray(frames)


def validate_intrinsics_for_frames(
    intrinsics: np.ndarray, num_frames: int, height: int, width: int
) -> np.ndarray:
    """Check pinhole intrinsics for a ``num_frames``-frame clip of ``height x width`` images.

    ``intrinsics`` is one ``(3, 3)`` matrix shared by every frame or one per frame ``(T, 3, 3)``
    (pixels, convention of ``geometry.camera``). Each matrix must pass
    ``geometry.camera.validate_intrinsics`` (finite, positive focal lengths, pinhole form) and put
    its principal point at most ``PRINCIPAL_POINT_MARGIN`` image sizes beyond the image borders,
    i.e. ``-width <= cx <= 2 * width`` and likewise for ``cy``. Returns ``(T, 3, 3)`` float64.
    """
    if num_frames < 1 or height < 1 or width < 1:
        raise ValueError(f"num_frames, height and width must be >= 1, got {num_frames}, {height}, {width}")
    K = np.asarray(intrinsics, dtype=np.float64)
    if K.shape == (3, 3):
        K = np.broadcast_to(K, (num_frames, 3, 3))
    elif K.shape != (num_frames, 3, 3):
        raise ValueError(
            f"intrinsics must have shape (3, 3) or ({num_frames}, 3, 3) for {num_frames} frames, got {K.shape}"
        )
    checked = np.stack([validate_intrinsics(K[t], name=f"intrinsics[{t}]") for t in range(num_frames)])
    for axis, (size, label) in enumerate(((width, "cx"), (height, "cy"))):
        centre = checked[:, axis, 2]
        low, high = -PRINCIPAL_POINT_MARGIN * size, (1.0 + PRINCIPAL_POINT_MARGIN) * size
        bad = np.flatnonzero((centre < low) | (centre > high))
        if bad.size:
            t = int(bad[0])
            raise ValueError(
                f"intrinsics[{t}] principal point {label}={centre[t]:g} px is far outside the "
                f"{width}x{height} image; expected {low:g} <= {label} <= {high:g}"
            )
    return checked


def validate_frame_indices(frame_indices: Sequence[int] | None, num_frames: int) -> list[int]:
    """``frame_index`` of each of ``num_frames`` frames: ``frame_indices`` (one int per frame, e.g. the
    source's indices of a strided window), or ``0 .. num_frames - 1`` when None."""
    if frame_indices is None:
        return list(range(num_frames))
    indices = [int(index) for index in frame_indices]
    if len(indices) != num_frames:
        raise ValueError(f"frame_indices has {len(indices)} entries for {num_frames} frames")
    return indices


def _check_array_and_dtype(array: object, name: str) -> None:
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{name} must be a numpy array (uint8 RGB), got {type(array).__name__}")
    if array.dtype != np.uint8:
        raise TypeError(
            f"{name} has dtype {array.dtype}; expected uint8 RGB in [0, 255] "
            "(convert first, e.g. (image * 255).round().clip(0, 255).astype(np.uint8) for [0, 1] floats)"
        )


def _check_channels(shape: tuple[int, ...], name: str) -> None:
    channels = shape[-1]
    if channels == 4:
        raise ValueError(f"{name} has 4 channels (RGBA?) with shape {shape}; expected 3-channel RGB, e.g. image[..., :3]")
    if channels == 1:
        raise ValueError(f"{name} has 1 channel (greyscale) with shape {shape}; expected 3-channel RGB")
    if channels != 3:
        raise ValueError(f"{name} has {channels} channels with shape {shape}; expected 3-channel RGB")


def _check_size(height: int, width: int, name: str) -> None:
    if height == 0 or width == 0:
        raise ValueError(f"{name} is empty ({height}x{width} pixels, HxW)")
    if min(height, width) < MIN_IMAGE_SIDE_PX:
        raise ValueError(
            f"{name} is too small: {height}x{width} pixels (HxW); each side must be >= {MIN_IMAGE_SIDE_PX} px"
        )
    if max(height, width) > MAX_IMAGE_SIDE_PX or height * width > MAX_IMAGE_PIXELS:
        raise ValueError(
            f"{name} is too large: {height}x{width} pixels (HxW, {height * width / 1e6:.1f} MP); "
            f"limits are {MAX_IMAGE_SIDE_PX} px per side and {MAX_IMAGE_PIXELS / 1e6:g} MP"
        )
