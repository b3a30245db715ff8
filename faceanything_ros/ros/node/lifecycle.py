"""The faceanything lifecycle node: images in; depth, points, canonical map, faces, tracks, TF and diagnostics out.

``FaceAnythingNode`` (``rclpy.lifecycle.LifecycleNode``, default name ``faceanything``):

- configure: reads the parameters (``NodeConfig``), builds the ``FrameProcessor`` (the method:
  model, face-mesh or auto) and does all slow work there (model, every engine shape, one warm-up
  reconstruction), then creates the publishers and exempts every object alive from the garbage
  collector (``stream.collector``: no full collection over the model stalls a frame; cleanup hands
  them back); then glibc's malloc keeps freed buffers mapped for the next frames (``stream.allocator``).
  Any failure is logged with its cause and the transition fails; ``cleanup`` then ``configure``
  applies new parameter values.
- activate: subscribes to ``image`` (or ``image/compressed``) and ``camera_info`` (P for a rectified
  image, K for a raw one: ``camera_matrix``; an ignored distortion or an estimated K is logged
  once and shown as ``intrinsics`` in ``/diagnostics``) and starts the
  inference and publishing threads and the diagnostics timer; deactivate stops them in bounded
  time (a frame still in flight publishes nothing and releases what it used when it ends).
- The image callback only converts and validates the message; the inference thread handles the
  newest frame only (``FrameWorker``), so a slow model drops frames (counted) instead of
  queueing them. It reconstructs; the publishing thread takes each reconstruction in order (one
  waiting at most), tracks it and builds and publishes the messages while the next frame is
  reconstructed, so the two halves of a frame's work run on two cores. Bad input is logged once
  per kind (then at most every ``LOG_EVERY_S`` seconds per kind), counted in ``/diagnostics``, and
  the node keeps running. Frames without a face still
  publish (all-NaN depth, empty cloud, no visible track, no face).
"""
from __future__ import annotations

import threading
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.qos_overriding_options import QoSOverridingOptions

from faceanything_ros.config import NodeConfig
from faceanything_ros.ros.conversions import (
    ImageConversionError, camera_info_intrinsics_or_none, compressed_to_rgb, image_to_rgb, stamp_to_ns,
)
from faceanything_ros.ros.node.message_types import rclpy_message_types
from faceanything_ros.ros.node.parameters import declare_node_parameters, node_config, runtime_config
from faceanything_ros.ros.node.publishers import OutputPublishers
from faceanything_ros.ros.outputs import (
    DEFAULT_NODE_NAME, DIAGNOSTICS_PERIOD_NS, DIAGNOSTICS_TOPIC, DIAGNOSTICS_TYPE, TF_TYPE, diagnostics_message,
)
from faceanything_ros.geometry.camera_info import CameraIntrinsics, rectified_image
from faceanything_ros.stages import STAGE_TIMES
from faceanything_ros.stream.allocator import keep_freed_memory
from faceanything_ros.stream.camera_info import CameraInfoCache, intrinsics_note
from faceanything_ros.stream.collector import CollectorPauses
from faceanything_ros.stream.health import stream_health
from faceanything_ros.stream.processing import FrameProcessor, ReconstructedFrame
from faceanything_ros.stream.stats import ProcessingStats
from faceanything_ros.stream.worker import STOP_WAIT_S, FrameWorker

LOG_EVERY_S = 10.0  # a repeated problem of one kind is logged at most this often


@dataclass
class InputFrame:
    """A converted image waiting for the inference thread: ``rgb`` (H, W, 3) uint8, its header
    stamp (integer ns) and frame_id, and its arrival time (``time.monotonic()`` seconds)."""

    rgb: np.ndarray
    stamp_ns: int
    frame_id: str
    arrival_s: float


