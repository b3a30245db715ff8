"""``tensorrt`` engine: Torch-TensorRT 2.x (dynamo frontend), static shapes per ``(T, H, W)``.

Written to the torch-tensorrt 2.x documentation: ``torch_tensorrt.compile(model, ir="dynamo",
inputs=[torch_tensorrt.Input(shape, dtype=torch.float32)], enabled_precisions={...})`` builds a
TensorRT-backed ``GraphModule``; ``torch_tensorrt.save(..., output_format="exported_program",
inputs=[example])`` serialises it (engines embedded) and ``torch.export.load(path).module()``
loads it back once ``torch_tensorrt`` is imported (that import registers the TensorRT runtime
ops). Artefacts are cached by ``EngineCache`` like the ONNX files. Needs an NVIDIA GPU and the
``torch-tensorrt`` wheel matching the installed torch; neither exists on the CPU machines this
package is developed on, so this path has not been run here.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import Tensor

from ..model.net import FaceAnythingNet
from .base import PRECISIONS, EngineUnavailableError
from .cache import EngineCache
from .static_engine import Runner, StaticShapeEngine, parameter_millions

# Not measured here (no TensorRT available): TensorRT builds of ViT-sized graphs commonly take
# one to several minutes; the estimate only sets expectations in the build announcement.
BUILD_BASE_S = 60.0
BUILD_S_PER_MILLION_PARAMETERS = 1.0
WORKSPACE_BYTES = 4 << 30  # TensorRT builder workspace limit
MISSING = ("torch-tensorrt is not installed / needs an NVIDIA GPU: the tensorrt engine needs the "
           "torch-tensorrt wheel matching torch {torch} and a CUDA device (use --engine compile or onnx)")


def tensorrt_available() -> bool:
    """True when torch_tensorrt is importable and a CUDA device is present."""
    return torch.cuda.is_available() and importlib.util.find_spec("torch_tensorrt") is not None


class TensorRTEngine(StaticShapeEngine):
    """TensorRT engines compiled by Torch-TensorRT, one per input shape (default precision fp16)."""

    name = "tensorrt"
    suffix = ".ep"
    backend = "torch_tensorrt"

    def __init__(self, model: FaceAnythingNet, device: torch.device, precision: str, checkpoint_sha256: str,
                 cache: EngineCache):
        if device.type != "cuda" or not tensorrt_available():
            raise EngineUnavailableError(MISSING.format(torch=torch.__version__))
        super().__init__(model, device, precision, checkpoint_sha256, cache)

    def backend_version(self) -> str:
        import torch_tensorrt

        return torch_tensorrt.__version__

    def estimate_build_s(self) -> float:
        return BUILD_BASE_S + BUILD_S_PER_MILLION_PARAMETERS * parameter_millions(self.model)

    def build(self, example: Tensor, path: Path) -> None:
        import torch_tensorrt

        compiled = torch_tensorrt.compile(
            self.model,
            ir="dynamo",
            inputs=[torch_tensorrt.Input(shape=tuple(example.shape), dtype=torch.float32)],
            enabled_precisions={PRECISIONS[self.precision]},
            workspace_size=WORKSPACE_BYTES,
            device=torch_tensorrt.Device(gpu_id=example.device.index or 0),
        )
        torch_tensorrt.save(compiled, str(path), output_format="exported_program", inputs=[example])

    def load(self, path: Path) -> Runner:
        import torch_tensorrt  # noqa: F401 - registers the TensorRT runtime ops the program calls

        module = torch.export.load(str(path)).module()
        device = self.device

        def run(images: Tensor) -> dict[str, Tensor]:
            return {name: value.to(device) for name, value in module(images).items()}

        return run
