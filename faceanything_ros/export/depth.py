"""Depth and per-frame map files: 16-bit PNG in millimetres and float ``.npz``."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..reconstruction import Reconstruction

MAX_DEPTH_MM = 65535  # the largest depth a 16-bit PNG holds; 0 means "no depth"


def depth_to_millimetres(depth: np.ndarray) -> np.ndarray:
    """``(H, W)`` metres (NaN = none) -> ``(H, W)`` uint16 millimetres, 0 = none, clipped at 65.535 m."""
    millimetres = np.where(np.isfinite(depth) & (depth > 0), np.round(depth * 1000.0), 0.0)
    return np.clip(millimetres, 0, MAX_DEPTH_MM).astype(np.uint16)


def millimetres_to_metres(millimetres: np.ndarray) -> np.ndarray:
    """``(H, W)`` integer millimetres, 0 = none -> ``(H, W)`` float32 metres, NaN = none (inverse of
    ``depth_to_millimetres`` up to the millimetre rounding)."""
    return np.where(millimetres > 0, millimetres.astype(np.float32) / 1000.0, np.nan).astype(np.float32)


def save_depth_png(path: str | Path, depth: np.ndarray) -> None:
    """Write ``(H, W)`` depth in metres as a 16-bit PNG in millimetres (0 = no depth)."""
    if not cv2.imwrite(str(path), depth_to_millimetres(depth)):
        raise OSError(f"could not write depth PNG {path}")


def load_depth_png(path: str | Path) -> np.ndarray:
    """Read a 16-bit millimetre depth PNG -> ``(H, W)`` float32 metres, NaN where 0."""
    millimetres = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if millimetres is None or millimetres.dtype != np.uint16 or millimetres.ndim != 2:
        raise ValueError(f"{path} is not a single-channel 16-bit depth PNG")
    return millimetres_to_metres(millimetres)


def save_reconstruction_npz(path: str | Path, reconstruction: Reconstruction) -> None:
    """Write a frame's float maps (compressed ``.npz``).

    Keys: ``depth`` (H, W) float32 m NaN = none, ``depth_confidence`` (H, W), ``canonical``
    (H, W, 3) in [-1, 1], ``canonical_confidence`` (H, W), ``mask`` (H, W) bool, ``face_index``
    (H, W) int16 (-1 = none), ``intrinsics`` (3, 3) float64, ``intrinsics_source`` str,
    ``face_boxes`` (F, 5) float32 (x0, y0, x1, y1, score), ``frame_index`` int.
    """
    boxes = np.array([[f.face.x0, f.face.y0, f.face.x1, f.face.y1, f.face.score] for f in reconstruction.faces],
                     dtype=np.float32).reshape(-1, 5)
    np.savez_compressed(
        path, depth=reconstruction.depth, depth_confidence=reconstruction.depth_confidence,
        canonical=reconstruction.canonical, canonical_confidence=reconstruction.canonical_confidence,
        mask=reconstruction.mask, face_index=reconstruction.face_index, intrinsics=reconstruction.intrinsics,
        intrinsics_source=reconstruction.intrinsics_source, face_boxes=boxes,
        frame_index=reconstruction.frame_index,
    )
