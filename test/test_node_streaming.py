"""The stream's ROS-free parts the node runs: the newest-only inference worker, the CameraInfo rule, health."""
from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from faceanything_ros.stream.camera_info import CameraInfoCache
from faceanything_ros.stream.health import stream_health
from faceanything_ros.stream.worker import FrameWorker


def info(stamp_ns: int, frame_id: str = "cam", width: int = 640) -> SimpleNamespace:
    sec, nanosec = divmod(stamp_ns, 1_000_000_000)
    return SimpleNamespace(header=SimpleNamespace(stamp=SimpleNamespace(sec=sec, nanosec=nanosec), frame_id=frame_id),
                           width=width)


def wait_until(condition, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.001)
    return condition()


def test_worker_handles_only_the_newest_item_and_drops_the_waiting_ones() -> None:
    handled, dropped = [], []
    release = threading.Event()

    def handle(item: int) -> None:
        handled.append(item)
        if item == 0:
            release.wait(5.0)  # the model is busy with frame 0 while 1..9 arrive

    worker = FrameWorker(handle, dropped.append, lambda: 0.0)
    worker.start()
    assert worker.frames_pending == 0
    worker.submit(0)
    deadline = time.monotonic() + 5.0
    while not handled and time.monotonic() < deadline:
        time.sleep(0.001)
    assert worker.frames_pending == 1  # frame 0 in flight
    for item in range(1, 10):
        worker.submit(item)
    assert worker.frames_pending == 2  # frame 0 in flight, frame 9 waiting
    release.set()
    deadline = time.monotonic() + 5.0
    while worker.frames_pending and time.monotonic() < deadline:
        time.sleep(0.001)
    worker.stop()
    assert handled == [0, 9] and worker.frames_pending == 0
    assert dropped == list(range(1, 9))


def test_worker_rate_limit_spaces_items_and_stop_drops_the_waiting_one() -> None:
    starts, dropped = [], []
    worker = FrameWorker(lambda item: starts.append((item, time.monotonic())), dropped.append, lambda: 10.0)
    worker.start()
    worker.submit("a")
    while not starts:
        time.sleep(0.001)
    worker.submit("b")  # waits for its 100 ms slot
    while len(starts) < 2:
        time.sleep(0.001)
    worker.submit("c")
    worker.stop()
    assert [item for item, _ in starts] == ["a", "b"]
    assert starts[1][1] - starts[0][1] >= 0.1 - 1e-3
    assert dropped == ["c"]


def test_worker_stop_is_bounded_while_an_item_is_in_flight_and_releases_after_it() -> None:
    release, handled, released, dropped, started = threading.Event(), [], [], [], []
    worker = FrameWorker(lambda item: (started.append(item), release.wait(5.0), handled.append(item)),
                         dropped.append, lambda: 0.0)
    worker.start()
    worker.submit(1)
    assert wait_until(lambda: started == [1])
    started = time.monotonic()
    assert worker.stop(timeout_s=0.05) is False  # still busy with item 1: returns anyway
    assert time.monotonic() - started < 1.0
    worker.submit(2)  # after stop: never handled, dropped at once
    assert dropped == [2]
    worker.after_exit(lambda: released.append(list(handled)))
    assert released == []  # item 1 still uses what the callback releases
    release.set()
    deadline = time.monotonic() + 5.0
    while not released and time.monotonic() < deadline:
        time.sleep(0.001)
    assert released == [[1]]
    late = []
    worker.after_exit(lambda: late.append(True))  # the thread has ended: runs at once
    assert late == [True]


