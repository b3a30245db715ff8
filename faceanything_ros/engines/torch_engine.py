"""``torch`` engine: the network in eager PyTorch, fp32 or under autocast (fp16 / bf16)."""
from __future__ import annotations

import contextlib

import torch
from torch import Tensor

from ..model.net import FaceAnythingNet
from .base import PRECISIONS, Engine


class TorchEngine(Engine):
    """Eager PyTorch on CPU or CUDA. ``fp16``/``bf16`` run under ``torch.autocast`` (matmuls and
    convolutions in reduced precision, reductions and softmax in float32); both work on CPU too."""

    name = "torch"

    def __init__(self, model: FaceAnythingNet, device: torch.device, precision: str = "fp32"):
        super().__init__(model, device, precision)

    def _forward(self, images: Tensor) -> dict[str, Tensor]:
        with precision_context(self.device, self.precision):
            return self.model(images)


def precision_context(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """``torch.autocast`` to ``precision`` on ``device``'s type, or a no-op for ``fp32``."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=PRECISIONS[precision])
