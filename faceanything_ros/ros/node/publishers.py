"""The node's publishers: each output is built and published only when it is switched on and subscribed.

Every output carries the input image's stamp and frame_id. Topics are private (``~/``), so
they follow the node's name and namespace (``/<ns>/faceanything/depth/image`` by default), except
``/tf``. An output nobody subscribes to (``get_subscription_count``) is not built at all: no
point cloud, canonical image or markers for nobody; ``skipped`` counts those frames per output.

Messages are built as ``rosbags`` messages (the ``typestore`` bag-eval writes with) and published
as their CDR bytes, rclpy's path for serialized messages, instead of rclpy message objects, whose
every field goes through a checked setter and a conversion to C (the 256 tracks' messages and
markers above all): every output of a face-mesh frame, 7.5 -> 4.2 ms of CPU at 640x480 and
10.9 -> 7.3 ms at 1280x720 (``bench.output_messages``). Subscribers read the same messages.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Mapping

from rclpy.lifecycle import LifecycleNode
from rclpy.qos import QoSProfile, ReliabilityPolicy

from faceanything_ros.config import NodeConfig
from faceanything_ros.ros.message_types import typestore
from faceanything_ros.ros.outputs import GLOBAL_TOPICS, OUTPUT_TYPES, enabled_outputs, output_messages
from faceanything_ros.stages import STAGE_TIMES
from faceanything_ros.stream.processing import ProcessedFrame

# Reliable, shallow: a late subscriber (rviz, ros2 bag record) gets every frame the node still
# holds, and a slow one never makes the node buffer more than a few frames' messages.
OUTPUT_QOS = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE)
TF_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)  # tf2's own /tf QoS


class OutputPublishers:
    """Lifecycle publishers of every ``outputs.OUTPUT_TYPES`` key whose type is in ``types`` (``tf``
    needs tf2_msgs); they publish only while the node is active.

    types: ROS type name -> rclpy message class, the publishers' types.
    """

    def __init__(self, node: LifecycleNode, types: Mapping[str, Any]) -> None:
        self._node = node
        self._types = types
        self._store = typestore()
        self._publishers = {
            key: node.create_lifecycle_publisher(types[kind], GLOBAL_TOPICS.get(key, f"~/{key}"),
                                                 TF_QOS if key in GLOBAL_TOPICS else OUTPUT_QOS)
            for key, kind in OUTPUT_TYPES.items() if kind in types
        }
        self.skipped: Counter[str] = Counter()  # frames whose output was not built, per output key

    def publish(self, result: ProcessedFrame, config: NodeConfig) -> None:
        """Build and publish the outputs of ``result`` that are switched on in ``config`` and subscribed."""
        wanted = [key for key in enabled_outputs(config, self._types)
                  if self._publishers[key].get_subscription_count() > 0]
        for key in self._publishers.keys() - set(wanted):
            self.skipped[key] += 1
        with STAGE_TIMES.stage("message_build"):
            messages = output_messages(self._store.types, result, config, wanted)
        with STAGE_TIMES.stage("publish"):
            for key, message in messages.items():
                self._publishers[key].publish(bytes(self._store.serialize_cdr(message, OUTPUT_TYPES[key])))

    def destroy(self) -> None:
        """Destroy every publisher."""
        for publisher in self._publishers.values():
            self._node.destroy_lifecycle_publisher(publisher)
        self._publishers.clear()
