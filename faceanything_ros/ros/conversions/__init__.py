"""numpy <-> ROS 2 messages; ROS-free and duck-typed over rclpy and rosbags message classes.

Readers take any object with the message's fields (rclpy messages, rosbags dataclasses).
Builders take ``types``, a mapping from ROS type names (``"sensor_msgs/msg/Image"``) to message
classes (``message_types.typestore().types`` for rosbags, as bag-eval and the node build them;
or a dict of rclpy classes), and pass every field by keyword: rosbags classes have no defaults.
Bad messages raise ``ImageConversionError`` with a stable ``kind`` for counting.
"""
from .diagnostics import diagnostics
from .images import (
    COLOR_ENCODINGS, COMPRESSED_FORMATS, DEPTH_ENCODINGS, ENCODINGS, ImageConversionError, Types, array_to_image,
    camera_info, camera_info_intrinsics, camera_info_intrinsics_or_none, canonical_image, compressed_to_rgb,
    depth_image, depth_image_to_metres, image_to_array, image_to_rgb, make_header, message_with_bytes, rgb_to_compressed,
    rgb_to_image, stamp_to_ns,
)
from .pointcloud import POINT_FIELDS, point_cloud2, point_cloud2_to_arrays
from .tracks import track_array, track_array_to_arrays, track_markers

__all__ = [
    "COLOR_ENCODINGS", "COMPRESSED_FORMATS", "DEPTH_ENCODINGS", "ENCODINGS", "POINT_FIELDS", "ImageConversionError",
    "Types", "array_to_image", "camera_info", "camera_info_intrinsics", "camera_info_intrinsics_or_none",
    "canonical_image", "compressed_to_rgb", "depth_image", "depth_image_to_metres", "diagnostics", "image_to_array",
    "image_to_rgb", "make_header", "message_with_bytes", "point_cloud2", "point_cloud2_to_arrays", "rgb_to_compressed", "rgb_to_image",
    "stamp_to_ns", "track_array", "track_array_to_arrays", "track_markers",
]
