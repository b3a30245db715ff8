"""``Engine``: the one interface every inference backend (torch, compile, onnx, tensorrt) serves.

An engine wraps a loaded ``FaceAnythingNet``: ``run`` is tensor in / dict of tensors out with
exactly the network's output names, shapes and float32 dtype; ``infer`` is the uint8 numpy
convenience the predictor calls. Backends compiled for static shapes build (or load from the
``EngineCache``) one artefact per ``(T, H, W)`` the first time that shape is run.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
import numpy as np
import torch
from torch import Tensor

from ..model.flip_average import flip_averaged
from ..model.net import FaceAnythingNet, check_images
from ..model.prediction import ModelPrediction, frames_to_batch
from ..stages import timed

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class EngineUnavailableError(ValueError):
    """The backend cannot run here (library not installed, no suitable device, unsupported precision)."""


class Engine(ABC):
    """Runs a ``FaceAnythingNet`` on one device at one precision.

    Attributes:
        model: the network, on ``device`` in eval mode.
        name: backend name (``"torch"``, ``"compile"``, ``"onnx"``, ``"tensorrt"``).
        device: torch device the outputs of ``run`` live on.
        precision: ``"fp32"``, ``"fp16"`` or ``"bf16"`` (compute precision; outputs are float32).
        input_size: square model input side in pixels (the checkpoint's ``image_size``).
        patch_size: input ``H`` and ``W`` must be multiples of it.
    """

    name: str = ""

    def __init__(self, model: FaceAnythingNet, device: torch.device, precision: str):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
        self.model = model.to(device).eval()
        self.device = device
        self.precision = precision
        self.input_size = model.config.image_size
        self.patch_size = model.config.patch_size

    @abstractmethod
    def _forward(self, images: Tensor) -> dict[str, Tensor]:
        """Backend forward of checked ``(B, T, 3, H, W)`` float32 images on ``self.device``."""

    def run(self, images: Tensor) -> dict[str, Tensor]:
        """The network's outputs for ``images``.

        Args:
            images: ``(B, T, 3, H, W)`` float RGB in ``[0, 1]`` (any device; moved to ``device``);
                ``H, W`` multiples of ``patch_size``.

        Returns:
            ``FaceAnythingNet.forward``'s dict: ``depth``, ``depth_confidence``,
            ``canonical_confidence``, ``mask_logit`` ``(B, T, H, W)``; ``rays``, ``canonical``
            ``(B, T, H, W, 3)``; float32 on ``device``.
        """
        check_images(images, self.patch_size)
        with torch.inference_mode():
            outputs = self._forward(images.to(self.device, torch.float32))
        return {name: value.float() for name, value in outputs.items()}

    @timed("network")
    def infer(self, images: np.ndarray, flip_average: bool = False) -> ModelPrediction:
        """Run one sequence of ``(T, H, W, 3)`` uint8 RGB frames; numpy predictions at ``H x W``.

        ``flip_average``: average with the outputs on the mirrored frames (``model.flip_average``;
        two network passes)."""
        batch = frames_to_batch(images)
        return ModelPrediction.from_outputs(flip_averaged(self.run, batch) if flip_average else self.run(batch))

    def describe(self) -> str:
        """One line for logs, e.g. ``"onnx on cpu, fp32, 256 px input"``."""
        return f"{self.name} on {self.device}, {self.precision}, {self.input_size} px input"

