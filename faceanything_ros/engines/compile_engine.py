"""``compile`` engine: ``torch.compile`` (Inductor); on CUDA with CUDA graphs for fixed shapes.

On CUDA the model is compiled with ``mode="reduce-overhead"``, which records one CUDA graph
per input shape and replays it (no per-kernel launch cost). On CPU plain Inductor generates
C++/OpenMP kernels with the system compiler. Compilation happens on the first call of each
new ``(B, T, H, W)`` shape (``dynamic=False``: each shape gets its own specialised graph); it
is not cached on disk by this package (Inductor keeps its own cache under ``/tmp``).
"""
from __future__ import annotations

import logging
import time

import torch
from torch import Tensor

from ..model.net import FaceAnythingNet
from .base import Engine
from .torch_engine import precision_context

log = logging.getLogger(__name__)

# First-call compile time of the tiny model measured on a 2-core CPU (~60 s); a GPU compile of
# base takes a similar order. Used only for the "this will take about ..." log line.
COMPILE_ESTIMATE_S = 60.0


class CompileEngine(Engine):
    """``torch.compile``d network; precision via autocast as in the ``torch`` engine."""

    name = "compile"

    def __init__(self, model: FaceAnythingNet, device: torch.device, precision: str = "fp32"):
        super().__init__(model, device, precision)
        mode = "reduce-overhead" if device.type == "cuda" else None
        self.model = torch.compile(self.model, mode=mode, dynamic=False)
        self._compiled_shapes: set[tuple[int, ...]] = set()

    def _forward(self, images: Tensor) -> dict[str, Tensor]:
        shape = tuple(images.shape)
        first = shape not in self._compiled_shapes
        if first:
            log.info("compiling the model for input %s on %s (first call; about %.0f s)", shape, self.device,
                     COMPILE_ESTIMATE_S)
            started = time.perf_counter()
        if self.device.type == "cuda":
            # a new CUDA-graph replay step; earlier outputs may be overwritten, hence the clone below
            torch.compiler.cudagraph_mark_step_begin()
        with precision_context(self.device, self.precision):
            outputs = self.model(images)
        if first:
            self._compiled_shapes.add(shape)
            log.info("compiled for %s in %.1f s", shape, time.perf_counter() - started)
        if self.device.type == "cuda":
            return {name: value.clone() for name, value in outputs.items()}
        return outputs
