"""The faceanything ROS 2 node: images in; depth, points, canonical map, tracks and diagnostics out.

A lifecycle node (``rclpy.lifecycle.LifecycleNode``, default name ``faceanything``):

- configure: reads the parameters (``NodeConfig``), loads the model (``FrameProcessor``) and
  creates the publishers; activate: subscribes to ``image`` (or ``image/compressed``) and
  ``camera_info`` and starts the single inference thread and the diagnostics timer;
  deactivate stops them; cleanup releases the model; shutdown releases everything.
- The image callback only converts and validates the message; the inference thread handles the
  newest frame only (``NewestOnlyWorker``), so a slow model drops frames (counted) instead of
  queueing them. Bad input is logged once per kind (then at most every ``LOG_EVERY_S`` seconds per
  kind), counted in ``/diagnostics``, and the node keeps running. Frames without a face still
  publish (all-NaN depth, empty cloud, no visible track), so consumers see every processed frame.

Entry points: ``faceanything_lifecycle_node`` (managed: configure/activate it from a launch file
or ``ros2 lifecycle set``) and ``faceanything_node`` / ``python -m faceanything_ros.ros.node``
(configures and activates itself), all taking ``--ros-args``. The generated messages
(``faceanything_ros.msg``) come from the package's colcon build.
"""
from __future__ import annotations

import argparse
import sys
import threading
import time
import traceback
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.qos_overriding_options import QoSOverridingOptions
from rclpy.utilities import remove_ros_args

from faceanything_ros.config import NodeConfig
from faceanything_ros.ros.conversions import (
    ImageConversionError, camera_info_intrinsics_or_none, compressed_to_rgb, image_to_rgb, stamp_to_ns,
)
from faceanything_ros.ros.node_camera_info import CameraInfoCache
from faceanything_ros.ros.node_outputs import OutputPublishers
from faceanything_ros.ros.node_parameters import declare_node_parameters, node_config
from faceanything_ros.ros.node_worker import NewestOnlyWorker
from faceanything_ros.ros.outputs import (
    DEFAULT_NODE_NAME, DIAGNOSTICS_PERIOD_NS, DIAGNOSTICS_TOPIC, DIAGNOSTICS_TYPE, diagnostics_message,
)
from faceanything_ros.ros.processing import FrameProcessor
from faceanything_ros.ros.stats import ProcessingStats

LOG_EVERY_S = 10.0  # a repeated problem of one kind is logged at most this often


def rclpy_message_types() -> dict[str, type]:
    """ROS type name (``"sensor_msgs/msg/Image"``) -> rclpy message class, for the conversions.

    Raises ``ImportError`` with the fix when ``faceanything_ros.msg`` is missing (a pip install:
    the messages are generated only by the package's colcon build).
    """
    from builtin_interfaces.msg import Duration, Time
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
    from geometry_msgs.msg import Point, Pose, Quaternion, Vector3
    from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2, PointField, RegionOfInterest
    from std_msgs.msg import ColorRGBA, Header
    import visualization_msgs.msg as visualization
    try:
        from faceanything_ros.msg import CanonicalTrack, CanonicalTrackArray
    except ImportError as error:
        raise ImportError(
            "faceanything_ros.msg is missing: the node needs the package built by colcon "
            "(`colcon build` in a workspace holding this repository, then `source install/setup.bash`)"
        ) from error
    classes = [
        Duration, Time, DiagnosticArray, DiagnosticStatus, KeyValue, Point, Pose, Quaternion, Vector3,
        CameraInfo, CompressedImage, Image, PointCloud2, PointField, RegionOfInterest, ColorRGBA, Header,
        visualization.Marker, visualization.MarkerArray, CanonicalTrack, CanonicalTrackArray,
    ]
    if hasattr(visualization, "MeshFile"):  # Iron and later
        classes.append(visualization.MeshFile)
    return {f"{cls.__module__.split('.')[0]}/msg/{cls.__name__}": cls for cls in classes}


@dataclass
class InputFrame:
    """A converted image waiting for the inference thread: ``rgb`` (H, W, 3) uint8, its header
    stamp (integer ns) and frame_id, and its arrival time (``time.monotonic()`` seconds)."""

    rgb: np.ndarray
    stamp_ns: int
    frame_id: str
    arrival_s: float


