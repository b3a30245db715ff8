"""``bag-eval`` direct mode: run ``FrameProcessor`` on every image of a bag, write the node's topics, report.

Deterministic: images are processed in bag order, one by one, none dropped. The output bag holds
the input image (and camera_info) topics copied unchanged plus every topic the node publishes
(``outputs.output_topic``), each written at its input image's bag timestamp, and a
``/diagnostics`` message per second of bag time and at the end. Bad images are counted by kind
in the report and skipped; processing continues.

CameraInfo is matched to an image by the node's rule (``stream.camera_info``: same frame_id, the
image's stamp, else the latest one stamped before it; all camera_info messages are read first,
they are small), and its K or P is used as the node uses it (``NodeConfig.camera_matrix``). Ground truth (depth ``32FC1``/``16UC1`` or ``CanonicalTrackArray``) is matched by
header stamp. The method (model, mesh or auto) is ``config.method``, as in the node.
"""
from __future__ import annotations

import logging
import math
import time
from collections import Counter
from pathlib import Path
from typing import Any

from faceanything_ros.config import NodeConfig
from faceanything_ros.geometry.camera_info import CameraIntrinsics, rectified_image
from faceanything_ros.stream.bounded import put_bounded
from faceanything_ros.stream.camera_info import CameraInfoCache, intrinsics_note
from faceanything_ros.stream.health import stream_health
from faceanything_ros.stream.processing import FrameProcessor, ProcessedFrame
from faceanything_ros.stream.stats import ProcessingStats

from .bag import BagReader, BagWriter
from .bag_accuracy import DepthAccuracy, TrackAccuracy
from .conversions import (
    ImageConversionError, camera_info_intrinsics_or_none, compressed_to_rgb, depth_image_to_metres, image_to_rgb,
    stamp_to_ns, track_array_to_arrays,
)
from .message_types import typestore
from .outputs import (
    DEFAULT_NODE_NAME, DIAGNOSTICS_PERIOD_NS, DIAGNOSTICS_TOPIC, DIAGNOSTICS_TYPE, OUTPUT_TYPES, diagnostics_message,
    enabled_outputs, output_messages, output_topic,
)

log = logging.getLogger(__name__)

IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
MAX_PENDING = 256  # predictions / ground truths kept while waiting for their counterpart's stamp


def evaluate_bag(in_bag: str | Path, out_bag: str | Path, image_topic: str, config: NodeConfig,
                 camera_info_topic: str | None = None, depth_topic: str | None = None,
                 tracks_topic: str | None = None, storage: str | None = None,
                 node_name: str = DEFAULT_NODE_NAME, namespace: str = "") -> dict[str, Any]:
    """Process ``image_topic`` of ``in_bag`` into the new bag ``out_bag``; returns the report dict.

    storage: ``sqlite3``/``mcap`` of the output (None: the input's). Raises ``FileNotFoundError``
    / ``BagError`` naming the bag for a missing or unreadable bag or an absent topic (listing the
    bag's topics). Report: frames_in/out, dropped (0 here), errors (by kind), latency percentiles
    (ms, per frame: conversion + processing), throughput_hz, frames_with_face, intrinsics
    (given/estimated counts), output message counts per topic, and ``accuracy`` per given truth topic.
    """
    types = typestore().types
    with BagReader(in_bag) as reader:
        reader.check_topic(image_topic, IMAGE_TYPES)
        for topic, msgtypes in ((camera_info_topic, (OUTPUT_TYPES["depth/camera_info"],)),
                                (depth_topic, (IMAGE_TYPES[0],)), (tracks_topic, (OUTPUT_TYPES["tracks"],))):
            if topic:
                reader.check_topic(topic, msgtypes)
        cameras = _camera_infos(reader, camera_info_topic) if camera_info_topic else None
        run = _Run(depth_topic, tracks_topic, rectified_image(config.camera_matrix, image_topic))
        keys = enabled_outputs(config, types)
        with FrameProcessor(config) as processor, BagWriter(out_bag, storage or reader.storage) as writer:
            log.info("bag-eval runs %s", processor.describe())
            topics = [t for t in (image_topic, camera_info_topic, depth_topic, tracks_topic) if t]
            next_diagnostics = None
            for connection, timestamp, rawdata in reader.messages(topics):
                if connection.topic in (image_topic, camera_info_topic):
                    writer.write_raw(connection.topic, connection.msgtype, timestamp, rawdata)
                if connection.topic == image_topic:
                    frame = run.process_image(processor, rawdata, connection.msgtype, cameras)
                    if frame is not None:
                        for key, message in output_messages(types, frame, config, keys).items():
                            writer.write(output_topic(key, node_name, namespace), OUTPUT_TYPES[key], timestamp, message)
                    if next_diagnostics is None or timestamp >= next_diagnostics:
                        writer.write(DIAGNOSTICS_TOPIC, DIAGNOSTICS_TYPE, timestamp,
                                     run.diagnostics(types, timestamp, config, node_name))
                        next_diagnostics = timestamp + DIAGNOSTICS_PERIOD_NS
                    last_timestamp = timestamp
                elif connection.topic in (depth_topic, tracks_topic):
                    run.add_truth(connection.topic, rawdata, connection.msgtype)
            if run.stats.frames_in:
                writer.write(DIAGNOSTICS_TOPIC, DIAGNOSTICS_TYPE, last_timestamp,
                             run.diagnostics(types, last_timestamp, config, node_name))
            counts = dict(writer.counts)
    report = {
        "input_bag": str(in_bag), "output_bag": str(out_bag), "mode": "direct", "image_topic": image_topic,
        "camera_info_topic": camera_info_topic, "method": run.method, "model": config.model, "engine": config.engine,
        "device": config.device, **run.stats.summary(), "frames_with_face": run.frames_with_face,
        "intrinsics": dict(run.intrinsics), "intrinsics_note": run.intrinsics_note, "output_messages": counts, "accuracy": run.accuracy(),
    }
    return json_safe(report)


