"""Named output activations of the prediction heads; each maps raw ``(N, C, H, W)`` channels.

Channel dimension is 1. ``ACTIVATIONS`` maps the names used by ``DPTHead`` to the functions.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

LOG_DEPTH_RANGE = (-8.0, 8.0)  # clamp of raw log-depth: depth in [3.4e-4, 2981] metres
LOG_CONFIDENCE_MAX = 20.0  # clamp of raw log-confidence: confidence in [1, 1 + 4.9e8]
RAY_NORM_EPS = 1e-6  # smallest ray norm divided by (a ray of raw + [0, 0, 1] == 0 stays 0)


def positive_depth(raw: Tensor) -> Tensor:
    """Depth in metres ``exp(clamp(raw, -8, 8))``: always finite and > 0."""
    return torch.exp(raw.clamp(*LOG_DEPTH_RANGE))


def confidence(raw: Tensor) -> Tensor:
    """Confidence ``1 + exp(clamp(raw, max=20))`` ("expp1"): finite and >= 1."""
    return 1.0 + torch.exp(raw.clamp(max=LOG_CONFIDENCE_MAX))


def canonical(raw: Tensor) -> Tensor:
    """Canonical facial coordinates ``tanh(raw)`` in ``[-1, 1]``."""
    return torch.tanh(raw)


def unit_ray(raw: Tensor) -> Tensor:
    """Unit ray directions from 3 raw channels (x, y, z of the camera optical frame).

    Adds a forward bias ``[0, 0, 1]`` before L2-normalising over the channel dimension, so an
    untrained head (raw ~ 0) already points forward (+z). ``raw`` must have 3 channels.
    """
    forward = raw.new_tensor([0.0, 0.0, 1.0]).view(1, 3, 1, 1)
    rays = raw + forward
    return rays * torch.rsqrt((rays * rays).sum(dim=1, keepdim=True).clamp_min(RAY_NORM_EPS ** 2))


def identity(raw: Tensor) -> Tensor:
    """Raw values unchanged (e.g. mask logits)."""
    return raw


ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "exp": positive_depth,
    "expp1": confidence,
    "tanh": canonical,
    "unit_ray": unit_ray,
    "identity": identity,
}
