"""Counters and latency percentiles of a frame stream, for the node's diagnostics and bag-eval's report."""
from __future__ import annotations

import time
from collections import Counter, deque
from typing import Any, Callable

import numpy as np

LATENCY_WINDOW = 10_000  # latencies kept for the percentiles (bounded memory in a long-running node)


class ProcessingStats:
    """Frames in/out, drops, errors by kind and per-frame latencies of one stream.

    ``record_input`` when a frame arrives, ``record_output(latency_s)`` when its result is out,
    ``record_drop`` for a frame replaced by a newer one before processing, ``record_error(kind)``
    for a frame that could not be converted or processed. ``clock`` returns seconds (monotonic).
    ``consecutive_errors`` counts the errors since the last output; ``last_input_s`` is the clock
    time of the latest input (None before the first).
    """

    def __init__(self, latency_window: int = LATENCY_WINDOW, clock: Callable[[], float] = time.monotonic) -> None:
        self.frames_in = 0
        self.frames_out = 0
        self.dropped = 0
        self.errors: Counter[str] = Counter()
        self.latencies_s: deque[float] = deque(maxlen=latency_window)
        self._clock = clock
        self.consecutive_errors = 0
        self.last_input_s: float | None = None
        self._first_input: float | None = None
        self._last_output: float | None = None

    def record_input(self) -> None:
        """One frame arrived."""
        self.frames_in += 1
        self.last_input_s = self._clock()
        if self._first_input is None:
            self._first_input = self.last_input_s

    def record_output(self, latency_s: float) -> None:
        """One frame's results were produced, ``latency_s`` seconds after its arrival."""
        self.frames_out += 1
        self.latencies_s.append(float(latency_s))
        self.consecutive_errors = 0
        self._last_output = self._clock()

    def record_drop(self) -> None:
        """One frame was dropped unprocessed (a newer frame replaced it)."""
        self.dropped += 1

    def record_error(self, kind: str) -> bool:
        """One frame failed with error ``kind``; True the first time this kind is seen (log it then)."""
        self.errors[kind] += 1
        self.consecutive_errors += 1
        return self.errors[kind] == 1

    @property
    def throughput_hz(self) -> float:
        """Frames out per second between the first input and the last output (0 before any output)."""
        if self._first_input is None or self._last_output is None or self._last_output <= self._first_input:
            return 0.0
        return self.frames_out / (self._last_output - self._first_input)

    def latency_percentiles_ms(self) -> dict[str, float]:
        """``p50_ms``, ``p95_ms``, ``p99_ms``, ``max_ms`` over the kept latencies (NaN when none)."""
        if not self.latencies_s:
            return {"p50_ms": float("nan"), "p95_ms": float("nan"), "p99_ms": float("nan"), "max_ms": float("nan")}
        ms = np.asarray(self.latencies_s) * 1e3
        p50, p95, p99 = np.percentile(ms, [50, 95, 99])
        return {"p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99), "max_ms": float(ms.max())}

    def summary(self) -> dict[str, Any]:
        """Plain dict: ``frames_in``, ``frames_out``, ``dropped``, ``errors`` (total), ``errors_by_kind``,
        ``latency`` (``latency_percentiles_ms``) and ``throughput_hz``, for JSON and diagnostics."""
        return {
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "dropped": self.dropped,
            "errors": sum(self.errors.values()),
            "errors_by_kind": dict(self.errors),
            "latency": self.latency_percentiles_ms(),
            "throughput_hz": self.throughput_hz,
        }