def _camera_infos(reader: BagReader, topic: str) -> CameraInfoCache:
    """Every CameraInfo of ``topic``, for the node's matching rule (``CameraInfoCache.match``)."""
    infos = CameraInfoCache(capacity=None)
    for connection, _, rawdata in reader.messages([topic]):
        infos.add(reader.deserialize(rawdata, connection.msgtype))
    return infos


class _Run:
    """The state of one evaluation: statistics, intrinsics sources, ground-truth matching."""

    def __init__(self, depth_topic: str | None, tracks_topic: str | None, rectified: bool) -> None:
        self.stats = ProcessingStats()
        self.frames_with_face = 0
        self.rectified = rectified  # the image topic carries rectified images: K from camera_info's P
        self.intrinsics: Counter[str] = Counter()  # given / estimated / distortion_ignored frames
        self.intrinsics_note = "no frame"  # how the latest frame's K was obtained
        self.depth_topic, self.tracks_topic = depth_topic, tracks_topic
        self.depth = DepthAccuracy() if depth_topic else None
        self.tracks = TrackAccuracy() if tracks_topic else None
        # per truth topic, stamp -> what its scoring reads: the depth map (H, W) metres, or the
        # tracks' (ids (Q,), pixels (Q, 2), visible (Q,)); the frames themselves are not kept
        self._predictions: dict[str, dict[int, Any]] = {t: {} for t in (depth_topic, tracks_topic) if t}
        self._truths: dict[str, dict[int, Any]] = {t: {} for t in (depth_topic, tracks_topic) if t}
        self.truth_unmatched = 0
        self.method = ""
        self._errors_reported = 0

    def process_image(self, processor: FrameProcessor, rawdata: bytes, msgtype: str,
                      cameras: CameraInfoCache | None) -> ProcessedFrame | None:
        """Convert and process one image message (``IMAGE_TYPES``); None (error counted and logged once
        per kind) on failure."""
        start = time.perf_counter()
        self.method = processor.method.method
        self.stats.record_input()
        try:
            message = BagReader.deserialize(rawdata, msgtype)
        except Exception as error:  # noqa: BLE001 - any corrupt CDR payload is one bad frame, counted
            self._error("undeserializable", f"{msgtype} message could not be deserialized: {error}")
            return None
        try:
            rgb = compressed_to_rgb(message) if msgtype == IMAGE_TYPES[1] else image_to_rgb(message)
            stamp, frame_id = stamp_to_ns(message.header.stamp), str(message.header.frame_id)
            info = cameras.match(stamp, frame_id, wait_s=0.0) if cameras else None
            used = self._intrinsics(info, rgb.shape)
            frame = processor.process(rgb, stamp, frame_id, None if used is None else used.intrinsics, info)
        except ImageConversionError as error:
            self._error(error.kind, str(error))
            return None
        except (ValueError, TypeError) as error:
            self._error("processing_error", str(error))
            return None
        self.stats.record_output(time.perf_counter() - start)
        self.frames_with_face += frame.reconstruction.found
        self.intrinsics["estimated" if frame.intrinsics_estimated else "given"] += 1
        self.intrinsics_note = intrinsics_note(used, frame.reconstruction.intrinsics_source)
        if used is not None and used.distortion_ignored:
            if not self.intrinsics["distortion_ignored"]:
                log.warning("intrinsics %s", self.intrinsics_note)
            self.intrinsics["distortion_ignored"] += 1
        for topic, predictions in self._predictions.items():
            scored = frame.reconstruction.depth if topic == self.depth_topic else (
                frame.tracks.ids, frame.tracks.pixels, frame.tracks.visible)
            put_bounded(predictions, frame.stamp_ns, scored, MAX_PENDING)
            self._match(topic, frame.stamp_ns)
        return frame

    def _intrinsics(self, info: Any | None, shape: tuple[int, ...]) -> CameraIntrinsics | None:
        """K of the matching CameraInfo ``info``; None (estimated) without one or when it does not fit (counted)."""
        return camera_info_intrinsics_or_none(
            info, shape[1], shape[0], self.rectified,
            lambda error: self._error(error.kind, f"{error}; intrinsics estimated instead"))

    def add_truth(self, topic: str, rawdata: bytes, msgtype: str) -> None:
        """Keep one ground-truth message until the prediction of its stamp exists, then score it."""
        try:
            message = BagReader.deserialize(rawdata, msgtype)
            stamp = stamp_to_ns(message.header.stamp)
            truth = depth_image_to_metres(message) if topic == self.depth_topic else track_array_to_arrays(message)
        except ImageConversionError as error:
            self._error(f"truth_{error.kind}", str(error))
            return
        except Exception as error:  # noqa: BLE001 - any corrupt CDR payload is one bad message, counted
            self._error("truth_undeserializable", f"{topic}: {error}")
            return
        self.truth_unmatched += put_bounded(self._truths[topic], stamp, truth, MAX_PENDING)
        self._match(topic, stamp)

    def _match(self, topic: str, stamp: int) -> None:
        """Score the prediction and truth of ``stamp`` on ``topic`` when both are there."""
        if stamp not in self._predictions[topic] or stamp not in self._truths[topic]:
            return
        prediction, truth = self._predictions[topic][stamp], self._truths[topic].pop(stamp)
        try:
            if topic == self.depth_topic:
                self.depth.add(prediction, truth)
            else:
                self.tracks.add(*prediction, truth)
        except ValueError as error:
            self._error("truth_size", f"{topic}: {error}")

    def _error(self, kind: str, message: str) -> None:
        if self.stats.record_error(kind):
            log.warning("%s (further '%s' errors are counted, not logged)", message, kind)

    def diagnostics(self, types: Any, stamp_ns: int, config: NodeConfig, node_name: str) -> Any:
        """The ``/diagnostics`` message at bag time ``stamp_ns``: WARN when a frame was bad since the last one."""
        summary = self.stats.summary()
        health = stream_health(rate_hz=0.0, expected_rate_hz=0.0, seconds_since_input=0.0,
                               stale_after_s=config.stale_after_s, consecutive_errors=self.stats.consecutive_errors,
                               error_after_failures=config.error_after_failures,
                               errors_since_report=summary["errors"] - self._errors_reported)
        self._errors_reported = summary["errors"]
        return diagnostics_message(types, stamp_ns, summary, config, health, node_name, intrinsics=self.intrinsics_note)

    def accuracy(self) -> dict[str, Any]:
        """Summaries of the accuracy against each ground-truth topic given."""
        result: dict[str, Any] = {}
        if self.depth is not None:
            result["depth"] = {"topic": self.depth_topic, **self.depth.summary()}
        if self.tracks is not None:
            result["tracks"] = {"topic": self.tracks_topic, **self.tracks.summary()}
        if result:
            result["truth_unmatched"] = self.truth_unmatched + sum(len(t) for t in self._truths.values())
        return result


def json_safe(value: Any) -> Any:
    """``value`` with NaN/inf floats as None, so the report is strict JSON."""
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value

