"""The node's publishers in a real rclpy graph (this process, Fast DDS): outputs go out as CDR bytes
built with the rosbags typestore where its type hash is the installed ROS 2's, from rclpy message
objects where not, and a subscriber receives the messages rclpy itself would send either way."""
from __future__ import annotations

import threading
import time
from dataclasses import replace

import numpy as np
import pytest

from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from conftest import face_video
from faceanything_ros.config import NodeConfig
from faceanything_ros.io.frames import open_frames
from faceanything_ros.ros.message_types import typestore
from faceanything_ros.ros.outputs import OUTPUT_TYPES, output_messages, output_topic
from faceanything_ros.stream.processing import FrameProcessor
from ros_workspace import ros_domain_id
from test_ros_conversions import RclpyTypes

rclpy = pytest.importorskip("rclpy")
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.lifecycle import LifecycleNode  # noqa: E402
from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402

from faceanything_ros.ros.node.publishers import JOIN_MIN_BYTES, OUTPUT_QOS, OutputPublishers, cdr_bytes  # noqa: E402

NODE_NAME = "faceanything_publishers_test"

# sensor_msgs/Image with one more field before its data: the same name, another definition and wire
# format, another type hash
OTHER_IMAGE = "std_msgs/Header header\nuint32 height\nuint32 width\nstring encoding\nuint8 is_bigendian\n" \
              "uint32 step\nuint32 exposure_us\nuint8[] data\n"


@pytest.fixture(scope="module")
def processed():
    """A face-mesh frame of a shared video, with an rclpy CameraInfo given (its distortion an array.array)."""
    from sensor_msgs.msg import CameraInfo

    with open_frames(face_video("liveportrait_d18_man_frontal_mouth.mp4"), max_frames=1) as source:
        rgb = next(iter(source)).rgb
    height, width = rgb.shape[:2]
    k = np.array([[700.0, 0.0, width / 2 - 3.5], [0.0, 705.0, height / 2 + 2.0], [0.0, 0.0, 1.0]])
    given = CameraInfo(height=height, width=width, distortion_model="plumb_bob", d=[0.1, -0.05, 0.001, 0.0, 0.0],
                       k=k.ravel().tolist(), r=np.eye(3).ravel().tolist(), p=np.c_[k, np.zeros(3)].ravel().tolist())
    with FrameProcessor(NodeConfig(method="mesh", num_tracks=16)) as processor:
        return processor.process(rgb, 1_000, "cam", intrinsics=k, camera_info=given)


