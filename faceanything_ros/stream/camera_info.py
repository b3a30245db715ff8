"""``sensor_msgs/CameraInfo`` messages matched to images: the one rule the node and bag-eval share.

ROS-free (duck-typed messages with ``header.stamp`` and ``header.frame_id``). An image takes the
info with its own frame_id and stamp, else the latest-stamped info of its frame_id stamped no
later than the image (a driver publishing its calibration at its own rate), else none (K is then
estimated). An info of another frame_id never matches: it describes another camera.

The node adds infos as they arrive and keeps the last ``capacity``; a camera driver publishes one
info per image with the image's header and the two arrive in either order, so when the previous
image of a frame_id had an info of its own stamp (a per-image stream), the lookup waits up to
``wait_s`` for this image's info, which may still be in flight. bag-eval adds every info of the
bag first (``capacity=None``) and looks up without waiting.
"""
from __future__ import annotations

import bisect
import threading
from typing import Any

from faceanything_ros.geometry.camera_info import CameraIntrinsics
from faceanything_ros.ros.conversions.images import stamp_to_ns
from faceanything_ros.stream.bounded import put_bounded

CAMERA_INFO_CAPACITY = 64  # stamps kept: ~2 s of a 30 Hz camera
CAMERA_INFO_WAIT_S = 0.05  # how long an image waits for its in-flight info (per-image info streams only)


class CameraInfoCache:
    """Thread-safe store of CameraInfo messages by (frame_id, stamp); ``capacity`` None = unbounded."""

    def __init__(self, capacity: int | None = CAMERA_INFO_CAPACITY) -> None:
        self._capacity = capacity
        self._infos: dict[tuple[str, int], Any] = {}  # insertion order: the oldest is forgotten first
        self._stamps: dict[str, list[int]] = {}  # frame_id -> sorted stamps held
        self._per_image: dict[str, bool] = {}  # frame_id -> its last lookup found an exact stamp
        self._lock = threading.Condition()

    def add(self, msg: Any) -> None:
        """Keep ``msg`` (beyond ``capacity`` the oldest-added message is forgotten)."""
        key = (str(msg.header.frame_id), stamp_to_ns(msg.header.stamp))
        with self._lock:
            if key not in self._infos:
                bisect.insort(self._stamps.setdefault(key[0], []), key[1])
            self._infos[key] = msg
            while self._capacity is not None and len(self._infos) > self._capacity:
                frame_id, stamp = next(iter(self._infos))
                del self._infos[(frame_id, stamp)]
                self._stamps[frame_id].remove(stamp)
            self._lock.notify_all()

    def match(self, stamp_ns: int, frame_id: str, wait_s: float = CAMERA_INFO_WAIT_S) -> Any | None:
        """The info for an image stamped ``stamp_ns`` (integer ns) in ``frame_id``, or None (module doc)."""
        key = (str(frame_id), int(stamp_ns))
        with self._lock:
            if wait_s > 0 and self._per_image.get(key[0]):
                self._lock.wait_for(lambda: key in self._infos, timeout=wait_s)
            exact = self._infos.get(key)
            put_bounded(self._per_image, key[0], exact is not None, CAMERA_INFO_CAPACITY)
            if exact is not None:
                return exact
            stamps = self._stamps.get(key[0], [])
            index = bisect.bisect_right(stamps, key[1]) - 1
            return self._infos[(key[0], stamps[index])] if index >= 0 else None

    def clear(self) -> None:
        """Forget every message."""
        with self._lock:
            self._infos.clear()
            self._stamps.clear()
            self._per_image.clear()


ESTIMATE_NOTES = {
    "rays": "estimated from the faces' rays (no usable camera_info; ~/depth/camera_info carries it with an empty D)",
    "default-fov": "assumed: the default field of view (no usable camera_info and no face yet; ~/depth/camera_info "
                   "carries it with an empty D)",
}


def intrinsics_note(used: CameraIntrinsics | None, source: str) -> str:
    """One line for diagnostics on the K of a frame: the calibration's (``used``, its note says which
    matrix and whether distortion is ignored) or, without one, the reconstruction's ``intrinsics_source``."""
    return f"given: {used.note}" if used is not None else ESTIMATE_NOTES.get(source, f"estimated ({source})")
