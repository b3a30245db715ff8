"""Accuracy metrics of dense face reconstruction and tracking (numpy, method-agnostic).

Units: depth in metres in, millimetres out; canonical coordinates in the space's units in,
millimetres out (``mm_per_unit`` of the canonical space); pixels for tracks. ``MetricSums`` pools
per-sample values so a whole dataset is summarised by one ``summary()`` dict grouped by family
(``{"depth": {...}, "canonical": {...}, "mask": {...}, "tracking": {...}}``).
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np

TAP_THRESHOLDS_PX = (1.0, 2.0, 4.0, 8.0, 16.0)  # TAP-Vid thresholds at TAP_REFERENCE_SIZE pixels
TAP_REFERENCE_SIZE = 256  # image side at which the TAP-Vid thresholds apply (scaled to other sizes)
DELTA_THRESHOLD = 1.25


def median_scale(prediction: np.ndarray, target: np.ndarray) -> float:
    """Median of ``target / prediction`` over positive pairs (1 when there is none)."""
    good = (prediction > 0) & (target > 0)
    return float(np.median(target[good] / prediction[good])) if good.any() else 1.0


def depth_errors(prediction: np.ndarray, target: np.ndarray) -> dict[str, np.ndarray]:
    """Per-pixel errors of ``(N,)`` predicted vs true depth (metres, both > 0): ``abs_mm``,
    ``abs_rel``, ``ratio`` (max(p/t, t/p)); and the same after median scale alignment (``_aligned``)."""
    prediction = np.asarray(prediction, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    aligned = prediction * median_scale(prediction, target)
    out = {}
    for suffix, value in (("", prediction), ("_aligned", aligned)):
        out["abs_mm" + suffix] = np.abs(value - target) * 1000.0
        out["abs_rel" + suffix] = np.abs(value - target) / target
        out["ratio" + suffix] = np.maximum(value / target, target / value)
    return out


def canonical_errors_mm(prediction: np.ndarray, target: np.ndarray, mm_per_unit: float) -> np.ndarray:
    """``(N,)`` distances (mm) between ``(N, 3)`` predicted and true canonical coordinates."""
    return np.linalg.norm(np.asarray(prediction, np.float64) - np.asarray(target, np.float64), axis=-1) * mm_per_unit


def mask_iou(prediction: np.ndarray, target: np.ndarray) -> float:
    """Intersection over union of two bool masks (1 when both are empty)."""
    union = np.logical_or(prediction, target).sum()
    return float(np.logical_and(prediction, target).sum() / union) if union else 1.0


def tap_metrics(pred_pixels: np.ndarray, pred_visible: np.ndarray, true_pixels: np.ndarray, true_visible: np.ndarray,
                query_frame: np.ndarray, image_size: int) -> dict[str, float]:
    """TAP-Vid metrics of ``N`` tracks over ``T`` frames, query frames excluded.

    pred_pixels, true_pixels: ``(N, T, 2)`` pixels; pred_visible, true_visible: ``(N, T)`` bool;
    query_frame: ``(N,)``; image_size: side in pixels (thresholds scale as ``size / 256``).
    Returns ``delta_avg`` (fraction of visible points within each threshold, averaged),
    ``occlusion_accuracy``, ``average_jaccard`` and ``epe_px`` (mean end-point error on visible points
    that the method located; a frame without a face counts as a miss in the other metrics).
    """
    frames = true_pixels.shape[1]
    evaluated = np.arange(frames)[None, :] != np.asarray(query_frame)[:, None]
    distance = np.linalg.norm(np.nan_to_num(pred_pixels, nan=1e9) - np.nan_to_num(true_pixels, nan=-1e9), axis=-1)
    visible_true = true_visible & evaluated
    located = visible_true & np.isfinite(pred_pixels).all(axis=-1)
    scale = image_size / TAP_REFERENCE_SIZE
    within, jaccard = [], []
    for threshold in TAP_THRESHOLDS_PX:
        close = distance < threshold * scale
        if visible_true.any():
            within.append(float((close & visible_true).sum() / visible_true.sum()))
        true_positive = (close & visible_true & pred_visible).sum()
        false_positive = (pred_visible & evaluated & ~(close & visible_true)).sum()
        false_negative = (visible_true & ~(pred_visible & close)).sum()
        denominator = true_positive + false_positive + false_negative
        jaccard.append(float(true_positive / denominator) if denominator else 1.0)
    return {
        "delta_avg": float(np.mean(within)) if within else float("nan"),
        "occlusion_accuracy": float((pred_visible == true_visible)[evaluated].mean()) if evaluated.any() else float("nan"),
        "average_jaccard": float(np.mean(jaccard)),
        "epe_px": float(distance[located].mean()) if located.any() else float("nan"),
    }


class MetricSums:
    """Pools per-pixel errors and per-sample values over a dataset; ``summary()`` reduces them."""

    def __init__(self, mm_per_unit: float) -> None:
        self.mm_per_unit = mm_per_unit
        self.pixels: dict[str, list[np.ndarray]] = defaultdict(list)
        self.samples: dict[str, list[float]] = defaultdict(list)

    def add_frame(self, depth: np.ndarray, true_depth: np.ndarray, canonical: np.ndarray, true_canonical: np.ndarray,
                  mask: np.ndarray, true_mask: np.ndarray, valid: np.ndarray, metric: bool = True) -> None:
        """One frame: ``(H, W)`` depth maps (metres, virtual camera), ``(H, W, 3)`` canonical maps,
        ``(H, W)`` bool predicted and true face masks, and ``valid`` (H, W) bool: pixels with ground
        truth that the method also reconstructed. Pixels the method missed count in the mask IoU only.
        ``metric`` False: the true depth is exact up to scale only, so only the scale-aligned depth
        errors are pooled."""
        if valid.any():
            for name, value in depth_errors(depth[valid], true_depth[valid]).items():
                if metric or name.endswith("_aligned"):
                    self.pixels["depth." + name].append(value.astype(np.float32))
            self.pixels["canonical"].append(canonical_errors_mm(canonical[valid], true_canonical[valid],
                                                                self.mm_per_unit).astype(np.float32))
        self.samples["mask.iou"].append(mask_iou(mask, true_mask))
        self.samples["mask.coverage"].append(float(valid.sum() / max(true_mask.sum(), 1)))

    def add(self, name: str, value: float) -> None:
        """A per-sample scalar ``family.metric`` (e.g. ``tracking.delta_avg``), averaged in ``summary``."""
        if np.isfinite(value):
            self.samples[name].append(float(value))

    def summary(self) -> dict[str, dict[str, float]]:
        """``{"depth": {rmse_mm, rmse_aligned_mm, abs_rel, abs_rel_aligned, delta1, delta1_aligned},
        "canonical": {median_mm, mean_mm}, "mask": {iou, coverage}, ...}`` (families without data omitted)."""
        out: dict[str, dict[str, float]] = defaultdict(dict)
        pooled = {name: np.concatenate(values) for name, values in self.pixels.items() if values}
        for suffix in ("", "_aligned"):
            if "depth.abs_mm" + suffix in pooled:
                out["depth"]["rmse" + suffix + "_mm"] = float(np.sqrt(np.mean(pooled["depth.abs_mm" + suffix].astype(np.float64) ** 2)))
                out["depth"]["abs_rel" + suffix] = float(np.mean(pooled["depth.abs_rel" + suffix]))
                out["depth"]["delta1" + suffix] = float(np.mean(pooled["depth.ratio" + suffix] < DELTA_THRESHOLD))
        if "canonical" in pooled:
            out["canonical"]["median_mm"] = float(np.median(pooled["canonical"]))
            out["canonical"]["mean_mm"] = float(np.mean(pooled["canonical"]))
        for name, values in self.samples.items():
            family, metric = name.split(".", 1)
            out[family][metric] = float(np.mean(values))
        return dict(out)
