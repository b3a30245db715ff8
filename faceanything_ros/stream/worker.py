"""The node's stage threads: inference handles only the newest frame; publishing handles every result, in order.

ROS-free. The image callback ``submit``s each converted frame to the inference worker
(``newest_only``): a frame still waiting when a newer one arrives is dropped (``on_drop``), so
memory is one waiting frame plus the one being processed, and latency cannot grow with a queue.
The inference thread ``submit``s each result to the publishing worker (not ``newest_only``): a
result waits while the one before it is still waiting (one slot, never a queue), so results are
handled in order, none dropped before ``stop``, while the next frame is already being processed
(the two stages run on two cores). ``stop`` returns in bounded time even while an item is in
flight (``request_stop`` first lets several workers share one wait); what that item still uses
is released by ``after_exit`` once it is done.
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Generic, TypeVar

Item = TypeVar("Item")
STOP_WAIT_S = 1.0  # how long ``stop`` waits for the item in flight before it returns


class FrameWorker(Generic[Item]):
    """One thread calling ``handle(item)`` for each submitted item it takes, at most ``max_rate_hz()`` per second.

    handle: processes one item (runs on the worker thread; its exceptions are its own business:
        the worker stops on any that escape, so ``handle`` must catch what it can recover from).
    on_drop: called with each item that will never be handled: replaced before it was taken
        (``newest_only``), still waiting at ``stop``, or submitted after ``stop`` or after the
        thread ended.
    max_rate_hz: read before each item; 0 or None = no limit. While the worker waits for its next
        slot, newer items replace the waiting one (``newest_only``: throttling drops frames instead
        of queueing them) or wait to be placed.
    newest_only: True = a new item replaces the waiting one (dropped); False = ``submit`` blocks
        while an item is waiting, so nothing is dropped before ``stop`` and order is kept.
    """

    def __init__(self, handle: Callable[[Item], None], on_drop: Callable[[Item], None],
                 max_rate_hz: Callable[[], float] | None = None, name: str = "faceanything_inference",
                 newest_only: bool = True) -> None:
        self._handle = handle
        self._on_drop = on_drop
        self._max_rate_hz = max_rate_hz
        self._newest_only = newest_only
        self._condition = threading.Condition()
        self._pending: Item | None = None
        self._in_flight = False
        self._stopping = False
        self._started = False
        self._exited = False
        self._after_exit: list[Callable[[], None]] = []
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Start the thread (once)."""
        with self._condition:
            self._started = True
        self._thread.start()

    def submit(self, item: Item) -> None:
        """Make ``item`` the next one to handle: dropping the one waiting (``newest_only``) or waiting
        until it is taken; after ``stop`` the item is dropped at once."""
        with self._condition:
            while not self._newest_only and self._pending is not None and not (self._stopping or self._exited):
                self._condition.wait()
            if self._stopping or self._exited:
                dropped = item
            else:
                dropped, self._pending = self._pending, item
                self._condition.notify_all()
        if dropped is not None:
            self._on_drop(dropped)

    @property
    def frames_pending(self) -> int:
        """Items submitted and not yet handled or dropped: the waiting one and the one in flight (0 to 2)."""
        with self._condition:
            return int(self._pending is not None) + int(self._in_flight)

    def request_stop(self) -> None:
        """Stop taking items: drop the waiting one; the item in flight still finishes (no waiting here)."""
        with self._condition:
            self._stopping = True
            dropped, self._pending = self._pending, None
            self._condition.notify_all()
        if dropped is not None:
            self._on_drop(dropped)

    def stop(self, timeout_s: float = STOP_WAIT_S) -> bool:
        """``request_stop``, then wait up to ``timeout_s`` for the item in flight.

        Returns True when the thread has ended, False when it is still handling its item (it ends
        right after it, without handling another; ``after_exit`` callbacks run then).
        """
        self.request_stop()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def after_exit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the thread has ended: now when it has (or never started), else on the
        thread right after its last item (e.g. release what that item uses)."""
        with self._condition:
            if self._started and not self._exited:
                self._after_exit.append(callback)
                return
        callback()

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            with self._condition:
                self._exited = True
                callbacks, self._after_exit = self._after_exit, []
                self._condition.notify_all()  # a blocked submit drops its item
            for callback in callbacks:
                callback()

    def _loop(self) -> None:
        next_start = 0.0
        while True:
            with self._condition:
                while not self._stopping and (self._pending is None or time.monotonic() < next_start):
                    wait_s = None if self._pending is None else next_start - time.monotonic()
                    self._condition.wait(wait_s)
                if self._stopping:
                    return
                item, self._pending = self._pending, None
                self._in_flight = True
                self._condition.notify_all()  # a blocked submit may place its item now
            started = time.monotonic()
            rate_hz = self._max_rate_hz() if self._max_rate_hz is not None else 0.0
            next_start = started + (1.0 / rate_hz if rate_hz > 0 else 0.0)
            try:
                self._handle(item)
            finally:
                with self._condition:
                    self._in_flight = False
