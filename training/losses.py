"""Training losses: confidence-weighted depth, rays and canonical coordinates, face mask, tracks.

Shapes follow ``FaceAnythingNet.forward`` (``B`` sequences of ``T`` frames at ``H x W``) and
``training.data.dataset.FaceDataset`` batches. Depth and rays are in each crop's virtual camera
(``faceanything_ros.geometry.virtual_camera``). Every term is averaged over the pixels that have
ground truth (``mask``; rays and the face mask are defined at every pixel inside the camera frame),
after dropping each term's errors above their 98th percentile in the batch (``TRIM_QUANTILE``), and
is exactly 0 with finite gradients when no pixel qualifies.

Confidence-weighted terms use the VGGT/DUSt3R form ``c * err - alpha * log(c)`` (``c >= 1``
predicted per pixel, ``alpha = 0.2``), so a network lowers its confidence where it cannot be right.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from faceanything_ros.model.focal import focal_from_rays, focal_scale

SHAPE_SCALE_M = 0.1  # metres: a face's depth relief, the unit of the depth_shape term
TRIM_QUANTILE = 0.98  # errors above this quantile of a term's batch errors are left out (label noise)
GRADIENT_SCALES = 3  # scales (1, 1/2, 1/4) of the gradient-matching term
SCALE_INVARIANCE = 0.85  # lambda of the scale-invariant log term (1 = fully scale invariant)


@dataclass(frozen=True)
class LossWeights:
    """Weights of the terms (0 switches a term off) and the confidence regulariser ``alpha``."""

    depth: float = 1.0  # confidence-weighted metric log depth
    depth_scale_invariant: float = 0.5
    depth_gradient: float = 0.5
    depth_shape: float = 1.0  # median-aligned depth error in units of SHAPE_SCALE_M (the face's relief)
    rays: float = 1.0  # confidence-weighted angular error, radians
    focal: float = 1.0  # |log| ratio of the rays' focal to the true one
    canonical: float = 5.0  # confidence-weighted canonical error (the method's canonical weight)
    mask: float = 0.5  # binary cross-entropy on the face surface
    tracks: float = 0.0  # canonical map read at the exact cross-frame track positions
    alpha: float = 0.2


def confidence_weighted(error: Tensor, confidence: Tensor, valid: Tensor, alpha: float) -> Tensor:
    """Mean of ``c * e - alpha * log(c)`` over ``valid`` pixels with ``e`` below its trim quantile."""
    keep = trimmed(error, valid)
    return masked_mean(confidence * error - alpha * torch.log(confidence), keep)


def trimmed(error: Tensor, valid: Tensor) -> Tensor:
    """``valid`` without the pixels whose (detached) ``error`` exceeds its ``TRIM_QUANTILE`` over the
    sample's ``valid`` pixels (per sample, leading axis ``B``, so a batch split over processes
    trims exactly as the whole batch; a sample with fewer than 2 valid pixels keeps them all).

    The threshold is the ``round(TRIM_QUANTILE * n)``-th smallest of a sample's ``n`` valid errors: a
    selection per sample on the CPU (the fastest there), one sort of the whole batch on a GPU (no
    per-sample host synchronisation); both give the same thresholds.
    """
    values = error.detach().float()
    threshold = (sorted_thresholds if error.is_cuda else selected_thresholds)(values.flatten(1), valid.flatten(1))
    return valid & (values <= threshold.view((-1,) + (1,) * (error.ndim - 1)))


def selected_thresholds(values: Tensor, valid: Tensor) -> Tensor:
    """``(B,)`` trim thresholds of ``(B, N)`` errors over their ``valid`` entries (+inf: fewer than 2), by
    ``kthvalue`` per sample."""
    threshold = torch.full(values.shape[:1], float("inf"), device=values.device)
    for index in range(values.shape[0]):
        kept = values[index][valid[index]]
        if kept.numel() >= 2:
            threshold[index] = kept.kthvalue(max(1, int(round(TRIM_QUANTILE * kept.numel())))).values
    return threshold


def sorted_thresholds(values: Tensor, valid: Tensor) -> Tensor:
    """``selected_thresholds`` by one sort of the batch (invalid entries last, as +inf)."""
    count = valid.sum(1)
    ordered = torch.where(valid, values, torch.full_like(values, float("inf"))).sort(dim=1).values
    rank = (TRIM_QUANTILE * count.double()).round().long().clamp(1, values.shape[1])
    threshold = ordered.gather(1, (rank - 1)[:, None]).squeeze(1)
    return torch.where(count >= 2, threshold, torch.full_like(threshold, float("inf")))


def masked_mean(values: Tensor, valid: Tensor) -> Tensor:
    """Mean over the batch (leading axis ``B``) of each sample's mean of ``values`` over its ``valid``
    entries; a sample without valid entries counts 0 (with a gradient path). Per-sample means make a
    batch split over processes (DDP) average to exactly the whole batch's loss."""
    weight = valid.to(values.dtype)
    dims = tuple(range(1, values.ndim))
    return ((values * weight).sum(dim=dims) / weight.sum(dim=dims).clamp_min(1.0)).mean()


