"""A camera stream's focal length, estimated from many frames' predicted rays.

One frame's rays fix the focal length only to within the network's ray noise; the focal length
of a camera does not change, so the stream keeps the median of its recent per-frame estimates
(robust to frames with wrong rays) and starts over when the camera changes (another image size
or another camera id, e.g. a ROS frame_id).
"""
from __future__ import annotations

from collections import deque
from typing import Hashable

import numpy as np


class StreamFocal:
    """Median of the last ``history`` per-frame focal lengths (pixels) of one camera."""

    def __init__(self, history: int) -> None:
        if history < 1:
            raise ValueError(f"the focal history must hold at least 1 frame, got {history}")
        self._focals: deque[float] = deque(maxlen=history)
        self._camera: Hashable | None = None

    def observe(self, camera: Hashable, focal: float | None) -> float | None:
        """Record a frame's ``focal`` (pixels > 0, or None when the frame gave none) from ``camera``.

        ``camera`` identifies the camera and image size (e.g. ``(height, width, frame_id)``); a
        different one than before drops the earlier frames first. Returns the running estimate
        (pixels), or None while this camera has given no focal length yet.
        """
        if camera != self._camera:
            self._focals.clear()
            self._camera = camera
        if focal is not None:
            if not (np.isfinite(focal) and focal > 0):
                raise ValueError(f"a frame's focal length must be a positive number of pixels, got {focal}")
            self._focals.append(float(focal))
        return float(np.median(self._focals)) if self._focals else None

    def reset(self) -> None:
        """Forget every frame (e.g. before another video from the same camera type)."""
        self._focals.clear()
        self._camera = None
