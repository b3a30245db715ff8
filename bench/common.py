"""Shared benchmark helpers: hardware description, latency statistics, JSON results.

Benchmarks run as modules from the repository root, e.g. ``python -m bench.model_latency``.
"""
from __future__ import annotations

import json
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from faceanything_ros.engines.cache import cpu_model

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # real face data beside the repository


def hardware_info() -> dict[str, Any]:
    """CPU/GPU, core and thread counts, library versions and the single-core speed of this machine
    (``speed_reference_ms``), for result files."""
    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "speed_reference_ms": speed_reference_ms(),
    }
    return info


def speed_reference_ms(rounds: int = 7) -> float:
    """Median thread CPU ms of a fixed piece of work like the pipeline's (numpy on face-sized arrays
    from Python): the same figure on two machines, or two days of one shared machine, says how
    their other figures compare. Measured when a result is written, with nothing else of the
    benchmark running."""
    values = np.random.default_rng(0).random((256, 256, 3), dtype=np.float32)
    times = []
    for _ in range(rounds):
        start = time.thread_time()
        for _ in range(20):
            inside = np.flatnonzero(np.isfinite(values[..., 0]) & (values[..., 1] > 0.25))
            picked = np.take(values.reshape(-1, 3), inside, axis=0)
            np.sort(np.einsum("nc,nc->n", picked, picked))
        times.append(time.thread_time() - start)
    return float(np.median(times) * 1e3)


def time_calls(function: Callable[[], Any], runs: int, warmup: int) -> list[float]:
    """Wall-clock seconds of ``runs`` calls of ``function`` after ``warmup`` untimed calls.

    CUDA work is synchronised before each clock read so GPU time is included.
    """
    if runs < 1 or warmup < 0:
        raise ValueError(f"need runs >= 1 and warmup >= 0, got runs={runs}, warmup={warmup}")
    for _ in range(warmup):
        function()
    samples = []
    for _ in range(runs):
        _synchronize()
        start = time.perf_counter()
        function()
        _synchronize()
        samples.append(time.perf_counter() - start)
    return samples


def _synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def latency_stats(samples_s: list[float]) -> dict[str, float]:
    """``median_ms``, ``p90_ms``, ``min_ms``, ``mean_ms`` of latency samples given in seconds."""
    if not samples_s:
        raise ValueError("latency_stats needs at least one sample")
    ms = np.asarray(samples_s, dtype=np.float64) * 1e3
    return {
        "median_ms": float(np.median(ms)),
        "p90_ms": float(np.percentile(ms, 90)),
        "min_ms": float(ms.min()),
        "mean_ms": float(ms.mean()),
        "runs": int(ms.size),
    }


def write_results(path: str | Path, benchmark: str, results: Any, settings: dict[str, Any], summary: Any = None
                  ) -> Path:
    """Write ``{benchmark, created, hardware, settings, results[, summary]}`` as indented JSON to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": benchmark,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "hardware": hardware_info(),
        "settings": settings,
        "results": results,
        **({} if summary is None else {"summary": summary}),
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def report(benchmark: str, title: str, columns: list[tuple[str, str, str]], rows: list[dict[str, Any]],
           args: Any, summary: Any = None, **settings: Any) -> None:
    """Print ``title`` and a table of ``rows``; write JSON when ``args.json`` is set.

    columns: ``(header, row key, format spec)`` per column, e.g. ``("median ms", "median_ms", ".1f")``.
    The JSON's settings are the parsed arguments (less ``json``) plus ``settings``; ``summary``, when
    given, is written beside the rows (e.g. medians over repeated runs).
    """
    print(title)
    widths = [max(len(header), 8) for header, _, _ in columns]
    print(" ".join(f"{header:>{width}}" for (header, _, _), width in zip(columns, widths)))
    for row in rows:
        print(" ".join(f"{format(row[key], spec):>{width}}" for (_, key, spec), width in zip(columns, widths)))
    if getattr(args, "json", None):
        recorded = {key: value for key, value in vars(args).items() if key != "json"}
        print(f"wrote {write_results(args.json, benchmark, rows, {**recorded, **settings}, summary)}")