def depth_losses(depth: Tensor, confidence: Tensor, target: Tensor, valid: Tensor, scale: Tensor,
                 alpha: float, metric_valid: Tensor) -> dict[str, Tensor]:
    """Depth terms on ``(B, T, H, W)`` maps (metres): ``depth`` predicted, ``target`` true, ``valid``;
    ``metric_valid`` (within ``valid``): pixels whose metric depth is ground truth (known camera).

    ``scale`` ``(B, T)``: true / predicted focal (detached), applied to the prediction before the
    metric term as ``Predictor`` applies it at run time. Returns ``depth`` (confidence-weighted
    absolute log error), ``depth_scale_invariant`` (per-frame variance of the log error),
    ``depth_gradient`` (mean absolute gradient difference of the log error over 3 scales) and
    ``depth_shape`` (absolute error after per-frame median scale alignment, in ``SHAPE_SCALE_M``:
    the log terms weigh a face's 10 cm relief by distance, 30x less at 3 m than at 0.1 m; this one
    weighs millimetres of shape alike at every distance).
    """
    log_error = torch.log(depth) - torch.log(target.clamp_min(1e-6))
    metric = (log_error + torch.log(scale)[..., None, None]).abs()
    keep = trimmed(metric, valid)
    weight = keep.to(depth.dtype)
    count = weight.sum(dim=(-1, -2)).clamp_min(1.0)
    mean = (log_error * weight).sum(dim=(-1, -2)) / count
    variance = (log_error ** 2 * weight).sum(dim=(-1, -2)) / count - SCALE_INVARIANCE * mean ** 2
    ratio = torch.where(keep, target / depth, torch.full_like(depth, float("nan"))).flatten(-2)
    align = torch.nan_to_num(torch.nanmedian(ratio.detach(), dim=-1).values, nan=1.0)[..., None, None]
    return {
        "depth": masked_mean(confidence * metric - alpha * torch.log(confidence), keep & metric_valid),
        "depth_scale_invariant": masked_mean(variance.clamp_min(0.0), weight.sum(dim=(-1, -2)) > 0),
        "depth_gradient": gradient_matching(log_error, keep),
        "depth_shape": masked_mean((depth * align - target).abs() / SHAPE_SCALE_M, keep),
    }


def gradient_matching(error: Tensor, valid: Tensor) -> Tensor:
    """Mean absolute x/y differences of ``error`` ``(B, T, H, W)`` between neighbouring ``valid`` pixels,
    averaged over ``GRADIENT_SCALES`` scales (stride 1, 2, 4)."""
    total = error.new_zeros(())
    dims = tuple(range(1, error.ndim))
    for scale in range(GRADIENT_SCALES):
        step = 2 ** scale
        e, m = error[..., ::step, ::step], valid[..., ::step, ::step]
        dx_valid, dy_valid = m[..., :, 1:] & m[..., :, :-1], m[..., 1:, :] & m[..., :-1, :]
        dx = (e[..., :, 1:] - e[..., :, :-1]).abs()
        dy = (e[..., 1:, :] - e[..., :-1, :]).abs()
        count = (dx_valid.sum(dim=dims) + dy_valid.sum(dim=dims)).clamp_min(1).to(error.dtype)
        total = total + (((dx * dx_valid).sum(dim=dims) + (dy * dy_valid).sum(dim=dims)) / count).mean()
    return total / GRADIENT_SCALES


