"""Bounded memory for stamp-keyed stores: the node's CameraInfo cache and bag-eval's pending matches."""
from __future__ import annotations

from typing import MutableMapping, TypeVar

Key = TypeVar("Key")
Value = TypeVar("Value")


def put_bounded(items: MutableMapping[Key, Value], key: Key, value: Value, capacity: int) -> int:
    """``items[key] = value``, then forget the oldest-inserted entries beyond ``capacity``; returns how many.

    ``items`` keeps insertion order (``dict``, ``OrderedDict``); re-setting a key keeps its place.
    """
    items[key] = value
    evicted = 0
    while len(items) > capacity:
        del items[next(iter(items))]
        evicted += 1
    return evicted
