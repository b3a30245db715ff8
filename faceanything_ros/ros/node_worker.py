"""The node's single inference thread: it processes only the newest frame, never a backlog.

ROS-free (it only sits beside the node): the image callback ``submit``s each converted frame;
a frame still waiting when a newer one arrives is dropped (``on_drop``), so memory is one
waiting frame plus the one being processed, and latency cannot grow with a queue.
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Generic, TypeVar

Item = TypeVar("Item")


class NewestOnlyWorker(Generic[Item]):
    """One thread calling ``handle(item)`` for the newest submitted item, at most ``max_rate_hz()`` per second.

    handle: processes one item (runs on the worker thread; its exceptions are its own business:
        the worker stops on any that escape, so ``handle`` must catch what it can recover from).
    on_drop: called with each item replaced before it was handled (or still waiting at ``stop``).
    max_rate_hz: read before each item; 0 = no limit. While the worker waits for its next slot,
        newer items keep replacing the waiting one, so throttling drops frames instead of queueing.
    """

    def __init__(self, handle: Callable[[Item], None], on_drop: Callable[[Item], None],
                 max_rate_hz: Callable[[], float], name: str = "faceanything_inference") -> None:
        self._handle = handle
        self._on_drop = on_drop
        self._max_rate_hz = max_rate_hz
        self._condition = threading.Condition()
        self._pending: Item | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Start the thread (once)."""
        self._thread.start()

    def submit(self, item: Item) -> None:
        """Make ``item`` the next one to handle, dropping the one waiting (if any)."""
        with self._condition:
            dropped, self._pending = self._pending, item
            self._condition.notify()
        if dropped is not None:
            self._on_drop(dropped)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Finish the item being handled, drop the waiting one and join the thread.

        Raises ``TimeoutError`` when the thread is still busy after ``timeout_s`` seconds.
        """
        with self._condition:
            self._stopping = True
            dropped, self._pending = self._pending, None
            self._condition.notify()
        if dropped is not None:
            self._on_drop(dropped)
        if self._thread.is_alive():
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                raise TimeoutError(f"{self._thread.name} did not finish within {timeout_s} s")

    def _run(self) -> None:
        next_start = 0.0
        while True:
            with self._condition:
                while not self._stopping and (self._pending is None or time.monotonic() < next_start):
                    wait_s = None if self._pending is None else next_start - time.monotonic()
                    self._condition.wait(wait_s)
                if self._stopping:
                    return
                item, self._pending = self._pending, None
            started = time.monotonic()
            rate_hz = self._max_rate_hz()
            next_start = started + (1.0 / rate_hz if rate_hz > 0 else 0.0)
            self._handle(item)
