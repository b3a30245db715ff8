"""The node's publishers and the messages of one processed frame (``ProcessedFrame`` -> topics).

Every output carries the input image's stamp and frame_id. Topics are private (``~/``), so
they follow the node's name and namespace: ``/<ns>/faceanything/depth`` by default.
"""
from __future__ import annotations

from typing import Any, Mapping

from rclpy.lifecycle import LifecycleNode
from rclpy.qos import QoSProfile, ReliabilityPolicy

from faceanything_ros.config import NodeConfig
from faceanything_ros.ros.outputs import OUTPUT_TYPES, output_messages
from faceanything_ros.ros.processing import ProcessedFrame

# Reliable, shallow: a late subscriber (rviz, ros2 bag record) gets every frame the node still
# holds, and a slow one never makes the node buffer more than a few frames' messages.
OUTPUT_QOS = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE)


class OutputPublishers:
    """Lifecycle publishers of every ``outputs.OUTPUT_TYPES`` key on ``~/<key>`` (they publish only
    while the node is active).

    types: ROS type name -> message class (rclpy), as the conversions expect.
    """

    def __init__(self, node: LifecycleNode, types: Mapping[str, Any]) -> None:
        self._node = node
        self._types = types
        self._publishers = {
            key: node.create_lifecycle_publisher(types[type_name], f"~/{key}", OUTPUT_QOS)
            for key, type_name in OUTPUT_TYPES.items()
        }

    def publish(self, result: ProcessedFrame, config: NodeConfig) -> None:
        """Publish ``outputs.output_messages`` of ``result`` (depth, canonical, points every
        ``config.point_stride``-th pixel, tracks, markers, the K used), with the input's stamp and frame_id."""
        for key, message in output_messages(self._types, result, config).items():
            self._publishers[key].publish(message)

    def destroy(self) -> None:
        """Destroy every publisher."""
        for publisher in self._publishers.values():
            self._node.destroy_lifecycle_publisher(publisher)
        self._publishers.clear()