@dataclass
class OutputFrame:
    """A reconstructed frame waiting for the publishing thread: the reconstruction, the processor that
    tracks it, the runtime config and publishers it publishes with, the generation it was
    processed in and its image's arrival time."""

    reconstructed: ReconstructedFrame
    processor: FrameProcessor
    config: NodeConfig
    outputs: OutputPublishers
    generation: int
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
        self._rectified = False  # the image topic carries rectified images: K from camera_info's P
        self._intrinsics_note = "no frame yet"  # how the latest frame's K was obtained (diagnostics)
        self._logged_once: set[str] = set()
        self._config: NodeConfig | None = None
        self._processor: FrameProcessor | None = None
        self._outputs: OutputPublishers | None = None
        self._diagnostics_publisher = None
        self._subscriptions_active: list[Any] = []
        self._worker: FrameWorker[InputFrame] | None = None
        self._busy_worker: FrameWorker[InputFrame] | None = None  # stopped with a frame still in flight
        self._publishing: FrameWorker[OutputFrame] | None = None
        self._publish_lock = threading.Lock()
        self._generation = 0  # bumped by deactivate: a frame of an older generation publishes nothing
        self._diagnostics_timer = None
        self._last_report: tuple[float, int, int] = (time.monotonic(), 0, 0)  # time, frames out, errors
        self._collector_pauses = CollectorPauses()

    # lifecycle transitions

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Read the parameters, build the processor and do its slow work, create the publishers."""
        try:
            self._config = node_config(self)
            self._processor = FrameProcessor(self._config)
            self._processor.warm_up()
        except Exception as error:  # noqa: BLE001 - whatever failed, say why and fail the transition
            cause = "".join(traceback.format_exception(error)).rstrip()
            self.get_logger().error(f"configure failed: {error}\n{cause}")
            self._release_model()
            self._config = None
            return TransitionCallbackReturn.FAILURE
        self._outputs = OutputPublishers(self, self._types)
        if self._outputs.object_outputs:
            self.get_logger().warning(
                f"outputs {sorted(self._outputs.object_outputs)} are published from rclpy message objects (more CPU): "
                "their publishers report no type hash equal to the package's typestore's")
        else:
            self.get_logger().info(f"all {len(self._outputs.cdr_outputs)} outputs are published as CDR bytes")
        self._diagnostics_publisher = self.create_publisher(self._types[DIAGNOSTICS_TYPE], DIAGNOSTICS_TOPIC, 10)
        # after the model and warm-up, whose temporaries are handed back as before
        kept = keep_freed_memory()
        self.get_logger().info(f"configured: {self._processor.describe()}; freed buffers "
                               + ("kept mapped for the next frames (glibc mallopt)" if kept
                                  else "handed back to the system (mallopt unavailable or refused)"))
        if self._config.publish_tf and TF_TYPE not in self._types:
            self.get_logger().warning("TF is off: tf2_msgs is not installed, so face_<id> frames are not "
                                      "published on /tf (the head poses are still on ~/faces)")
        self._collector_pauses.install()  # frozen: no full garbage collection over the model and graphs in a frame
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe to the inputs, start the inference and publishing threads and the diagnostics timer."""
        config = self._config
        qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST, depth=config.qos_depth,
            reliability=ReliabilityPolicy.BEST_EFFORT if config.qos_reliability == "best_effort"
            else ReliabilityPolicy.RELIABLE)
        image_topic, image_type = ("image", "sensor_msgs/msg/Image") if config.input == "raw" else (
            "image/compressed", "sensor_msgs/msg/CompressedImage")
        overrides = QoSOverridingOptions.with_default_policies()
        self._publishing = FrameWorker(self._publish, self._drop, name="faceanything_publish", newest_only=False)
        self._publishing.start()
        self._worker = FrameWorker(self._process, self._drop, lambda: self.get_parameter("max_rate_hz").value)
        self._worker.start()
        # camera_info first: when an image and its info are ready together, the executor runs the
        # callbacks in creation order, so the info is stored before the frame reaches the worker
        self._subscriptions_active = [
            self.create_subscription(self._types["sensor_msgs/msg/CameraInfo"], "camera_info",
                                     self._camera_infos.add, qos, qos_overriding_options=overrides),
            self.create_subscription(self._types[image_type], image_topic, self._on_image, qos,
                                     qos_overriding_options=overrides),
        ]
        self._rectified = rectified_image(config.camera_matrix, self.resolve_topic_name(image_topic))
        self._last_report = (time.monotonic(), self._stats.frames_out, sum(self._stats.errors.values()))
        self._diagnostics_timer = self.create_timer(DIAGNOSTICS_PERIOD_NS / 1e9, self._publish_diagnostics)
        self.get_logger().info(f"active: {self.resolve_topic_name(image_topic)} -> {self.get_name()}/*")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Unsubscribe; stop the inference and publishing threads and the timer (bounded: ``FrameWorker.stop``)."""
        self._stop_processing()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Destroy the publishers and release the processor (once a frame in flight is done)."""
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
        """Stop processing and release the processor and publishers (idempotent; also used at exit)."""
        self._stop_processing()
        self._release_model()

    def _stop_processing(self) -> None:
        for subscription in self._subscriptions_active:
            self.destroy_subscription(subscription)
        self._subscriptions_active = []
        with self._publish_lock:  # a frame publishing now finishes first; later ones publish nothing
            self._generation += 1
        workers = [worker for worker in (self._publishing, self._worker) if worker is not None]
        for worker in workers:  # the publishing thread first: an inference thread handing over goes on
            worker.request_stop()
        deadline = time.monotonic() + STOP_WAIT_S  # one bounded wait for both
        if self._publishing is not None:
            self._publishing.stop(max(0.0, deadline - time.monotonic()))
        if self._worker is not None and not self._worker.stop(max(0.0, deadline - time.monotonic())):
            self.get_logger().info("a frame still in flight is dropped when it finishes")
            self._busy_worker = self._worker
        self._worker = self._publishing = None
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
            processor, self._processor = self._processor, None
            if self._busy_worker is not None:  # the frame in flight still uses it
                self._busy_worker.after_exit(processor.close)
            else:
                processor.close()
        self._busy_worker = None
        self._camera_infos.clear()
        self._collector_pauses.remove()  # thawed: the released processor's objects can be collected

    # streaming

    def _on_image(self, msg: Any) -> None:
        """Image callback: convert + validate, hand the frame to the inference thread (no model here)."""
        arrival_s = time.monotonic()
        worker = self._worker
        if worker is None:
            return
        with self._stats_lock:
            self._stats.record_input()
        try:
            rgb = image_to_rgb(msg) if self._config.input == "raw" else compressed_to_rgb(msg)
        except ImageConversionError as error:
            self._report_problem(error.kind, str(error))
            return
        worker.submit(InputFrame(rgb, stamp_to_ns(msg.header.stamp), str(msg.header.frame_id), arrival_s))

    def _drop(self, frame: InputFrame | OutputFrame) -> None:
        with self._stats_lock:
            self._stats.record_drop()

    def _process(self, frame: InputFrame) -> None:
        """Inference thread: match the CameraInfo, reconstruct, hand the frame to the publishing thread."""
        processor, outputs, publishing, generation = self._processor, self._outputs, self._publishing, self._generation
        with self._counting_errors():
            height, width = frame.rgb.shape[:2]
            info = self._camera_infos.match(frame.stamp_ns, frame.frame_id)
            used = camera_info_intrinsics_or_none(
                info, width, height, self._rectified,
                lambda error: self._report_problem(error.kind, f"{error}; estimating K from the image instead"))
            reconstructed = processor.reconstruct(frame.rgb, frame.stamp_ns, frame.frame_id,
                                                  None if used is None else used.intrinsics, info)
            self._note_intrinsics(used, reconstructed.reconstruction.intrinsics_source)
            output = OutputFrame(reconstructed, processor, runtime_config(self, self._config), outputs, generation,
                                 frame.arrival_s)
            if publishing is None:
                self._drop(output)
            else:
                publishing.submit(output)

    def _publish(self, frame: OutputFrame) -> None:
        """Publishing thread: track the reconstructed frame, build and publish its messages, count it out."""
        with self._counting_errors():
            with self._publish_lock:  # one frame at a time tracks, even across a deactivate and activate
                if frame.generation != self._generation:  # reconstructed before a deactivate
                    self._drop(frame)
                    return
                result = frame.processor.track(frame.reconstructed)
                frame.outputs.publish(result, frame.config)
            reconstruction = result.reconstruction
            with self._stats_lock:
                self._stats.record_output(time.monotonic() - frame.arrival_s)
                self._frames_without_face += not reconstruction.found
            if not reconstruction.found:
                self._log_throttled("no_face", f"no face: {reconstruction.message}", error=False)

    @contextmanager
    def _counting_errors(self) -> Iterator[None]:
        """Errors of the ``with`` block are counted and logged, never fatal: ``invalid_frame``
        (ValueError, TypeError) or ``internal_error`` (anything else, with its traceback)."""
        try:
            yield
        except (ValueError, TypeError) as error:
            self._report_problem("invalid_frame", str(error))
        except Exception as error:  # noqa: BLE001 - a running node logs, counts and keeps going
            self._report_problem("internal_error", "".join(traceback.format_exception(error)))

    def _note_intrinsics(self, used: CameraIntrinsics | None, source: str) -> None:
        """Keep how this frame's K was obtained for the diagnostics (``intrinsics``); log once that
        K is estimated, and once that a raw image's distortion is ignored."""
        note = intrinsics_note(used, source)
        with self._stats_lock:
            self._intrinsics_note = note
        kind = "estimated" if used is None else "distortion_ignored" if used.distortion_ignored else None
        if kind is not None and kind not in self._logged_once:
            self._logged_once.add(kind)
            self.get_logger().warning(f"intrinsics {note}; reported as 'intrinsics' in /diagnostics")

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
        """Publish level, rate, latency, frames in/out/pending (waiting or in flight), drops, errors by kind,
        skipped outputs, method, engine, the time of each pipeline stage (``stages.STAGE_TIMES``) and the
        garbage collector's pauses (``gc.*``)."""
        now = time.monotonic()
        config = runtime_config(self, self._config)
        # before the counters: a frame finishing in between shows as pending, never as gone
        pending = sum(worker.frames_pending for worker in (self._worker, self._publishing) if worker is not None)
        with self._stats_lock:
            summary = self._stats.summary()
            last_time, last_out, last_errors = self._last_report
            self._last_report = (now, summary["frames_out"], summary["errors"])
            rate_hz = (summary["frames_out"] - last_out) / max(now - last_time, 1e-9)
            last_input = self._stats.last_input_s
            health = stream_health(
                rate_hz=rate_hz, expected_rate_hz=config.expected_rate_hz,
                seconds_since_input=None if last_input is None else now - last_input,
                stale_after_s=config.stale_after_s, consecutive_errors=self._stats.consecutive_errors,
                error_after_failures=config.error_after_failures, errors_since_report=summary["errors"] - last_errors)
            frames_without_face = self._frames_without_face
            note = self._intrinsics_note
        processor = self._processor
        message = diagnostics_message(
            self._types, self.get_clock().now().nanoseconds, summary, config, health, self.get_name(),
            frames_without_face=frames_without_face, rate_hz=rate_hz,
            frames_pending=pending, intrinsics=note, method=processor.method.method,
            engine=processor.engine, tf="on" if TF_TYPE in self._types else "off (tf2_msgs not installed)",
            skipped=dict(self._outputs.skipped), stages=STAGE_TIMES.summary(), gc=self._collector_pauses.summary())
        self._diagnostics_publisher.publish(message)
