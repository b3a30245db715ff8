"""One-Euro filter (Casiez, Roussel and Vogel, CHI 2012) of per-track signals.

An adaptive low-pass filter: the cutoff frequency grows with the signal's speed,
``cutoff = min_cutoff + beta * |speed|``, so a still point is smoothed strongly (low jitter)
while a moving one follows with little lag. Each track (row) is filtered on its own; a track
seen for the first time, or after a gap (NaN input), starts unfiltered.
"""
from __future__ import annotations

import math

import numpy as np


class OneEuroFilter:
    """Filters ``(Q, D)`` signals keyed by ``(Q,)`` int64 track keys, one call per frame.

    min_cutoff_hz: cutoff of a still signal, Hz (> 0). beta: cutoff increase per unit of speed
    (Hz per signal unit per second, >= 0). derivative_cutoff_hz: cutoff of the speed estimate, Hz.
    """

    def __init__(self, min_cutoff_hz: float, beta: float, derivative_cutoff_hz: float = 1.0) -> None:
        if not min_cutoff_hz > 0 or not beta >= 0 or not derivative_cutoff_hz > 0:
            raise ValueError(f"One-Euro filter needs min_cutoff_hz > 0, beta >= 0 and derivative_cutoff_hz > 0, got "
                             f"{min_cutoff_hz}, {beta}, {derivative_cutoff_hz}")
        self.min_cutoff_hz, self.beta, self.derivative_cutoff_hz = min_cutoff_hz, beta, derivative_cutoff_hz
        self.reset()

    def reset(self) -> None:
        """Forget every track's state."""
        self._keys = np.zeros(0, np.int64)
        self._value = np.zeros((0, 0))
        self._speed = np.zeros((0, 0))
        self._time_s: float | None = None

    def __call__(self, keys: np.ndarray, values: np.ndarray, time_s: float) -> np.ndarray:
        """``(Q, D)`` float64 filtered ``values`` at ``time_s`` seconds (strictly after the previous call).

        Rows with a NaN value are returned as given and restart their track's filter.
        """
        keys = np.asarray(keys, dtype=np.int64)
        values = np.asarray(values, dtype=np.float64)
        previous, speed = self._previous(keys, values.shape[1])
        if self._time_s is not None and not time_s > self._time_s:
            raise ValueError(f"One-Euro filter times must increase, got {time_s} after {self._time_s}")
        period = math.inf if self._time_s is None else time_s - self._time_s
        continuing = np.all(np.isfinite(previous), axis=1) & np.all(np.isfinite(values), axis=1)
        raw_speed = (values - previous) / period
        speed = np.where(np.isfinite(speed), speed + _alpha(self.derivative_cutoff_hz, period) * (raw_speed - speed),
                         raw_speed)
        cutoff = self.min_cutoff_hz + self.beta * np.linalg.norm(speed, axis=1, keepdims=True)
        filtered = previous + _alpha(cutoff, period) * (values - previous)
        filtered = np.where(continuing[:, None], filtered, values)
        self._keys, self._value = keys.copy(), filtered
        self._speed = np.where(continuing[:, None], speed, np.where(np.isfinite(values), 0.0, np.nan))
        self._time_s = time_s
        return filtered

    def _previous(self, keys: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray]:
        """Last filtered value and speed ``(Q, dims)`` of each key; NaN for keys not seen last call."""
        previous = np.full((len(keys), dims), np.nan)
        speed = np.full((len(keys), dims), np.nan)
        if len(self._keys) and self._value.shape[1] == dims:
            order = np.argsort(self._keys)
            position = np.clip(np.searchsorted(self._keys, keys, sorter=order), 0, len(order) - 1)
            found = self._keys[order[position]] == keys
            previous[found] = self._value[order[position[found]]]
            speed[found] = self._speed[order[position[found]]]
        return previous, speed


def _alpha(cutoff_hz: np.ndarray | float, period_s: float) -> np.ndarray | float:
    """Smoothing factor of a first-order low-pass with ``cutoff_hz`` sampled every ``period_s`` seconds."""
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff_hz))
    return 1.0 / (1.0 + tau / period_s)
