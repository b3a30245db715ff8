"""Engine names, what is available on this machine, ``auto`` selection and construction.

``auto`` order (fastest first, from ``bench/engines.py`` results in ``bench/results/``):
on CUDA ``tensorrt`` (when torch-tensorrt is installed), else ``compile`` (CUDA graphs);
on CPU ``onnx`` (tiny @ 256 px, T = 1: ~33 ms vs ~55 ms compiled and ~85 ms eager on the
2-core development CPU), else ``torch``. The choice is logged.
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch

from ..config import ENGINES
from ..model.net import FaceAnythingNet
from .base import Engine, EngineUnavailableError
from .cache import EngineCache, file_sha256
from .compile_engine import CompileEngine
from .onnx_engine import MISSING as ONNX_MISSING
from .onnx_engine import OnnxEngine, onnx_available
from .static_engine import StaticShapeEngine
from .tensorrt_engine import MISSING as TENSORRT_MISSING
from .tensorrt_engine import TensorRTEngine, tensorrt_available
from .torch_engine import TorchEngine

log = logging.getLogger(__name__)

ENGINE_CLASSES: dict[str, type[Engine]] = {"torch": TorchEngine, "compile": CompileEngine, "onnx": OnnxEngine,
                                           "tensorrt": TensorRTEngine}
ENGINE_NAMES = ENGINES  # what --engine accepts: "auto" and every key of ENGINE_CLASSES (config.ENGINES)
DEFAULT_PRECISION = {"torch": "fp32", "compile": "fp32", "onnx": "fp32", "tensorrt": "fp16"}
AUTO_ORDER = {"cuda": ("tensorrt", "compile"), "cpu": ("onnx", "torch")}


def engine_availability(device: str | torch.device = "cpu") -> dict[str, str | None]:
    """For each engine name, None when it can run on ``device`` here, else the reason it cannot."""
    device = torch.device(device)
    cuda = device.type == "cuda" and torch.cuda.is_available()
    return {
        "torch": None,
        "compile": None if hasattr(torch, "compile") else f"torch {torch.__version__} has no torch.compile",
        "onnx": None if onnx_available() else ONNX_MISSING,
        "tensorrt": None if cuda and tensorrt_available() else TENSORRT_MISSING.format(torch=torch.__version__),
    }


def resolve_engine(name: str, device: str | torch.device = "cpu") -> str:
    """``name`` itself, or for ``"auto"`` the fastest engine available on ``device`` (logged)."""
    if name not in ENGINE_NAMES:
        raise ValueError(f"unknown engine {name!r}; choose one of {list(ENGINE_NAMES)}")
    if name != "auto":
        return name
    device = torch.device(device)
    availability = engine_availability(device)
    order = AUTO_ORDER["cuda" if device.type == "cuda" else "cpu"]
    # the last engine of each order (compile, torch) is always available
    index = next(i for i, candidate in enumerate(order) if availability[candidate] is None)
    chosen, skipped = order[index], [f"{candidate} ({availability[candidate]})" for candidate in order[:index]]
    log.info("engine auto -> %s on %s%s", chosen, device, f"; not available: {', '.join(skipped)}" if skipped else "")
    return chosen


def create_engine(name: str, model: FaceAnythingNet, checkpoint: str | Path, device: str | torch.device = "cpu",
                  precision: str | None = None, cache_dir: str | Path | None = None) -> Engine:
    """Build engine ``name`` (or ``"auto"``) around ``model``, the network of ``checkpoint``.

    Args:
        name: one of ``ENGINE_NAMES``.
        model: the loaded network (moved to ``device``).
        checkpoint: its checkpoint file; its content hash keys the artefact cache.
        device: torch device, e.g. ``"cpu"`` or ``"cuda:0"``.
        precision: ``"fp32"``, ``"fp16"``, ``"bf16"``, or None for the engine's default
            (``DEFAULT_PRECISION``).
        cache_dir: artefact cache folder; None: ``$FACEANYTHING_ENGINE_CACHE`` or
            ``~/.cache/faceanything_ros/engines``.

    Raises ``EngineUnavailableError`` (naming what is missing) when the engine cannot run here.
    """
    device = torch.device(device)
    resolved = resolve_engine(name, device)
    reason = engine_availability(device)[resolved]
    if reason is not None:
        raise EngineUnavailableError(reason)
    precision = precision or DEFAULT_PRECISION[resolved]
    engine_class = ENGINE_CLASSES[resolved]
    if issubclass(engine_class, StaticShapeEngine):
        engine = engine_class(model, device, precision, file_sha256(checkpoint), EngineCache(cache_dir))
    else:
        engine = engine_class(model, device, precision)
    log.info("inference engine: %s", engine.describe())
    return engine
