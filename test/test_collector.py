"""The garbage-collector helpers of long-running streams (stream.collector)."""
from __future__ import annotations

import gc
import weakref

from faceanything_ros.stream.collector import CollectorPauses, freeze_long_lived, frozen_objects, thaw


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_frozen_cycles_survive_collections_until_every_freeze_is_thawed():
    cycle = Cycle()
    alive = weakref.ref(cycle)
    try:
        assert freeze_long_lived() == gc.get_freeze_count() > 1000  # this process's modules and test objects
        freeze_long_lived()  # a second stream of the same process
        del cycle
        gc.collect()
        assert alive() is not None  # frozen: the full collection did not visit it
        later = weakref.ref(Cycle())
        gc.collect()
        assert later() is None  # garbage made after the freeze is still collected
        thaw()
        gc.collect()
        assert alive() is not None and gc.get_freeze_count() > 0  # the other stream's freeze still holds
    finally:
        thaw()
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert alive() is None


def test_collector_pauses_count_each_collection_per_generation():
    pauses = CollectorPauses()
    pauses.install()
    pauses.install()  # idempotent: one callback
    try:
        gc.collect(0)
        gc.collect(2)
        gc.collect(2)
        assert pauses.summary()["frozen_objects"] == gc.get_freeze_count() > 1000  # nothing frozen freed yet
    finally:
        pauses.remove()
    gc.collect(2)  # not recorded
    summary = pauses.summary()
    assert summary["gen0"]["calls"] >= 1 and summary["gen2"]["calls"] == 2  # not the one after remove()
    assert summary["gen2"]["max_pause_ms"] > 0 and summary["frozen_objects"] == 0  # thawed


def test_frozen_objects_is_the_count_at_the_freeze_without_walking_the_permanent_generation():
    held = [[] for _ in range(5000)]  # tracked by the collector, freed by reference counting
    try:
        counted = freeze_long_lived()
        del held  # frozen objects freed by reference counting leave the permanent generation
        assert gc.get_freeze_count() <= counted - 5000
        assert frozen_objects() == counted  # the count kept at the freeze, not a walk over the generation
    finally:
        thaw()
    assert frozen_objects() == 0 == gc.get_freeze_count()
