"""Python's cyclic garbage collector kept off a long-running stream's frames, and its pauses measured.

Once set up, a stream's process (the node after configure, ``faceanything reconstruct`` before its
first frame) holds a few hundred thousand long-lived objects (modules, the model and its engine,
mediapipe's graphs, rclpy). A full (generation 2) collection visits every one of them and stops
every Python thread meanwhile: about 130 ms on a quiet 2-core CPU, over a second when other work
shares it, far beyond a frame's budget. It comes rarely (when enough objects have survived the
younger collections), so it shows as a rare frame that late and, in the node, a burst of dropped
frames. ``freeze_long_lived`` collects once and then moves every object alive into the permanent
generation (``gc.freeze``), so later collections visit only what the stream itself made since;
``thaw`` hands them back (a released processor's objects can then be collected) once every freeze
of the process is undone. ``CollectorPauses`` does both for a stream and records every later
collection's pause for ``/diagnostics``.

The number frozen is counted once, at the freeze: ``gc.get_freeze_count`` walks the whole permanent
generation, about 20 ms with the GIL held for the node's 250,000 objects, which every Python thread
would wait for on each diagnostics report.
"""
from __future__ import annotations

import gc
import time
from typing import Any

GENERATIONS = (0, 1, 2)
_active_freezes = 0  # freeze_long_lived calls not yet undone by thaw (one process may run several streams)
_frozen_objects = 0  # objects in the permanent generation when last frozen; 0 once thawed


def freeze_long_lived() -> int:
    """Collect, then exempt every object alive now from later collections; the number exempted (all
    frozen so far in this process). Undo with ``thaw``."""
    global _active_freezes, _frozen_objects
    gc.collect()
    gc.freeze()
    _active_freezes += 1
    _frozen_objects = gc.get_freeze_count()
    return _frozen_objects


def frozen_objects() -> int:
    """Objects exempted by the freezes in force, as counted at the last ``freeze_long_lived`` (0 when
    none is): cheap, unlike ``gc.get_freeze_count``. Frozen objects freed since are still counted."""
    return _frozen_objects


def thaw() -> None:
    """Undo one ``freeze_long_lived``: the frozen objects are handed back to the collector when every
    freeze of the process has been undone (another stream's stay exempt until then)."""
    global _active_freezes, _frozen_objects
    _active_freezes = max(_active_freezes - 1, 0)
    if _active_freezes == 0:
        gc.unfreeze()
        _frozen_objects = 0


class CollectorPauses:
    """A stream's frozen objects and the garbage collector's pauses after them: ``install`` freezes
    (``freeze_long_lived``) and starts recording (``gc.callbacks``) calls and longest pause per
    generation; ``remove`` stops and thaws that freeze.

    A collection runs in whichever thread triggered it, holding the GIL, so collections never overlap
    and the callbacks need no lock.
    """

    def __init__(self) -> None:
        self._started_s: float | None = None
        self._calls = dict.fromkeys(GENERATIONS, 0)
        self._max_ms = dict.fromkeys(GENERATIONS, 0.0)

    def install(self) -> None:
        """Freeze the objects alive now, then record every later collection (idempotent; the freeze's
        own collection is not recorded)."""
        if self._callback not in gc.callbacks:
            freeze_long_lived()
            gc.callbacks.append(self._callback)

    def remove(self) -> None:
        """Stop recording and undo this object's freeze (idempotent); what was recorded is kept."""
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)
            thaw()

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started_s = time.perf_counter()
        elif self._started_s is not None:
            generation = info["generation"]
            self._calls[generation] += 1
            self._max_ms[generation] = max(self._max_ms[generation], (time.perf_counter() - self._started_s) * 1e3)
            self._started_s = None

    def summary(self) -> dict[str, Any]:
        """``{frozen_objects, gen<N>: {calls, max_pause_ms}}`` of the collections recorded so far."""
        return {"frozen_objects": frozen_objects(),
                **{f"gen{g}": {"calls": self._calls[g], "max_pause_ms": round(self._max_ms[g], 3)} for g in GENERATIONS}}