def test_in_order_worker_blocks_the_submitter_instead_of_dropping() -> None:
    handled, dropped, started = [], [], []
    release = threading.Event()
    worker = FrameWorker(lambda item: (started.append(item), release.wait(5.0), handled.append(item)),
                         dropped.append, name="publish", newest_only=False)
    worker.start()
    worker.submit(0)
    assert wait_until(lambda: started == [0])  # 0 in flight
    worker.submit(1)  # waits in the one slot
    third = threading.Thread(target=worker.submit, args=(2,))
    third.start()
    third.join(0.1)
    assert third.is_alive() and worker.frames_pending == 2  # blocked: 0 in flight, 1 waiting
    release.set()
    third.join(5.0)
    assert not third.is_alive() and wait_until(lambda: worker.frames_pending == 0)
    worker.stop()
    assert handled == [0, 1, 2] and dropped == []


def test_in_order_worker_stop_releases_a_blocked_submitter_and_drops_what_waits() -> None:
    release, handled, dropped, started = threading.Event(), [], [], []
    worker = FrameWorker(lambda item: (started.append(item), release.wait(5.0), handled.append(item)),
                         dropped.append, newest_only=False)
    worker.start()
    worker.submit("a")
    assert wait_until(lambda: started == ["a"])
    worker.submit("b")
    blocked = threading.Thread(target=worker.submit, args=("c",))
    blocked.start()
    blocked.join(0.05)
    assert blocked.is_alive()
    assert worker.stop(timeout_s=0.05) is False  # "a" still in flight
    blocked.join(1.0)
    assert not blocked.is_alive()  # stop let the submitter go on
    release.set()
    assert wait_until(lambda: handled == ["a"])
    assert sorted(dropped) == ["b", "c"]  # the waiting one and the one submitted as it stopped


def test_camera_info_matches_by_stamp_then_latest_earlier_of_the_same_frame() -> None:
    cache = CameraInfoCache(capacity=3)
    first, second, other = info(100), info(200), info(200, frame_id="other")
    for message in (first, second, other):
        cache.add(message)
    assert cache.match(100, "cam") is first  # exact stamp, though 200 is newer
    assert cache.match(150, "cam", wait_s=0.0) is first  # no info of that stamp: the latest one not after it
    assert cache.match(250, "cam", wait_s=0.0) is second
    assert cache.match(50, "cam", wait_s=0.0) is None  # every info of "cam" is later than the image
    assert cache.match(200, "other") is other
    assert cache.match(300, "other", wait_s=0.0) is other
    assert cache.match(100, "unknown") is None  # another camera's info never matches
    for stamp in (300, 400, 500):
        cache.add(info(stamp))
    assert cache.match(100, "cam", wait_s=0.0) is None  # 100 and 200 fell out of the bounded store
    assert cache.match(450, "cam", wait_s=0.0).header.stamp.nanosec == 400
    cache.clear()
    assert cache.match(500, "cam") is None


def test_camera_info_waits_briefly_for_an_in_flight_info_of_a_per_image_stream() -> None:
    cache = CameraInfoCache()
    cache.add(info(100))
    assert cache.match(100, "cam") is not None  # this stream has one info per image
    late = info(200)
    threading.Timer(0.01, cache.add, args=(late,)).start()
    assert cache.match(200, "cam", wait_s=2.0) is late


@pytest.mark.parametrize("kwargs, level", [
    ({}, "OK"),
    ({"consecutive_errors": 3}, "ERROR"),  # repeated failures win over everything
    ({"consecutive_errors": 3, "seconds_since_input": 60.0}, "ERROR"),
    ({"seconds_since_input": 6.0}, "STALE"),
    ({"seconds_since_input": None}, "STALE"),
    ({"rate_hz": 9.0}, "WARN"),  # under the expected 10 Hz
    ({"errors_since_report": 1}, "WARN"),
    ({"rate_hz": 9.0, "expected_rate_hz": 0.0}, "OK"),  # 0: no rate check
])
def test_stream_health_levels(kwargs, level) -> None:
    values = dict(rate_hz=30.0, expected_rate_hz=10.0, seconds_since_input=0.1, stale_after_s=5.0,
                  consecutive_errors=0, error_after_failures=3, errors_since_report=0)
    health = stream_health(**{**values, **kwargs})
    assert health.level == level and health.message
