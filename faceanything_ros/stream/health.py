"""The health of a stream as a diagnostic level (``OK``, ``WARN``, ``ERROR``, ``STALE``) and a message.

ROS-free; the node publishes it on ``/diagnostics`` (``diagnostic_msgs/DiagnosticStatus`` levels),
bag-eval writes it into its output bag. The most severe condition wins: ERROR when the last
``error_after_failures`` frames all failed, STALE when no image arrived for ``stale_after_s``
seconds, WARN when the processed rate is under ``expected_rate_hz`` or a frame was bad since the
last report, else OK.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StreamHealth:
    """One judgement: ``level`` (a diagnostic level name) and ``message`` (one line)."""

    level: str
    message: str


def stream_health(rate_hz: float, expected_rate_hz: float, seconds_since_input: float | None,
                  stale_after_s: float, consecutive_errors: int, error_after_failures: int,
                  errors_since_report: int) -> StreamHealth:
    """Judge a stream (module docstring).

    rate_hz: frames processed per second since the last report. expected_rate_hz: 0 = no rate
    check. seconds_since_input: since the latest image, None when none arrived yet (STALE).
    consecutive_errors: failed frames since the last good
    one. errors_since_report: bad frames since the last report.
    """
    if consecutive_errors >= error_after_failures:
        return StreamHealth("ERROR", f"the last {consecutive_errors} frames failed")
    if seconds_since_input is None or seconds_since_input > stale_after_s:
        waited = "no image yet" if seconds_since_input is None else f"no image for {seconds_since_input:.1f} s"
        return StreamHealth("STALE", waited)
    if expected_rate_hz > 0 and rate_hz < expected_rate_hz:
        return StreamHealth("WARN", f"{rate_hz:.1f} frames/s processed, under the expected {expected_rate_hz:g}")
    if errors_since_report:
        return StreamHealth("WARN", f"{errors_since_report} bad frames since the last report")
    return StreamHealth("OK", f"{rate_hz:.1f} frames/s processed")
