"""The node's publishers and the messages of one processed frame (``ProcessedFrame`` -> topics).

Every output carries the input image's stamp and frame_id. Topics are private (``~/``), so
they follow the node's name and namespace: ``/<ns>/faceanything/depth`` by default.
"""
from __future__ import annotations

from typing import Any, Mapping

from rclpy.lifecycle import LifecycleNode
from rclpy.qos import QoSProfile, ReliabilityPolicy

from faceanything_ros.ros.conversions import (
    camera_info, canonical_image, depth_image, make_header, point_cloud2, track_array, track_markers,
)
from faceanything_ros.ros.processing import ProcessedFrame

# topic -> ROS type name (a key of the node's message types)
OUTPUT_TOPICS: dict[str, str] = {
    "~/depth": "sensor_msgs/msg/Image",
    "~/canonical": "sensor_msgs/msg/Image",
    "~/points": "sensor_msgs/msg/PointCloud2",
    "~/tracks": "faceanything_ros/msg/CanonicalTrackArray",
    "~/track_markers": "visualization_msgs/msg/MarkerArray",
    "~/camera_info": "sensor_msgs/msg/CameraInfo",
}
# Reliable, shallow: a late subscriber (rviz, ros2 bag record) gets every frame the node still
# holds, and a slow one never makes the node buffer more than a few frames' messages.
OUTPUT_QOS = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE)


class OutputPublishers:
    """Lifecycle publishers of every ``OUTPUT_TOPICS`` topic (they publish only while the node is active).

    types: ROS type name -> message class (rclpy), as the conversions expect.
    """

    def __init__(self, node: LifecycleNode, types: Mapping[str, Any]) -> None:
        self._node = node
        self._types = types
        self._publishers = {
            topic: node.create_lifecycle_publisher(types[type_name], topic, OUTPUT_QOS)
            for topic, type_name in OUTPUT_TOPICS.items()
        }

    def publish(self, result: ProcessedFrame, point_stride: int, track_max_distance: float) -> None:
        """Publish ``result``'s depth (32FC1, metres, NaN = no face), canonical (32FC3), points
        (every ``point_stride``-th pixel row and column), tracks, track markers and the K used
        (given or estimated) as CameraInfo, all with the input's stamp and frame_id."""
        types = self._types
        header = make_header(types, result.stamp_ns, result.frame_id)
        reconstruction = result.reconstruction
        height, width = reconstruction.image_size
        messages = {
            "~/depth": depth_image(types, header, reconstruction.depth),
            "~/canonical": canonical_image(types, header, reconstruction.canonical),
            "~/points": point_cloud2(types, header, reconstruction.cloud, stride=point_stride),
            "~/tracks": track_array(types, header, result.tracks, track_max_distance),
            "~/track_markers": track_markers(types, header, result.tracks),
            "~/camera_info": camera_info(types, header, result.intrinsics, width, height),
        }
        for topic, message in messages.items():
            self._publishers[topic].publish(message)

    def destroy(self) -> None:
        """Destroy every publisher."""
        for publisher in self._publishers.values():
            self._node.destroy_lifecycle_publisher(publisher)
        self._publishers.clear()
