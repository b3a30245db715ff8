"""The focal length implied by the network's ray maps (torch), and the depth scale it gives.

The network predicts depth consistent with its own rays' focal; given the true focal (a
CameraInfo), ``PredictorConfig.metric_depth = "rays"`` scales depth by true / predicted focal (the
default, ``face_size``, scales it to the face's size instead). Training's metric depth and focal terms use
this batched least-squares estimator for truth and prediction alike (its small bias cancels);
``Predictor`` and ``faceanything eval`` use the confidence-weighted angular fit
``geometry.rays.fit_focal_scale``, which also handles crops of an uncentred image camera.
"""
from __future__ import annotations

import torch
from torch import Tensor

MIN_RAY_Z = 1e-3  # rays with forward component below this are left out of the focal estimate
SCALE_RANGE = (1.0 / 3.0, 3.0)  # true/predicted focal ratio clamp (an untrained ray head has no focal)


def focal_from_rays(rays: Tensor, valid: Tensor) -> Tensor:
    """``(B, T)`` least-squares focal length (pixels) of ``(B, T, H, W, 3)`` ray maps of centred
    (virtual) cameras: ``(u - cx, v - cy) ~ f * (x / z, y / z)`` over ``valid`` ``(B, T, H, W)`` pixels.

    Ground truth and prediction go through this same estimator, so their ratio is the depth scale
    that ``Predictor`` applies when the true focal is known.
    """
    height, width = rays.shape[2:4]
    v, u = torch.meshgrid(torch.arange(height, device=rays.device, dtype=rays.dtype) - (height - 1) / 2,
                          torch.arange(width, device=rays.device, dtype=rays.dtype) - (width - 1) / 2, indexing="ij")
    z = rays[..., 2].clamp_min(MIN_RAY_Z)
    ratios = torch.stack([rays[..., 0] / z, rays[..., 1] / z], dim=-1)
    offsets = torch.stack([u, v], dim=-1)
    weight = (valid & (rays[..., 2] > MIN_RAY_Z)).to(rays.dtype)[..., None]
    numerator = (weight * ratios * offsets).sum(dim=(2, 3, 4))
    denominator = (weight * ratios * ratios).sum(dim=(2, 3, 4)).clamp_min(1e-12)
    return numerator / denominator


def focal_scale(true_rays: Tensor, rays: Tensor, valid: Tensor) -> Tensor:
    """``(B, T)`` detached true / predicted focal (``focal_from_rays`` of both), clamped to ``SCALE_RANGE``
    (an untrained ray head has no meaningful focal): the depth scale ``Predictor`` applies given a K."""
    scale = focal_from_rays(true_rays, valid) / focal_from_rays(rays.detach(), valid)
    return torch.nan_to_num(scale, nan=1.0).clamp(*SCALE_RANGE).detach()