class FaceAnythingNode(LifecycleNode):
    """Lifecycle node running ``FrameProcessor`` on a camera stream (see the module docstring)."""

    def __init__(self, node_name: str = DEFAULT_NODE_NAME, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        declare_node_parameters(self)
        self._types = rclpy_message_types()
        self._stats_lock = threading.Lock()
        self._stats = ProcessingStats()
        self._frames_without_face = 0
        self._last_logged: dict[str, float] = {}
        self._camera_infos = CameraInfoCache()
        self._config: NodeConfig | None = None
        self._engine = ""  # the engine actually running, e.g. "onnx on cpu, fp32, 224 px input"
        self._processor: FrameProcessor | None = None
        self._outputs: OutputPublishers | None = None
        self._diagnostics_publisher = None
        self._subscriptions_active: list[Any] = []
        self._worker: NewestOnlyWorker[InputFrame] | None = None
        self._diagnostics_timer = None
        self._last_report: tuple[float, int, int] = (time.monotonic(), 0, 0)  # time, frames out, errors

    # lifecycle transitions

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Read the parameters, load the model and engine, create the publishers."""
        try:
            self._config = node_config(self)
            self._processor = FrameProcessor(self._config)
        except (OSError, ValueError, RuntimeError) as error:
            self.get_logger().error(f"configure failed: {error}")
            self._config = None
            return TransitionCallbackReturn.FAILURE
        self._outputs = OutputPublishers(self, self._types)
        self._diagnostics_publisher = self.create_publisher(self._types[DIAGNOSTICS_TYPE], DIAGNOSTICS_TOPIC, 10)
        self._engine = self._processor.predictor.engine.describe()
        self.get_logger().info(f"configured: model {self._config.model or '(bundled)'}, engine {self._engine}")
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe to the inputs, start the inference thread and the diagnostics timer."""
        config = self._config
        qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST, depth=config.qos_depth,
            reliability=ReliabilityPolicy.BEST_EFFORT if config.qos_reliability == "best_effort"
            else ReliabilityPolicy.RELIABLE)
        image_topic, image_type = ("image", "sensor_msgs/msg/Image") if config.input == "raw" else (
            "image/compressed", "sensor_msgs/msg/CompressedImage")
        overrides = QoSOverridingOptions.with_default_policies()
        self._worker = NewestOnlyWorker(self._process, self._drop, lambda: self.get_parameter("max_rate_hz").value)
        self._worker.start()
        # camera_info first: when an image and its info are ready together, the executor runs the
        # callbacks in creation order, so the info is stored before the frame reaches the worker
        self._subscriptions_active = [
            self.create_subscription(self._types["sensor_msgs/msg/CameraInfo"], "camera_info",
                                     self._camera_infos.add, qos, qos_overriding_options=overrides),
            self.create_subscription(self._types[image_type], image_topic, self._on_image, qos,
                                     qos_overriding_options=overrides),
        ]
        self._last_report = (time.monotonic(), self._stats.frames_out, sum(self._stats.errors.values()))
        self._diagnostics_timer = self.create_timer(DIAGNOSTICS_PERIOD_NS / 1e9, self._publish_diagnostics)
        self.get_logger().info(f"active: {self.resolve_topic_name(image_topic)} -> {self.get_name()}/*")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Unsubscribe, finish the frame being processed, stop the inference thread and the timer."""
        self._stop_processing()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Destroy the publishers and release the model."""
        self._release_model()
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release everything, from whichever state the node is in."""
        self.release()
        return super().on_shutdown(state)

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release everything and go back to unconfigured."""
        self.release()
        return TransitionCallbackReturn.SUCCESS

    def release(self) -> None:
        """Stop processing and release the model and publishers (idempotent; also used at exit)."""
        self._stop_processing()
        self._release_model()

    def _stop_processing(self) -> None:
        for subscription in self._subscriptions_active:
            self.destroy_subscription(subscription)
        self._subscriptions_active = []
        if self._worker is not None:
            self._worker.stop()
            self._worker = None
        if self._diagnostics_timer is not None:
            self.destroy_timer(self._diagnostics_timer)
            self._diagnostics_timer = None

    def _release_model(self) -> None:
        if self._outputs is not None:
            self._outputs.destroy()
            self._outputs = None
        if self._diagnostics_publisher is not None:
            self.destroy_publisher(self._diagnostics_publisher)
            self._diagnostics_publisher = None
        if self._processor is not None:
            self._processor.close()
            self._processor = None
        self._camera_infos.clear()

    # streaming

    def _on_image(self, msg: Any) -> None:
        """Image callback: convert + validate, hand the frame to the inference thread (no model here)."""
        arrival_s = time.monotonic()
        with self._stats_lock:
            self._stats.record_input()
        try:
            rgb = image_to_rgb(msg) if self._config.input == "raw" else compressed_to_rgb(msg)
        except ImageConversionError as error:
            self._report_problem(error.kind, str(error))
            return
        self._worker.submit(InputFrame(rgb, stamp_to_ns(msg.header.stamp), str(msg.header.frame_id), arrival_s))

    def _drop(self, frame: InputFrame) -> None:
        with self._stats_lock:
            self._stats.record_drop()

    def _process(self, frame: InputFrame) -> None:
        """Inference thread: match the CameraInfo, process, publish; errors are counted, never fatal."""
        try:
            intrinsics = self._intrinsics_for(frame)
            result = self._processor.process(frame.rgb, frame.stamp_ns, frame.frame_id, intrinsics)
            self._outputs.publish(result, replace(self._config, point_stride=self.get_parameter("point_stride").value))
            with self._stats_lock:
                self._stats.record_output(time.monotonic() - frame.arrival_s)
                self._frames_without_face += not result.reconstruction.found
            if not result.reconstruction.found:
                self._log_throttled("no_face", f"no face: {result.reconstruction.message}", error=False)
        except (ValueError, TypeError) as error:
            self._report_problem("invalid_frame", str(error))
        except Exception as error:  # a running node logs, counts and keeps going
            self._report_problem("internal_error", "".join(traceback.format_exception(error)))

    def _intrinsics_for(self, frame: InputFrame) -> np.ndarray | None:
        """K of the CameraInfo matching ``frame`` (stamp, else latest of its frame_id), or None (estimated)."""
        height, width = frame.rgb.shape[:2]
        return camera_info_intrinsics_or_none(
            self._camera_infos.match(frame.stamp_ns, frame.frame_id), width, height,
            lambda error: self._report_problem(error.kind, f"{error}; estimating K from the image instead"))

    def _report_problem(self, kind: str, message: str) -> None:
        """Count a problem of ``kind`` for the diagnostics and log it (throttled per kind)."""
        with self._stats_lock:
            self._stats.record_error(kind)
        self._log_throttled(kind, message, error=True)

    def _log_throttled(self, kind: str, message: str, error: bool) -> None:
        """Log ``message`` the first time ``kind`` occurs, then at most every ``LOG_EVERY_S`` seconds."""
        now = time.monotonic()
        last = self._last_logged.get(kind)
        if last is not None and now - last < LOG_EVERY_S:
            return
        self._last_logged[kind] = now
        text = f"{message}{'' if last is None else f' (repeated; logged at most every {LOG_EVERY_S:g} s)'}" \
            "; counted in /diagnostics"
        # two call sites: rclpy refuses one call site logging at two severities
        if error:
            self.get_logger().error(text)
        else:
            self.get_logger().info(text)

    def _publish_diagnostics(self) -> None:
        """Publish rate, latency, frames in/out, drops, errors by kind and the engine on /diagnostics."""
        now = time.monotonic()
        with self._stats_lock:
            summary = self._stats.summary()
            last_time, last_out, last_errors = self._last_report
            self._last_report = (now, summary["frames_out"], summary["errors"])
            message = diagnostics_message(
                self._types, self.get_clock().now().nanoseconds, summary, self._config, self.get_name(),
                warn=summary["errors"] > last_errors,  # bad input since the last report
                frames_without_face=self._frames_without_face, engine=self._engine,
                rate_hz=(summary["frames_out"] - last_out) / max(now - last_time, 1e-9))
        self._diagnostics_publisher.publish(message)