def ray_angle(rays: Tensor, target: Tensor) -> Tensor:
    """Angle (radians) between ``(..., 3)`` predicted and true rays, ``atan2(|a x b|, a . b)`` (stable at 0)."""
    cross = torch.linalg.vector_norm(torch.cross(rays, target, dim=-1), dim=-1)
    return torch.atan2(cross + 1e-12, (rays * target).sum(dim=-1))


def track_error(canonical: Tensor, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """Canonical distance between the predicted map read at every track's exact pixel (bilinear) and
    the track's true canonical coordinate: ``((B, N, T) error, (B, N, T) visible)``."""
    batch_size, frames, height, width = canonical.shape[:4]
    pixels = batch["tracks"]  # (B, N, T, 2)
    grid = torch.stack([(pixels[..., 0] + 0.5) / width * 2 - 1, (pixels[..., 1] + 0.5) / height * 2 - 1], dim=-1)
    grid = torch.nan_to_num(grid, nan=-2.0).permute(0, 2, 1, 3).reshape(batch_size * frames, -1, 1, 2)
    maps = canonical.reshape(batch_size * frames, height, width, 3).permute(0, 3, 1, 2)
    sampled = F.grid_sample(maps, grid.to(maps.dtype), mode="bilinear", align_corners=False)
    sampled = sampled[..., 0].reshape(batch_size, frames, 3, -1).permute(0, 3, 1, 2)  # (B, N, T, 3)
    error = torch.linalg.vector_norm(sampled - batch["track_canonical"][:, :, None], dim=-1)
    return error, batch["track_visible"]


def compute_losses(outputs: dict[str, Tensor], batch: dict[str, Tensor], weights: LossWeights) -> dict[str, Tensor]:
    """All terms (unweighted, by name) and ``total`` (their weighted sum) for a batch.

    outputs: ``FaceAnythingNet.forward`` outputs; batch: ``FaceDataset`` items stacked (``images``
    (B, T, 3, H, W), ``depth`` (B, T, H, W) virtual z metres, ``rays`` (B, T, H, W, 3), ``canonical``
    (B, T, H, W, 3), ``mask``/``surface``/``in_frame`` (B, T, H, W) bool, tracks, ``camera_known``
    (B,) bool). Samples whose camera is not known (source views: K assumed when labelling) train
    neither the rays, the focal length nor metric depth; their relative depth, canonical map, mask
    and tracks are ground truth.
    """
    mask, in_frame = batch["mask"], batch["in_frame"]
    known = batch["camera_known"][:, None, None, None]
    outputs = {name: value.float() for name, value in outputs.items()}
    scale = focal_scale(batch["rays"], outputs["rays"], in_frame)
    terms = depth_losses(outputs["depth"], outputs["depth_confidence"], batch["depth"], mask, scale, weights.alpha,
                         mask & known)
    camera_pixels = in_frame & known
    terms["rays"] = confidence_weighted(ray_angle(outputs["rays"], batch["rays"]), outputs["ray_confidence"],
                                        camera_pixels, weights.alpha)
    true_focal = focal_from_rays(batch["rays"], in_frame)
    predicted_focal = focal_from_rays(outputs["rays"], in_frame).clamp_min(1e-3).clamp_min(1e-3 * true_focal)
    terms["focal"] = masked_mean((torch.log(predicted_focal) - torch.log(true_focal.clamp_min(1e-3))).abs(),
                                 camera_pixels.flatten(2).any(dim=-1))
    canonical_error = torch.linalg.vector_norm(outputs["canonical"] - batch["canonical"], dim=-1)
    terms["canonical"] = confidence_weighted(canonical_error, outputs["canonical_confidence"], mask, weights.alpha)
    bce = F.binary_cross_entropy_with_logits(outputs["mask_logit"], batch["surface"].float(), reduction="none")
    terms["mask"] = masked_mean(bce, in_frame)
    if weights.tracks > 0:
        error, visible = track_error(outputs["canonical"], batch)
        terms["tracks"] = masked_mean(error, trimmed(error, visible))
    terms["total"] = sum(getattr(weights, name) * value for name, value in terms.items())
    return terms
