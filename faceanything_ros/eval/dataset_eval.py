"""Scoring a method on data-engine samples with exact ground truth, by one piece of code.

Both methods give, per sample of ``T`` crops, a ``SamplePrediction`` in the crops' virtual cameras
(``geometry.virtual_camera``); ``score_sample`` compares it with the truth:

- the learned model runs on the crops as they are; the focal length its rays imply is fitted as
  ``Predictor`` fits it (``geometry.rays.fit_focal_scale`` over the predicted face's rays, weighted
  by ray confidence, with the true principal point: the focal error), and its depth is made metric
  as ``Predictor`` makes it given a CameraInfo (``PredictorConfig.metric_depth``: by default the
  face's size, ``geometry.face_scale``, along the true camera's rays);
- the face-mesh method fits its template with the true crop intrinsics and renders its mesh.

``depth.*_aligned`` compare after median scale alignment; pixels a method did not reconstruct
count in the mask IoU and ``mask.coverage`` only. Used by ``faceanything eval`` and training's
validation.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from faceanything_ros.config import PredictorConfig
from faceanything_ros.data.format import SPLITS, ShardReader, camera_known, read_manifest
from faceanything_ros.data.samples import images_to_float, to_item
from faceanything_ros.eval.metrics import MetricSums
from faceanything_ros.eval.tracking import canonical_tracks, score_tracks
from faceanything_ros.geometry.face_scale import face_size_scale
from faceanything_ros.geometry.virtual_camera import depth_to_virtual
from faceanything_ros.geometry.rays import fit_focal_scale, ray_sample_stride, sample_crop_rays
from faceanything_ros.io.crop import CropBox
from faceanything_ros.model.flip_average import flip_averaged


@dataclass
class SamplePrediction:
    """One method's maps for the ``T`` crops of a sample, in the crops' virtual cameras."""

    depth: np.ndarray  # (T, S, S) float, metres, metric (true focal used)
    canonical: np.ndarray  # (T, S, S, 3) float canonical coordinates
    mask: np.ndarray  # (T, S, S) bool face pixels
    focal_error_pct: np.ndarray | None = None  # (T,) |f_pred / f_true - 1| in %, None when K was given


def dataset_batches(root: str | Path, split: str | None, limit: int | None = None,
                    batch_size: int = 8) -> Iterator[dict[str, torch.Tensor]]:
    """Batches (``to_item`` tensors stacked) of the first ``limit`` samples of ``split`` (``None``: all);
    clear errors for a missing or corrupt dataset and an unknown or empty split."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS} or 'all', got {split!r}")
    manifest = read_manifest(root)
    records = [(i, r) for i, r in enumerate(manifest["samples"]) if split in (None, r["split"])][:limit]
    if not records:
        raise ValueError(f"dataset {root} has no sample in split {split or 'all'}")
    reader = ShardReader(root)
    for start in range(0, len(records), batch_size):
        items = [to_item(reader.sample(record), position, camera_known(record))
                 for position, record in records[start:start + batch_size]]
        yield torch.utils.data.default_collate(items)


@torch.no_grad()
def model_predictions(model: torch.nn.Module, batch: dict[str, torch.Tensor], device: torch.device,
                      mm_per_unit: float, autocast: torch.autocast | None = None,
                      metric_depth: str = PredictorConfig.metric_depth,
                      flip_average: bool = False) -> list[SamplePrediction]:
    """The network's ``SamplePrediction`` for every sample of ``batch`` (model in eval mode), its depth
    made metric as ``Predictor`` makes it given the true K (``metric_depth``: ``face_size`` along the
    true camera's rays with the canonical space's ``mm_per_unit``, else, and for a crop with too few
    face pixels, by true / predicted focal); ``flip_average``: the network's outputs averaged with
    those on the mirrored crops, as ``Predictor`` does with ``PredictorConfig.flip_average`` (off by
    default: training validates the network's one pass)."""
    model.eval()
    images = images_to_float(batch["images"].to(device))
    with autocast if autocast is not None else contextlib.nullcontext():
        outputs = flip_averaged(model, images) if flip_average else model(images)
    outputs = {name: value.float().cpu() for name, value in outputs.items()}
    # face pixels as Predictor takes them (its default threshold)
    mask = ((torch.sigmoid(outputs["mask_logit"]) > PredictorConfig.mask_threshold) & batch["in_frame"]).numpy()
    out = []
    for b in range(images.shape[0]):
        ratio = np.array([_focal_ratio(outputs["rays"][b, t].numpy(), outputs["ray_confidence"][b, t].numpy(),
                                       mask[b, t], batch["intrinsics"][b, t].double().numpy())
                          for t in range(images.shape[1])])
        scales = [face_size_scale(outputs["depth"][b, t].numpy(), batch["rays"][b, t].numpy(),
                                  outputs["canonical"][b, t].numpy(), mask[b, t], mm_per_unit / 1000.0)
                  if metric_depth == "face_size" else None for t in range(images.shape[1])]
        scales = [1.0 / np.nan_to_num(r, nan=1.0) if scale is None else scale for scale, r in zip(scales, ratio)]
        depth = outputs["depth"][b].numpy() * np.array(scales)[:, None, None]
        out.append(SamplePrediction(depth, outputs["canonical"][b].numpy(), mask[b], 100.0 * np.abs(ratio - 1.0)))
    return out


