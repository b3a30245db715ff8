"""Depth and per-frame map files: 16-bit PNG in millimetres and the float maps of the faces' region (``.npz``)."""
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


def save_millimetres_png(path: str | Path, millimetres: np.ndarray) -> None:
    """Write ``(H, W)`` uint16 depth in millimetres (``depth_to_millimetres``) as a 16-bit PNG."""
    if not cv2.imwrite(str(path), millimetres):
        raise OSError(f"could not write depth PNG {path}")


def load_depth_png(path: str | Path) -> np.ndarray:
    """Read a 16-bit millimetre depth PNG -> ``(H, W)`` float32 metres, NaN where 0."""
    millimetres = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if millimetres is None or millimetres.dtype != np.uint16 or millimetres.ndim != 2:
        raise ValueError(f"{path} is not a single-channel 16-bit depth PNG")
    return millimetres_to_metres(millimetres)


MAP_KEYS = ("depth", "depth_confidence", "canonical", "canonical_confidence", "face_index")  # stored per region


def save_reconstruction_npz(path: str | Path, reconstruction: Reconstruction) -> None:
    """Write a frame's maps inside the faces' region (``.npz``, uncompressed: zlib took longer than every
    other file of a frame together; ``load_reconstruction_npz`` reads it).

    The maps are NaN (``face_index`` -1) outside the face pixels' bounding box, so only that box is
    stored: ``region`` (4,) int32 ``(x0, y0, x1, y1)`` pixels, end exclusive (all 0 without a face),
    ``image_size`` (2,) int32 ``(H, W)``, and inside the region ``depth`` (h, w) float32 m NaN = none,
    ``depth_confidence`` (h, w), ``canonical`` (h, w, 3) in [-1, 1], ``canonical_confidence`` (h, w),
    ``face_index`` (h, w) int16 (-1 = none); then ``intrinsics`` (3, 3) float64,
    ``intrinsics_source`` str, ``face_boxes`` (F, 5) float32 (x0, y0, x1, y1, score), ``frame_index`` int.
    """
    rows, cols = reconstruction.region
    boxes = np.array([[f.face.x0, f.face.y0, f.face.x1, f.face.y1, f.face.score] for f in reconstruction.faces],
                     dtype=np.float32).reshape(-1, 5)
    np.savez(
        path, region=np.array([cols.start, rows.start, cols.stop, rows.stop], dtype=np.int32),
        image_size=np.array(reconstruction.image_size, dtype=np.int32),
        **{key: reconstruction.in_region(key) for key in MAP_KEYS if key != "face_index"},
        face_index=reconstruction.face_index[rows, cols],
        intrinsics=reconstruction.intrinsics, intrinsics_source=reconstruction.intrinsics_source, face_boxes=boxes,
        frame_index=reconstruction.frame_index,
    )


def load_reconstruction_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Read ``save_reconstruction_npz``'s file -> full-image maps (``depth`` (H, W), ``canonical`` (H, W, 3), ...,
    NaN / -1 outside the region), ``mask`` (H, W) bool (``face_index >= 0``) and the other keys as stored."""
    with np.load(path) as stored:
        data = {key: stored[key] for key in stored.files}
    height, width = (int(v) for v in data["image_size"])
    x0, y0, x1, y1 = (int(v) for v in data["region"])
    for key in MAP_KEYS:
        region = data[key]
        full = np.full((height, width) + region.shape[2:], -1 if key == "face_index" else np.nan, dtype=region.dtype)
        full[y0:y1, x0:x1] = region
        data[key] = full
    data["mask"] = data["face_index"] >= 0
    return data
