"""Accuracy of processed frames against ground truth carried in a bag (depth maps, canonical tracks)."""
from __future__ import annotations

from typing import Any

import numpy as np

DELTA_THRESHOLD = 1.25  # the standard delta < 1.25 depth accuracy


class DepthAccuracy:
    """Depth errors pooled over every face pixel (predicted depth finite) that has ground truth.

    AbsRel = mean(|p - g| / g), RMSE = sqrt(mean((p - g)^2)) in metres, delta = fraction of pixels
    with max(p / g, g / p) < ``DELTA_THRESHOLD``; p, g are depths in metres (g > 0 finite).
    """

    def __init__(self) -> None:
        self.frames = 0
        self.pixels = 0
        self._abs_rel = 0.0
        self._squared = 0.0
        self._within = 0

    def add(self, predicted: np.ndarray, truth: np.ndarray) -> None:
        """One frame: ``(H, W)`` predicted and ground-truth depth in metres (NaN = none), same size."""
        if predicted.shape != truth.shape:
            raise ValueError(f"ground-truth depth is {truth.shape[1]}x{truth.shape[0]}, the prediction "
                             f"{predicted.shape[1]}x{predicted.shape[0]}")
        valid = np.isfinite(predicted) & np.isfinite(truth) & (truth > 0)
        p, g = predicted[valid].astype(np.float64), truth[valid].astype(np.float64)
        self.frames += 1
        self.pixels += int(valid.sum())
        self._abs_rel += float(np.sum(np.abs(p - g) / g))
        self._squared += float(np.sum((p - g) ** 2))
        self._within += int(np.sum(np.maximum(p / g, g / p) < DELTA_THRESHOLD))

    def summary(self) -> dict[str, Any]:
        """``frames``, ``pixels``, ``abs_rel``, ``rmse_m``, ``delta_1_25`` (NaN without pixels)."""
        n = self.pixels
        return {
            "frames": self.frames, "pixels": n,
            "abs_rel": self._abs_rel / n if n else float("nan"),
            "rmse_m": float(np.sqrt(self._squared / n)) if n else float("nan"),
            "delta_1_25": self._within / n if n else float("nan"),
        }


class TrackAccuracy:
    """2D error of tracks matched by id with ground-truth tracks, where both are visible.

    The tracker's ids are its own, so the ground truth must come from the same id sequence (e.g.
    a recording of this node, perturbed or corrected); unmatched ids are counted, not scored.
    """

    def __init__(self) -> None:
        self.frames = 0
        self.matched = 0
        self.unmatched = 0
        self._error_px = 0.0

    def add(self, ids: np.ndarray, pixels: np.ndarray, visible: np.ndarray, truth: dict[str, np.ndarray]) -> None:
        """One frame: predicted ``(Q,)`` ids, ``(Q, 2)`` pixels, ``(Q,)`` visible; ``truth`` as ``track_array_to_arrays``."""
        truth_visible = truth["visible"] & np.all(np.isfinite(truth["pixels"]), axis=1)
        truth_ids = truth["ids"][truth_visible]
        shown = visible & np.all(np.isfinite(pixels), axis=1)
        common, predicted_index, truth_index = np.intersect1d(ids[shown], truth_ids, return_indices=True)
        errors = np.linalg.norm(pixels[shown][predicted_index].astype(np.float64)
                                - truth["pixels"][truth_visible][truth_index], axis=1)
        self.frames += 1
        self.matched += len(common)
        self.unmatched += len(truth_ids) - len(common)
        self._error_px += float(errors.sum())

    def summary(self) -> dict[str, Any]:
        """``frames``, ``matched``, ``unmatched`` (visible truth ids not visible in the prediction), ``mean_error_px``."""
        return {"frames": self.frames, "matched": self.matched, "unmatched": self.unmatched,
                "mean_error_px": self._error_px / self.matched if self.matched else float("nan")}
