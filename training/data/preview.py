"""A PNG contact sheet of samples: one row per sample, columns RGB | depth | canonical | mask (frame 0)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from faceanything_ros.export.colorize import colorize_canonical, colorize_depth

PREVIEW_SAMPLES = 6  # samples (rows) in a dataset's preview sheet
PREVIEW_FILE = "preview.png"  # the preview sheet's file name in the dataset folder


def preview_grid(samples: list[dict[str, np.ndarray]]) -> np.ndarray:
    """``(rows * S, 4 * S, 3)`` uint8 RGB grid of frame 0 of each sample (``shards.SAMPLE_ARRAYS`` dicts)."""
    if not samples:
        raise ValueError("no samples to preview")
    rows = []
    for arrays in samples:
        mask = arrays["mask"][0]
        depth = np.where(mask, arrays["depth"][0], np.nan).astype(np.float32)
        canonical = np.where(mask[..., None], arrays["canonical"][0].astype(np.float32), np.nan)
        mask_image = np.repeat((mask * 255).astype(np.uint8)[..., None], 3, axis=2)
        mask_image[arrays["surface"][0] & ~mask] = (128, 0, 0)
        rows.append(np.concatenate([arrays["rgb"][0], colorize_depth(depth), colorize_canonical(canonical), mask_image], axis=1))
    return np.concatenate(rows, axis=0)


def write_preview(path: str | Path, samples: list[dict[str, np.ndarray]]) -> Path:
    """Write ``preview_grid(samples)`` as a PNG; returns the path."""
    path = Path(path)
    if not cv2.imwrite(str(path), preview_grid(samples)[..., ::-1]):
        raise OSError(f"cannot write preview image {path}")
    return path