def main(args: list[str] | None = None) -> int:
    """``faceanything_node``: run the node, configuring and activating it at start-up."""
    return run(args, activate=True)


def lifecycle_main(args: list[str] | None = None) -> int:
    """``faceanything_lifecycle_node``: run the node unconfigured; a lifecycle manager drives it."""
    return run(args, activate=False)


def run(args: list[str] | None, activate: bool) -> int:
    """Spin a ``FaceAnythingNode`` until Ctrl-C or ROS shutdown; exit status 0, or 1 when it cannot start."""
    rclpy.init(args=args)
    node = None
    try:
        node = FaceAnythingNode()
        if activate and not (node.trigger_configure() == TransitionCallbackReturn.SUCCESS
                             and node.trigger_activate() == TransitionCallbackReturn.SUCCESS):
            node.get_logger().fatal("could not configure and activate; see the errors above")
            return 1
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.release()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


def module_main(argv: list[str] | None = None) -> int:
    """``python -m faceanything_ros.ros.node [--lifecycle] --ros-args ...``."""
    argv = sys.argv if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m faceanything_ros.ros.node", description=__doc__.splitlines()[0])
    parser.add_argument("--lifecycle", action="store_true",
                        help="start unconfigured (a lifecycle manager configures and activates it)")
    options = parser.parse_args(remove_ros_args(argv)[1:])
    return run(argv, activate=not options.lifecycle)


if __name__ == "__main__":
    sys.exit(module_main())
