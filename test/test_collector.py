"""The garbage-collector helpers of long-running streams (stream.collector)."""
from __future__ import annotations

import gc

from faceanything_ros.stream.collector import CollectorPauses, freeze_long_lived, thaw


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_frozen_objects_are_exempt_until_thawed_and_new_garbage_is_still_collected():
    try:
        frozen = freeze_long_lived()
        assert frozen == gc.get_freeze_count() > 1000  # this process's modules and test objects
        gc.collect()
        assert gc.get_freeze_count() == frozen  # a full collection leaves the frozen objects alone
        for _ in range(50):
            Cycle()
        assert gc.collect() >= 50  # cycles made after the freeze are still collected
    finally:
        thaw()
    assert gc.get_freeze_count() == 0


def test_collector_pauses_count_each_collection_per_generation():
    pauses = CollectorPauses()
    pauses.install()
    pauses.install()  # idempotent: one callback
    try:
        gc.collect(0)
        gc.collect(2)
        gc.collect(2)
    finally:
        pauses.remove()
    gc.collect(2)  # not recorded
    summary = pauses.summary()
    assert summary["gen0"]["calls"] >= 1 and summary["gen2"]["calls"] == 2
    assert summary["gen2"]["max_pause_ms"] > 0 and summary["frozen_objects"] == gc.get_freeze_count()
