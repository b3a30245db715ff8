"""Wall time of each stage of the frame pipeline, for the node's ``/diagnostics`` and the benchmarks.

The stages of one frame, in order (``STAGES``): ``convert`` (image message -> RGB), ``detect``
(face detector, or its box tracking between detections), ``network`` (the model's engine, crops in
and maps out) or ``mesh`` (mediapipe face mesh), ``paste_back`` (image maps of a face: the model's
crop maps resampled, or the fitted face mesh rasterised and, for a large face, resampled), ``cloud`` (unprojection),
``reconstruct`` (the whole reconstruction: the stages from ``detect`` to ``cloud`` and what lies
between them), ``tracking``, ``head_pose``, ``message_build`` and ``publish``.

Each call records its wall time and the CPU time of its thread (``time.thread_time``: work in
other threads, e.g. an inference runtime's pool, is not in it; on a machine shared with other work
it shows what a stage costs when wall times are stretched by waiting for a core). The code of a
stage records itself with ``timed(name)`` (a decorator) or ``STAGE_TIMES.stage(name)`` (a ``with``
block) into ``STAGE_TIMES``, this process's recorder: a stage runs in whichever thread calls it
(the node: ``convert`` in the image callback, ``detect`` to ``reconstruct`` but ``cloud`` in the
inference thread; ``cloud``, computed when first used, and the rest in the publishing thread), so
the recorder is one per process, thread-safe, with a bounded window per stage.
"""
from __future__ import annotations

import functools
import threading
import time
from collections import deque
from contextlib import contextmanager
from typing import Any, Callable, Iterator, TypeVar

import numpy as np

STAGES = ("convert", "detect", "network", "mesh", "paste_back", "cloud", "reconstruct", "tracking", "head_pose",
          "message_build", "publish")
STAGE_WINDOW = 1000  # calls kept per stage for the statistics (bounded memory in a long-running node)

Function = TypeVar("Function", bound=Callable[..., Any])


class StageTimes:
    """Durations of the ``STAGES`` of a pipeline, the last ``window`` calls of each (thread-safe)."""

    def __init__(self, window: int = STAGE_WINDOW) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self._lock = threading.Lock()
        self._seconds = {name: deque(maxlen=window) for name in STAGES}
        self._calls = dict.fromkeys(STAGES, 0)
        self._total_s = dict.fromkeys(STAGES, 0.0)
        self._cpu_s = dict.fromkeys(STAGES, 0.0)

    def record(self, name: str, seconds: float, cpu_seconds: float = 0.0) -> None:
        """One call of stage ``name`` took ``seconds`` of wall time and ``cpu_seconds`` of its thread's CPU
        time; ``ValueError`` for a name not in ``STAGES``."""
        if name not in self._seconds:
            raise ValueError(f"unknown stage {name!r}; stages are {list(STAGES)}")
        with self._lock:
            self._seconds[name].append(float(seconds))
            self._calls[name] += 1
            self._total_s[name] += float(seconds)
            self._cpu_s[name] += float(cpu_seconds)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Record the wall time of the ``with`` block as one call of stage ``name`` (also when it raises)."""
        start, start_cpu = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            self.record(name, time.perf_counter() - start, time.thread_time() - start_cpu)

    def summary(self) -> dict[str, dict[str, float]]:
        """``{stage: {calls, total_s, cpu_s, mean_ms, p50_ms, p99_ms}}`` of every stage called so far, in
        ``STAGES`` order: ``calls``, ``total_s`` and ``cpu_s`` (wall and thread CPU seconds) over all
        calls, the wall-time statistics over the kept window."""
        with self._lock:
            kept = {name: np.asarray(values) * 1e3 for name, values in self._seconds.items() if values}
            calls, total_s, cpu_s = dict(self._calls), dict(self._total_s), dict(self._cpu_s)
        return {name: {"calls": calls[name], "total_s": total_s[name], "cpu_s": cpu_s[name],
                       "mean_ms": float(ms.mean()),
                       "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99))}
                for name, ms in kept.items()}

    def reset(self) -> None:
        """Forget every recorded call."""
        with self._lock:
            for name in STAGES:
                self._seconds[name].clear()
                self._calls[name] = 0
                self._total_s[name] = self._cpu_s[name] = 0.0


STAGE_TIMES = StageTimes()  # this process's recorder


def timed(name: str) -> Callable[[Function], Function]:
    """Decorator: every call of the function is one call of stage ``name`` in ``STAGE_TIMES``."""
    if name not in STAGES:
        raise ValueError(f"unknown stage {name!r}; stages are {list(STAGES)}")

    def decorate(function: Function) -> Function:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with STAGE_TIMES.stage(name):
                return function(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