@pytest.fixture()
def graph(monkeypatch):
    """An rclpy context on loopback in this test process's domain (``ros_workspace``) with a lifecycle
    node (the publishers') and a listener node, spun in a thread."""
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=ros_domain_id())
    node = LifecycleNode(NODE_NAME, context=context)
    listener = rclpy.create_node("faceanything_publishers_listener", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    executor.add_node(listener)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    yield node, listener
    executor.shutdown()
    rclpy.shutdown(context=context)
    spinner.join(5.0)


def installed_types() -> RclpyTypes:
    """The rclpy classes of every output type installed here (the package's own are there only in a colcon build)."""
    types = RclpyTypes()
    for kind in OUTPUT_TYPES.values():
        try:
            types[kind]
        except (ImportError, AttributeError):
            continue
    return types


def received_outputs(node, listener, publishers: OutputPublishers, result, config: NodeConfig, types) -> dict:
    """Activate ``node``, subscribe to each output, publish ``result`` once; ``{key: message}`` as received."""
    received: dict[str, object] = {}
    keys = sorted(publishers.cdr_outputs | publishers.object_outputs)
    subscriptions = [listener.create_subscription(
        types[OUTPUT_TYPES[key]], output_topic(key, NODE_NAME),
        lambda message, key=key: received.setdefault(key, message), OUTPUT_QOS) for key in keys]
    node.trigger_configure()
    node.trigger_activate()
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline and len(received) < len(keys):
        if all(subscription.get_publisher_count() for subscription in subscriptions):
            publishers.publish(result, config)
        time.sleep(0.1)
    return received


def sent_by_rclpy(types, result, config: NodeConfig, keys) -> dict:
    """What rclpy message objects of the same frame read as after their own serialisation."""
    built = output_messages(types, result, config, keys)
    return {key: deserialize_message(serialize_message(message), type(message)) for key, message in built.items()}


@pytest.mark.parametrize("encoding", ["32FC1", "16UC1"])
def test_every_output_goes_out_as_cdr_and_arrives_as_rclpy_would_send_it(graph, processed, encoding):
    node, listener = graph
    types = installed_types()
    publishers = OutputPublishers(node, types)
    assert publishers.cdr_outputs >= {"depth/image", "depth/camera_info", "points", "canonical",
                                      "canonical/camera_info", "track_markers"}
    assert not publishers.object_outputs  # this ROS 2 (Jazzy) defines every type as the typestore does
    config = NodeConfig(method="mesh", depth_encoding=encoding)
    received = received_outputs(node, listener, publishers, processed, config, types)
    assert received == sent_by_rclpy(types, processed, config, received.keys())
    assert set(received) == publishers.cdr_outputs
    assert list(received["depth/camera_info"].d) == [0.1, -0.05, 0.001, 0.0, 0.0]  # the calibration, as given
    assert received["depth/image"].encoding == encoding and len(received["points"].data) > 1000


def test_a_type_defined_otherwise_than_installed_is_published_from_rclpy_objects(graph, processed):
    node, listener = graph
    other = get_typestore(Stores.EMPTY)
    other.register({**typestore().fielddefs, **get_types_from_msg(OTHER_IMAGE, "sensor_msgs/msg/Image")})
    assert other.hash_rihs01("sensor_msgs/msg/Image") != typestore().hash_rihs01("sensor_msgs/msg/Image")
    types = installed_types()
    publishers = OutputPublishers(node, types, other)
    assert publishers.object_outputs == {"depth/image", "canonical"}  # the two Image outputs
    assert {"depth/camera_info", "points", "track_markers"} <= publishers.cdr_outputs
    config = NodeConfig(method="mesh")
    received = received_outputs(node, listener, publishers, processed, config, types)
    assert set(received) == publishers.cdr_outputs | publishers.object_outputs
    assert received == sent_by_rclpy(types, processed, config, received.keys())


@pytest.mark.parametrize("encoding", ["32FC1", "16UC1"])
def test_cdr_bytes_are_the_typestores_serialization_with_large_data_joined_in(processed, encoding, monkeypatch):
    store = typestore()
    messages = output_messages(store.types, processed, NodeConfig(method="mesh", depth_encoding=encoding),
                               set(OUTPUT_TYPES))
    cloud = messages["points"]
    messages["points, not dense"] = replace(cloud, is_dense=not cloud.is_dense)  # the byte after the data
    compressed = store.types["sensor_msgs/msg/CompressedImage"]
    messages["compressed"] = compressed(header=cloud.header, format="png",
                                        data=np.arange(JOIN_MIN_BYTES + 5, dtype=np.uint64).astype(np.uint8))
    kinds = {**OUTPUT_TYPES, "points, not dense": OUTPUT_TYPES["points"],
             "compressed": "sensor_msgs/msg/CompressedImage"}
    serialized_sizes: list[int] = []  # data bytes of each message serialize_cdr is given
    serialize = store.serialize_cdr
    for key, message in messages.items():
        expected = bytes(serialize(message, kinds[key], little_endian=True))
        serialized_sizes.clear()
        monkeypatch.setattr(store, "serialize_cdr", lambda message, *args, **kwargs: serialized_sizes.append(
            len(getattr(message, "data", ()))) or serialize(message, *args, **kwargs))
        assert cdr_bytes(store, message, kinds[key]) == expected, key
        monkeypatch.undo()
        joined = len(getattr(message, "data", ())) >= JOIN_MIN_BYTES
        # the large data is serialized as an empty sequence, the rest as it is
        assert serialized_sizes == ([0] if joined else [len(getattr(message, "data", ()))]), key
    assert len(messages["depth/image"].data) >= JOIN_MIN_BYTES and len(cloud.data) >= JOIN_MIN_BYTES
