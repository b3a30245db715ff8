"""Any video (or image folder) -> a rosbag2 of image (+ camera_info) messages, stamped from its frame rate."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from faceanything_ros.geometry.camera import intrinsics_from_fov
from faceanything_ros.io.frames import open_frames

from .bag import BagWriter
from .conversions import COLOR_ENCODINGS, COMPRESSED_FORMATS, camera_info, make_header, rgb_to_compressed, rgb_to_image
from .message_types import typestore

VIDEO_BAG_ENCODINGS = (*COLOR_ENCODINGS, *COMPRESSED_FORMATS)  # raw encodings, or jpeg/png CompressedImage
DEFAULT_START_NS = 1_000_000_000  # first stamp, 1 s: ROS reads a zero stamp as "unset"


def video_to_bag(video: str | Path, bag: str | Path, topic: str = "/image", encoding: str = "rgb8",
                 camera_info_topic: str | None = None, intrinsics: np.ndarray | None = None,
                 hfov_deg: float = 60.0, frame_id: str = "camera_optical_frame", storage: str = "sqlite3",
                 start_ns: int = DEFAULT_START_NS, max_frames: int | None = None, stride: int = 1) -> int:
    """Write every (``stride``-th, at most ``max_frames``) frame of ``video`` to a new bag; returns the count.

    Frame ``i`` is stamped ``start_ns + round(timestamp_s * 1e9)`` (``timestamp_s = i / fps``) in
    both its header and the bag. ``encoding``: a ``COLOR_ENCODINGS`` raw ``sensor_msgs/Image``, or
    ``jpeg``/``png`` for ``sensor_msgs/CompressedImage``. With ``camera_info_topic`` each frame gets a
    ``CameraInfo`` of ``intrinsics`` ((3, 3) pixels), or of a ``hfov_deg`` horizontal field of view
    when None. ``storage``: ``sqlite3`` or ``mcap``.
    """
    if encoding not in VIDEO_BAG_ENCODINGS:
        raise ValueError(f"encoding {encoding!r} is not one of {list(VIDEO_BAG_ENCODINGS)}")
    types = typestore().types
    image_type = "sensor_msgs/msg/CompressedImage" if encoding in COMPRESSED_FORMATS else "sensor_msgs/msg/Image"
    count = 0
    with open_frames(video, max_frames=max_frames, stride=stride) as frames, BagWriter(bag, storage) as writer:
        for frame in frames:
            stamp_ns = start_ns + round(frame.timestamp_s * 1e9)
            header = make_header(types, stamp_ns, frame_id)
            if camera_info_topic:  # before its image, as readers use the latest camera_info
                height, width = frame.rgb.shape[:2]
                camera = intrinsics if intrinsics is not None else intrinsics_from_fov(width, height, hfov_deg)
                writer.write(camera_info_topic, "sensor_msgs/msg/CameraInfo", stamp_ns,
                             camera_info(types, header, camera, width, height))
            if encoding in COMPRESSED_FORMATS:
                message = rgb_to_compressed(types, header, frame.rgb, encoding)
            else:
                message = rgb_to_image(types, header, frame.rgb, encoding)
            writer.write(topic, image_type, stamp_ns, message)
            count += 1
    return count
