"""Recent ``sensor_msgs/CameraInfo`` messages, matched to images by stamp and frame_id.

ROS-free (duck-typed messages with ``header.stamp`` and ``header.frame_id``). A camera driver
publishes one CameraInfo per image with the image's header; the two arrive in either order, so
the node keeps the last ``capacity`` infos and, when it processes an image, takes the one with
the same frame_id and stamp, else the latest one with the same frame_id (a driver publishing
its calibration at its own rate), else none (the node then estimates K from the predicted rays).
When the previous image of that frame_id had an info of its own stamp (a driver publishing one
per image), the lookup waits up to ``wait_s`` for this image's info, which may still be in flight.
"""
from __future__ import annotations

import threading
from typing import Any

from faceanything_ros.ros.bounded import put_bounded
from faceanything_ros.ros.conversions import stamp_to_ns

CAMERA_INFO_CAPACITY = 64  # stamps kept: ~2 s of a 30 Hz camera
CAMERA_INFO_WAIT_S = 0.05  # how long an image waits for its in-flight info (per-image info streams only)


class CameraInfoCache:
    """Thread-safe store of the latest ``capacity`` CameraInfo messages (bounded memory)."""

    def __init__(self, capacity: int = CAMERA_INFO_CAPACITY) -> None:
        self._capacity = capacity
        self._by_stamp: dict[tuple[str, int], Any] = {}
        self._latest: dict[str, Any] = {}
        self._per_image: dict[str, bool] = {}  # frame_id -> its last lookup found an exact stamp
        self._lock = threading.Condition()

    def add(self, msg: Any) -> None:
        """Keep ``msg`` (the oldest kept message is forgotten beyond ``capacity``)."""
        frame_id = str(msg.header.frame_id)
        with self._lock:
            put_bounded(self._by_stamp, (frame_id, stamp_to_ns(msg.header.stamp)), msg, self._capacity)
            put_bounded(self._latest, frame_id, msg, self._capacity)
            self._lock.notify_all()

    def match(self, stamp_ns: int, frame_id: str, wait_s: float = CAMERA_INFO_WAIT_S) -> Any | None:
        """The info for an image stamped ``stamp_ns`` (integer ns) in ``frame_id``, or None (see module doc)."""
        key = (frame_id, int(stamp_ns))
        with self._lock:
            if self._per_image.get(frame_id):
                self._lock.wait_for(lambda: key in self._by_stamp, timeout=wait_s)
            exact = self._by_stamp.get(key)
            put_bounded(self._per_image, frame_id, exact is not None, self._capacity)
            return exact if exact is not None else self._latest.get(frame_id)

    def clear(self) -> None:
        """Forget every message."""
        with self._lock:
            self._by_stamp.clear()
            self._latest.clear()
            self._per_image.clear()
