"""The node's publishers: each output is built and published only when it is switched on and subscribed.

Every output carries the input image's stamp and frame_id. Topics are private (``~/``), so
they follow the node's name and namespace (``/<ns>/faceanything/depth/image`` by default), except
``/tf``. An output nobody subscribes to (``get_subscription_count``) is not built at all: no
point cloud, canonical image or markers for nobody; ``skipped`` counts those frames per output.

Messages are built as ``rosbags`` messages (the ``typestore`` bag-eval writes with) and published
as their CDR bytes, rclpy's path for serialized messages, instead of rclpy message objects, whose
every field goes through a Python setter and a conversion to C (the 256 tracks' messages and
markers above all): every output of a face-mesh frame, 8.3 -> 5.0 ms of CPU at 640x480 and
12.1 -> 8.9 ms at 1280x720, a subscriber in another process (``bench.output_messages``). Subscribers read the same messages: an
output goes out as CDR only when the typestore's definition of its type has the very type hash
(RIHS01) that the installed ROS 2 gives its publisher; any other output (another distribution's
definition, or no type hash reported) is published from rclpy message objects, and the node says
which at configure.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any, Mapping

import numpy as np

from rclpy.lifecycle import LifecycleNode
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosbags.interfaces import Nodetype
from rosbags.typesys.store import Typestore

from faceanything_ros.config import NodeConfig
from faceanything_ros.ros.message_types import typestore
from faceanything_ros.ros.outputs import GLOBAL_TOPICS, OUTPUT_TYPES, enabled_outputs, output_messages
from faceanything_ros.stages import STAGE_TIMES
from faceanything_ros.stream.processing import ProcessedFrame

# Reliable, shallow: a late subscriber (rviz, ros2 bag record) gets every frame the node still
# holds, and a slow one never makes the node buffer more than a few frames' messages.
OUTPUT_QOS = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE)
TF_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)  # tf2's own /tf QoS
JOIN_MIN_BYTES = 64 << 10  # a message's data from this size on is joined into its CDR (cdr_bytes)
ONE_BYTE_TYPES = frozenset({"bool", "byte", "char", "int8", "uint8"})


class OutputPublishers:
    """Lifecycle publishers of every ``outputs.OUTPUT_TYPES`` key whose type is in ``types`` (``tf``
    needs tf2_msgs); they publish only while the node is active.

    types: ROS type name -> rclpy message class, the publishers' types. store: the typestore the
    CDR outputs are built and serialized with (default: ``message_types.typestore()``).
    """

    def __init__(self, node: LifecycleNode, types: Mapping[str, Any], store: Typestore | None = None) -> None:
        self._node = node
        self._types = types
        self._store = typestore() if store is None else store
        self._publishers = {
            key: node.create_lifecycle_publisher(types[kind], GLOBAL_TOPICS.get(key, f"~/{key}"),
                                                 TF_QOS if key in GLOBAL_TOPICS else OUTPUT_QOS)
            for key, kind in OUTPUT_TYPES.items() if kind in types
        }
        self.cdr_outputs = frozenset(key for key in self._publishers if self._same_type_hash(key))
        self.object_outputs = frozenset(self._publishers) - self.cdr_outputs  # published from rclpy objects
        self.skipped: Counter[str] = Counter()  # frames whose output was not built, per output key

    def _same_type_hash(self, key: str) -> bool:
        """True when our publisher of ``key`` reports the type hash of the typestore's definition of its type."""
        publisher, kind = self._publishers[key], OUTPUT_TYPES[key]
        if kind not in self._store.fielddefs:
            return False
        ours = [info for info in self._node.get_publishers_info_by_topic(publisher.topic_name)
                if (info.node_name, info.node_namespace) == (self._node.get_name(), self._node.get_namespace())]
        wanted = self._store.hash_rihs01(kind)
        return bool(ours) and all(str(getattr(info, "topic_type_hash", "")) == wanted for info in ours)

    def publish(self, result: ProcessedFrame, config: NodeConfig) -> None:
        """Build and publish the outputs of ``result`` that are switched on in ``config`` and subscribed
        (in ``OUTPUT_TYPES`` order)."""
        wanted = [key for key in enabled_outputs(config, self._types)
                  if self._publishers[key].get_subscription_count() > 0]
        for key in self._publishers.keys() - set(wanted):
            self.skipped[key] += 1
        with STAGE_TIMES.stage("message_build"):
            messages = {**output_messages(self._store.types, result, config, self.cdr_outputs.intersection(wanted)),
                        **output_messages(self._types, result, config, self.object_outputs.intersection(wanted))}
        with STAGE_TIMES.stage("publish"):
            for key in wanted:
                message = messages[key]
                self._publishers[key].publish(
                    cdr_bytes(self._store, message, OUTPUT_TYPES[key]) if key in self.cdr_outputs else message)

    def destroy(self) -> None:
        """Destroy every publisher."""
        for publisher in self._publishers.values():
            self._node.destroy_lifecycle_publisher(publisher)
        self._publishers.clear()


def cdr_bytes(store: Typestore, message: Any, type_name: str) -> bytes:
    """``message`` (a ``store`` message of ``type_name``) serialized to little-endian CDR, as ``bytes``
    (rclpy's ``publish`` takes nothing else).

    ``serialize_cdr`` writes into a zeroed buffer, which ``bytes`` then copies: two copies of an
    image's pixels and a memset. A message whose ``data`` (``uint8[]``) is at least ``JOIN_MIN_BYTES``
    and followed only by one-byte fields (Image, CompressedImage, PointCloud2: nothing after it
    depends on its length) is serialized with empty ``data`` instead, and its data joined in at
    the sequence's place: one copy.
    """
    data = getattr(message, "data", None)
    after = _one_byte_fields_after_data(store, type_name)
    if (after is None or not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 1
            or not data.flags.c_contiguous or data.nbytes < JOIN_MIN_BYTES):
        return bytes(store.serialize_cdr(message, type_name, little_endian=True))
    empty = store.serialize_cdr(replace(message, data=data[:0]), type_name, little_endian=True)
    length_at = len(empty) - after - 4  # the uint32 length of the empty sequence, then the fields after it
    return b"".join((empty[:length_at], len(data).to_bytes(4, "little"), data, empty[length_at + 4:]))


def _one_byte_fields_after_data(store: Typestore, type_name: str) -> int | None:
    """How many fields follow ``data`` in ``type_name``, when ``data`` is a ``uint8[]`` sequence and they
    are all one-byte base types (no alignment after the data); else None."""
    fields = dict(store.fielddefs[type_name][1]) if type_name in store.fielddefs else {}
    if fields.get("data") != (Nodetype.SEQUENCE, ((Nodetype.BASE, ("uint8", 0)), 0)):
        return None
    names = list(fields)
    after = names[names.index("data") + 1:]
    if not all(fields[name][0] == Nodetype.BASE and fields[name][1][0] in ONE_BYTE_TYPES for name in after):
        return None
    return len(after)
