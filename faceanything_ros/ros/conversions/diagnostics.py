"""Processing statistics -> ``diagnostic_msgs/DiagnosticArray``."""
from __future__ import annotations

from typing import Any, Mapping

from .images import Types, make_header

LEVELS = ("OK", "WARN", "ERROR", "STALE")


def diagnostics(types: Types, stamp_ns: int, name: str, stats: Mapping[str, Any], level: str = "OK",
                message: str = "", hardware_id: str = "") -> Any:
    """One ``DiagnosticStatus`` named ``name`` whose key/values are ``stats`` (values as ``str``).

    ``level`` is a ``LEVELS`` name, read from the class's constants (rclpy's are bytes, rosbags'
    ints). Nested dicts are flattened to ``"outer.inner"`` keys; floats get 6 significant digits.
    """
    if level not in LEVELS:
        raise ValueError(f"diagnostic level {level!r} is not one of {list(LEVELS)}")
    status_type, key_value = types["diagnostic_msgs/msg/DiagnosticStatus"], types["diagnostic_msgs/msg/KeyValue"]
    values = [key_value(key=key, value=text) for key, text in _flatten(stats)]
    status = status_type(level=getattr(status_type, level), name=name, message=message, hardware_id=hardware_id,
                         values=values)
    return types["diagnostic_msgs/msg/DiagnosticArray"](header=make_header(types, stamp_ns, ""), status=[status])


def _flatten(stats: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """``(key, text)`` pairs of a possibly nested mapping, in insertion order."""
    pairs: list[tuple[str, str]] = []
    for key, value in stats.items():
        if isinstance(value, Mapping):
            pairs.extend(_flatten(value, f"{prefix}{key}."))
        else:
            pairs.append((f"{prefix}{key}", f"{value:.6g}" if isinstance(value, float) else str(value)))
    return pairs