def _focal_ratio(rays: np.ndarray, confidence: np.ndarray, face: np.ndarray, intrinsics: np.ndarray) -> float:
    """Predicted / true focal length of one ``(S, S, 3)`` ray map over its ``face`` pixels, fitted
    with the crop's true ``(3, 3)`` intrinsics as the reference (the crop is the whole image); NaN
    when the face has too few rays (the depth then stays unscaled, as in ``Predictor``)."""
    size = face.shape[0]
    try:
        crop_rays = sample_crop_rays(rays, confidence, face, CropBox(0.0, 0.0, float(size), size),
                                     ray_sample_stride(size))
    except ValueError:
        return float("nan")
    return fit_focal_scale([crop_rays], intrinsics)


def mesh_predictions(labeler, batch: dict[str, torch.Tensor]) -> list[SamplePrediction]:
    """The face-mesh method's ``SamplePrediction`` for every sample of ``batch``: ``labeler``
    (``canonical.pseudo_labels.FaceMeshLabeler``) fitted with the true crop intrinsics; a crop
    without a found face predicts nothing."""
    out = []
    for b in range(batch["images"].shape[0]):
        images = batch["images"][b].permute(0, 2, 3, 1).numpy()
        frames, size = images.shape[:2]
        depth = np.full((frames, size, size), np.nan)
        canonical = np.zeros((frames, size, size, 3))
        mask = np.zeros((frames, size, size), dtype=bool)
        for t in range(frames):
            K = batch["intrinsics"][b, t].double().numpy()
            labels = labeler.label(np.ascontiguousarray(images[t]), K)
            if not labels:
                continue
            pixels = labels[0].render(size, size)
            mask[t] = pixels.mask
            depth[t] = depth_to_virtual(np.where(pixels.mask, pixels.depth, np.nan), K,
                                        batch["camera_from_virtual"][b, t].double().numpy())
            canonical[t] = np.nan_to_num(pixels.canonical)
        out.append(SamplePrediction(depth, canonical, mask))
    return out


def score_sample(sums: MetricSums, prediction: SamplePrediction, batch: dict[str, torch.Tensor], b: int) -> None:
    """Add sample ``b`` of ``batch`` scored against ``prediction`` to ``sums`` (depth, canonical, mask,
    focal, face found, and TAP-Vid tracking for ``T > 1``). A sample whose camera is not known
    (``format.camera_known``) adds no metric depth and no focal error."""
    frames = prediction.mask.shape[0]
    known = bool(batch["camera_known"][b])
    for t in range(frames):
        truth = batch["mask"][b, t].numpy()
        sums.add_frame(prediction.depth[t], batch["depth"][b, t].numpy(), prediction.canonical[t],
                       batch["canonical"][b, t].numpy(), prediction.mask[t], batch["surface"][b, t].numpy(),
                       truth & prediction.mask[t] & np.isfinite(prediction.depth[t]), metric=known)
        sums.add("mask.face_found", float(prediction.mask[t].any()))
        if prediction.focal_error_pct is not None and known:
            sums.add("focal.error_pct", float(prediction.focal_error_pct[t]))
    if frames > 1:
        queries = batch["track_query_frame"][b].numpy()
        true_pixels = batch["tracks"][b].numpy()
        true_visible = batch["track_visible"][b].numpy()
        tracks = canonical_tracks(prediction.canonical, prediction.mask, true_pixels, queries)
        score_tracks(sums, tracks, true_pixels, true_visible, queries, prediction.mask.shape[-1])
        located = true_visible & np.isfinite(tracks[0]).all(axis=-1)
        rays = batch["rays"][b].double().numpy()
        predicted = track_points(prediction.depth, rays, tracks[0], located)
        truth = track_points(batch["depth"][b].double().numpy(), rays, true_pixels, located)
        error = np.linalg.norm(predicted - truth, axis=-1)
        sums.add("tracking.epe_3d_mm", float(1000.0 * np.nanmean(error)) if np.isfinite(error).any() else float("nan"))


def track_points(depth: np.ndarray, rays: np.ndarray, pixels: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``(N, T, 3)`` virtual-camera points (metres) of ``(N, T, 2)`` track pixels: ``(T, S, S)`` depth at the
    nearest pixel along that pixel's ray (``(T, S, S, 3)``); NaN where not ``valid`` or depth is missing."""
    frames, size = depth.shape[0], depth.shape[-1]
    cols = np.clip(np.rint(np.nan_to_num(pixels[..., 0])), 0, size - 1).astype(np.int64)
    rows = np.clip(np.rint(np.nan_to_num(pixels[..., 1])), 0, size - 1).astype(np.int64)
    frame = np.broadcast_to(np.arange(frames), valid.shape)
    direction = rays[frame, rows, cols]
    points = depth[frame, rows, cols][..., None] * direction / direction[..., 2:3]
    return np.where(valid[..., None], points, np.nan)


def score_batches(predict, batches, mm_per_unit: float) -> dict[str, dict[str, float]]:
    """Summary of ``predict(batch) -> list[SamplePrediction]`` over ``batches`` (``MetricSums.summary``)."""
    sums = MetricSums(mm_per_unit)
    for batch in batches:
        for b, prediction in enumerate(predict(batch)):
            score_sample(sums, prediction, batch, b)
    return sums.summary()
