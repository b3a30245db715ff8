"""Inference engines behind one interface: eager ``torch``, ``compile`` (torch.compile, CUDA
graphs on GPU), ``onnx`` (ONNX Runtime) and ``tensorrt`` (Torch-TensorRT), plus the on-disk
cache of compiled artefacts. ``create_engine("auto", ...)`` picks the fastest available."""
from .base import PRECISIONS, Engine, EngineUnavailableError
from .cache import CACHE_ENV, CacheKey, EngineCache, default_cache_dir
from .registry import DEFAULT_PRECISION, ENGINE_NAMES, create_engine, engine_availability, resolve_engine

__all__ = [
    "CACHE_ENV", "CacheKey", "DEFAULT_PRECISION", "ENGINE_NAMES", "Engine", "EngineCache",
    "EngineUnavailableError", "PRECISIONS", "create_engine", "default_cache_dir", "engine_availability",
    "resolve_engine",
]
