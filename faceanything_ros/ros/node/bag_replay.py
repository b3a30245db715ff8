"""``bag-eval --through-node``: play a bag to the real node over DDS at its recorded rate; record what it publishes.

What ``ros2 bag play`` + ``ros2 bag record`` would do, without rosbag2: the node runs as its own
process (``python -m faceanything_ros.ros.node``, parameters from a ``NodeConfig`` params file,
topics remapped to the bag's), this process publishes the bag's image (and camera_info)
messages as recorded (serialized CDR, no conversion) and subscribes to every node output. The
output bag holds the published inputs and the received outputs, each at its wall-clock
publish/receive time, as a recorder would. Needs a sourced colcon install of this package
(rclpy and ``faceanything_ros.msg``).

Report: frames_in (images published), frames_out (``tracks`` messages received), errors as the
node's last ``/diagnostics`` says, dropped (the rest: by the node's newest-only worker or before
the node received them, ``not_received_by_node``), end-to-end latency (publish -> tracks
received) percentiles and throughput. Ground-truth accuracy is a direct-mode feature.

Both processes use the package's large-data Fast DDS profile (``config/fastdds_large_data.xml``,
as the launch file gives the node) unless told otherwise: with Fast DDS's 0.5 MiB shared-memory
segment, a best-effort image larger than that goes over UDP in fragments and may be lost.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import rclpy
import yaml
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy

from faceanything_ros.config import NodeConfig, to_dict

from faceanything_ros.ros.bag import BagReader, BagWriter
from faceanything_ros.ros.bag_eval import IMAGE_TYPES, json_safe
from faceanything_ros.ros.conversions import stamp_to_ns
from faceanything_ros.ros.node.message_types import rclpy_message_types
from faceanything_ros.ros.outputs import (
    DEFAULT_NODE_NAME, DIAGNOSTICS_TOPIC, DIAGNOSTICS_TYPE, OUTPUT_TYPES, output_topic,
)
from faceanything_ros.ros.transport import PROFILE_VARIABLES, installed_profile, profile_environment
from faceanything_ros.stream.stats import ProcessingStats

log = logging.getLogger(__name__)

RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
STARTUP_TIMEOUT_S = 180.0  # model load (and an engine build) before the node subscribes
IDLE_S = 5.0  # after the last image, stop once no output arrived for this long
MATCH_SETTLE_S = 1.0  # wait after our side of the DDS matches before the first message


def replay_through_node(in_bag: str | Path, out_bag: str | Path, image_topic: str, config: NodeConfig,
                        camera_info_topic: str | None = None, storage: str | None = None,
                        node_name: str = DEFAULT_NODE_NAME, startup_timeout_s: float = STARTUP_TIMEOUT_S,
                        idle_s: float = IDLE_S, fastdds_profile: str | None = None) -> dict[str, Any]:
    """Run the node on ``image_topic`` of ``in_bag`` over DDS, write ``out_bag``; returns the report dict.

    ``fastdds_profile``: the Fast DDS profile of both processes (None: the package's large-data
    profile; "": Fast DDS's defaults). Fast DDS reads it once per process, at its first participant:
    a later call in the same process keeps the first call's profile on this side.

    Raises ``BagError``/``FileNotFoundError`` for a bad bag, topic or profile, ``RuntimeError`` (with
    the node's log tail) when the node exits or does not subscribe within ``startup_timeout_s``.
    """
    with BagReader(in_bag) as reader:
        compressed = reader.check_topic(image_topic, IMAGE_TYPES) == IMAGE_TYPES[1]
        if camera_info_topic:
            reader.check_topic(camera_info_topic, (OUTPUT_TYPES["depth/camera_info"],))
        config = dataclasses.replace(config, input="compressed" if compressed else "raw")
        inputs = {topic: reader.topics[topic] for topic in (image_topic, camera_info_topic) if topic}
        profile = installed_profile() if fastdds_profile is None else fastdds_profile
        if profile and not Path(profile).is_file():
            raise FileNotFoundError(f"Fast DDS profile {profile} not found")
        with _fastdds_profile(profile), \
                tempfile.TemporaryDirectory(prefix="faceanything_replay_") as folder, \
                _NodeProcess(Path(folder), config, node_name, image_topic, camera_info_topic) as node, \
                _Recorder(node_name, inputs) as recorder:
            recorder.wait_for_node(node, startup_timeout_s)
            recorder.play(reader, image_topic)
            recorder.wait_idle(idle_s)
        with BagWriter(out_bag, storage or reader.storage) as writer:
            for topic, msgtype, timestamp, rawdata in sorted(recorder.recorded, key=lambda item: item[2]):
                writer.write_raw(topic, msgtype, timestamp, rawdata)
            counts = dict(writer.counts)
    diagnostics = recorder.last_diagnostics()
    summary = recorder.stats.summary()
    summary.update({key: diagnostics[key] for key in ("errors", "errors_by_kind") if key in diagnostics})
    # every image sent without an output and not counted bad was dropped: by the node (newest-only
    # worker) or before it (its subscription's history depth while its executor was busy)
    summary["dropped"] = summary["frames_in"] - summary["frames_out"] - summary["errors"]
    summary["not_received_by_node"] = summary["frames_in"] - diagnostics.get("frames_in", 0)
    return json_safe({
        "input_bag": str(in_bag), "output_bag": str(out_bag), "mode": "through_node", "image_topic": image_topic,
        "camera_info_topic": camera_info_topic, "model": config.model, "engine": config.engine,
        "device": config.device, "fastdds_profile": profile, **summary, "output_messages": counts,
        "node_diagnostics": diagnostics,
    })


@contextlib.contextmanager
def _fastdds_profile(profile: str) -> Iterator[None]:
    """``profile`` as the Fast DDS profile of this process and of those it starts ("" = none), then the
    environment as it was."""
    before = {name: os.environ.pop(name) for name in PROFILE_VARIABLES if name in os.environ}
    os.environ.update(profile_environment({}, profile))
    try:
        yield
    finally:
        for name in PROFILE_VARIABLES:
            os.environ.pop(name, None)
        os.environ.update(before)


class _NodeProcess:
    """The node in its own process, parameters from a params file, inputs remapped to the bag's topics."""

    def __init__(self, folder: Path, config: NodeConfig, node_name: str, image_topic: str,
                 camera_info_topic: str | None) -> None:
        params = folder / "params.yaml"
        params.write_text(yaml.safe_dump({node_name: {"ros__parameters": to_dict(config)}}))
        image_name = "image/compressed" if config.input == "compressed" else "image"
        command = [sys.executable, "-m", "faceanything_ros.ros.node", "--ros-args", "-r", f"__node:={node_name}",
                   "--params-file", str(params), "-r", f"{image_name}:={image_topic}"]
        if camera_info_topic:
            command += ["-r", f"camera_info:={camera_info_topic}"]
        self.log_path = folder / "node.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT)

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the node's output."""
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-chars:]

    def __enter__(self) -> "_NodeProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


class _Recorder:
    """A replay node: publishers of the bag's input topics, raw subscriptions of every node output."""

    def __init__(self, node_name: str, inputs: dict[str, str]) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("faceanything_bag_replay", context=self.context)
        classes = rclpy_message_types()
        self.publishers = {topic: self.node.create_publisher(classes[kind], topic, RELIABLE)
                           for topic, kind in inputs.items()}
        self.outputs = {output_topic(key, node_name): kind for key, kind in OUTPUT_TYPES.items() if kind in classes}
        self.outputs[DIAGNOSTICS_TOPIC] = DIAGNOSTICS_TYPE
        self.subscriptions = [
            self.node.create_subscription(classes[kind], topic, self._keeper(topic, kind), RELIABLE, raw=True)
            for topic, kind in self.outputs.items()]
        self.tracks_topic = output_topic("tracks", node_name)
        self.recorded: list[tuple[str, str, int, bytes]] = []
        self.stats = ProcessingStats()
        self._diagnostics_received = 0
        self._sent: dict[int, float] = {}
        self._last_output = time.monotonic()
        self._lock = threading.Lock()
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._spinner = threading.Thread(target=self.executor.spin, daemon=True)
        self._spinner.start()

    def _keeper(self, topic: str, kind: str):
        def keep(rawdata: bytes) -> None:
            with self._lock:
                self.recorded.append((topic, kind, time.time_ns(), rawdata))
                if topic == DIAGNOSTICS_TOPIC:
                    self._diagnostics_received += 1
                else:  # diagnostics arrive every second even when idle
                    self._last_output = time.monotonic()
                if topic == self.tracks_topic:
                    stamp = stamp_to_ns(BagReader.deserialize(rawdata, kind).header.stamp)
                    if stamp in self._sent:
                        self.stats.record_output(time.monotonic() - self._sent.pop(stamp))
        return keep

    def wait_for_node(self, node: _NodeProcess, timeout_s: float) -> None:
        """Block until our input publishers match the node's subscriptions and our output subscriptions
        match its publishers, then ``MATCH_SETTLE_S`` more: DDS completes the node's side of each match
        on its own, and a best-effort input sent before that is lost (what ``ros2 bag play --delay`` is for)."""
        deadline = time.monotonic() + timeout_s
        while not (all(p.get_subscription_count() for p in self.publishers.values())
                   and all(s.get_publisher_count() for s in self.subscriptions)):
            if node.process.poll() is not None:
                raise RuntimeError(f"the node exited with status {node.process.returncode}:\n{node.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the node did not connect within {timeout_s:.0f} s:\n{node.log_tail()}")
            time.sleep(0.1)
        time.sleep(MATCH_SETTLE_S)
        log.info("the node is connected")

    def play(self, reader: BagReader, image_topic: str) -> None:
        """Publish the inputs in bag order, spaced as recorded."""
        log.info("playing %s to the node", list(self.publishers))
        start_wall, start_bag = time.monotonic(), None
        for connection, timestamp, rawdata in reader.messages(list(self.publishers)):
            start_bag = timestamp if start_bag is None else start_bag
            time.sleep(max(0.0, start_wall + (timestamp - start_bag) / 1e9 - time.monotonic()))
            if connection.topic == image_topic:
                try:
                    stamp = stamp_to_ns(BagReader.deserialize(rawdata, connection.msgtype).header.stamp)
                except Exception:  # noqa: BLE001 - a corrupt image is still sent: the node counts it
                    stamp = None
                with self._lock:
                    self.stats.record_input()
                    if stamp is not None:
                        self._sent[stamp] = time.monotonic()
            data = bytes(rawdata)
            with self._lock:
                self.recorded.append((connection.topic, connection.msgtype, time.time_ns(), data))
            self.publishers[connection.topic].publish(data)
        with self._lock:
            self._last_output = time.monotonic()  # the idle time counts from the last image sent

    def wait_idle(self, idle_s: float) -> None:
        """Wait until every sent image has its tracks or no output arrived for ``idle_s`` seconds, then
        for one more ``/diagnostics`` message (at most ``idle_s``), so the report has the final counts."""
        while True:
            with self._lock:
                done = not self._sent or time.monotonic() - self._last_output > idle_s
            if done:
                break
            time.sleep(0.05)
        seen, deadline = self._diagnostics_received, time.monotonic() + idle_s  # reading an int needs no lock
        while self._diagnostics_received == seen and time.monotonic() < deadline:
            time.sleep(0.05)

    def last_diagnostics(self) -> dict[str, Any]:
        """Key/values of the node's latest diagnostics status (numbers parsed; ``errors_by_kind`` nested)."""
        with self._lock:
            raw = [data for topic, _, _, data in self.recorded if topic == DIAGNOSTICS_TOPIC]
        values: dict[str, Any] = {"errors_by_kind": {}}
        for status in (BagReader.deserialize(raw[-1], DIAGNOSTICS_TYPE).status if raw else []):
            for item in status.values:
                value = _number(item.value)
                if item.key.startswith("errors_by_kind."):
                    values["errors_by_kind"][item.key.split(".", 1)[1]] = value
                else:
                    values[item.key] = value
        return values

    def __enter__(self) -> "_Recorder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.executor.shutdown()
        self._spinner.join()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def _number(text: str) -> Any:
    """``text`` as int or float when it is one, else unchanged."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text
