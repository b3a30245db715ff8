"""Shared machinery of the backends that compile one artefact per input shape (onnx, tensorrt).

``StaticShapeEngine`` keeps one loaded runner per ``(T, H, W)`` (batch 1); the first use of a
shape loads its artefact from the ``EngineCache`` or builds it there. ``prepare`` does the same
ahead of time (``faceanything build-engine``).
"""
from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

from ..model.net import FaceAnythingNet
from .base import Engine
from .cache import CacheKey, EngineCache, device_model, library_versions

Runner = Callable[[Tensor], dict[str, Tensor]]  # (1, T, 3, H, W) float32 -> network outputs


class StaticShapeEngine(Engine):
    """An engine compiled per ``(T, H, W)`` and cached on disk, keyed by ``CacheKey``."""

    suffix: str = ""  # artefact file suffix, e.g. ".onnx"
    backend: str = ""  # library whose version enters the cache key, e.g. "onnxruntime"

    def __init__(self, model: FaceAnythingNet, device: torch.device, precision: str, checkpoint_sha256: str,
                 cache: EngineCache):
        super().__init__(model, device, precision)
        self.checkpoint_sha256 = checkpoint_sha256
        self.cache = cache
        self._runners: dict[tuple[int, int, int], Runner] = {}

    @abstractmethod
    def backend_version(self) -> str:
        """Version string of ``backend``."""

    @abstractmethod
    def estimate_build_s(self) -> float:
        """Rough build time of one artefact in seconds (for the build announcement)."""

    @abstractmethod
    def build(self, example: Tensor, path: Path) -> None:
        """Compile the model for ``example``'s shape ``(1, T, 3, H, W)`` and write the artefact to ``path``."""

    @abstractmethod
    def load(self, path: Path) -> Runner:
        """Load an artefact written by ``build``; raise on a damaged one."""

    def cache_key(self, frames: int, height: int, width: int) -> CacheKey:
        """The ``CacheKey`` of this engine's artefact for input ``(T, H, W)``."""
        return CacheKey(engine=self.name, checkpoint_sha256=self.checkpoint_sha256,
                        input_shape=(frames, height, width), precision=self.precision,
                        device_model=device_model(self.device),
                        library_versions=library_versions(self.backend, self.backend_version()))

    def prepare(self, frames: int, height: int, width: int) -> Runner:
        """The runner for input ``(1, T, 3, H, W)``: loaded, from the cache, or built into it."""
        shape = (frames, height, width)
        if shape not in self._runners:
            example = torch.rand(1, frames, 3, height, width, device=self.device)
            self._runners[shape] = self.cache.get_or_build(
                self.cache_key(*shape), self.suffix, lambda path: self.build(example, path), self.load,
                self.estimate_build_s())
        return self._runners[shape]

    def _forward(self, images: Tensor) -> dict[str, Tensor]:
        frames, _, height, width = images.shape[1:]
        return run_per_sequence(images, self.prepare(frames, height, width))


def parameter_millions(model: FaceAnythingNet) -> float:
    """Parameter count of ``model`` in millions (build-time estimates scale with it)."""
    return sum(p.numel() for p in model.parameters()) / 1e6


def run_per_sequence(images: Tensor, forward_one: Runner) -> dict[str, Tensor]:
    """Run a static-shape (batch 1) ``forward_one`` on each sequence of ``(B, T, 3, H, W)`` images
    and concatenate the outputs along the batch axis."""
    if images.shape[0] == 1:
        return forward_one(images)
    results = [forward_one(images[b:b + 1]) for b in range(images.shape[0])]
    return {name: torch.cat([result[name] for result in results]) for name in results[0]}
