"""The node's ROS-free streaming parts: the newest-only inference worker and the CameraInfo cache."""
from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from faceanything_ros.ros.node_camera_info import CameraInfoCache
from faceanything_ros.ros.node_worker import NewestOnlyWorker


def info(stamp_ns: int, frame_id: str = "cam", width: int = 640) -> SimpleNamespace:
    sec, nanosec = divmod(stamp_ns, 1_000_000_000)
    return SimpleNamespace(header=SimpleNamespace(stamp=SimpleNamespace(sec=sec, nanosec=nanosec), frame_id=frame_id),
                           width=width)


def test_worker_handles_only_the_newest_item_and_drops_the_waiting_ones() -> None:
    handled, dropped = [], []
    release = threading.Event()

    def handle(item: int) -> None:
        handled.append(item)
        if item == 0:
            release.wait(5.0)  # the model is busy with frame 0 while 1..9 arrive

    worker = NewestOnlyWorker(handle, dropped.append, lambda: 0.0)
    worker.start()
    worker.submit(0)
    deadline = time.monotonic() + 5.0
    while not handled and time.monotonic() < deadline:
        time.sleep(0.001)
    for item in range(1, 10):
        worker.submit(item)
    release.set()
    deadline = time.monotonic() + 5.0
    while handled[-1] != 9 and time.monotonic() < deadline:
        time.sleep(0.001)
    worker.stop()
    assert handled == [0, 9]
    assert dropped == list(range(1, 9))


def test_worker_rate_limit_spaces_items_and_stop_drops_the_waiting_one() -> None:
    starts, dropped = [], []
    worker = NewestOnlyWorker(lambda item: starts.append((item, time.monotonic())), dropped.append, lambda: 10.0)
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


def test_worker_stop_times_out_when_the_handler_hangs() -> None:
    release = threading.Event()
    worker = NewestOnlyWorker(lambda item: release.wait(5.0), lambda item: None, lambda: 0.0)
    worker.start()
    worker.submit(1)
    time.sleep(0.05)
    with pytest.raises(TimeoutError, match="did not finish"):
        worker.stop(timeout_s=0.05)
    release.set()
    worker.stop()


def test_camera_info_matches_by_stamp_then_latest_of_the_same_frame() -> None:
    cache = CameraInfoCache(capacity=3)
    first, second, other = info(100), info(200), info(200, frame_id="other")
    for message in (first, second, other):
        cache.add(message)
    assert cache.match(100, "cam") is first  # exact stamp, though 200 is newer
    assert cache.match(150, "cam", wait_s=0.0) is second  # no info of that stamp: latest of "cam"
    assert cache.match(200, "other") is other
    assert cache.match(100, "unknown") is None
    for stamp in (300, 400, 500):
        cache.add(info(stamp))
    assert cache.match(100, "cam", wait_s=0.0).header.stamp.nanosec == 500  # 100 fell out of the bounded store
    cache.clear()
    assert cache.match(500, "cam") is None


def test_camera_info_waits_briefly_for_an_in_flight_info_of_a_per_image_stream() -> None:
    cache = CameraInfoCache()
    cache.add(info(100))
    assert cache.match(100, "cam") is not None  # this stream has one info per image
    late = info(200)
    threading.Timer(0.01, cache.add, args=(late,)).start()
    assert cache.match(200, "cam", wait_s=2.0) is late
