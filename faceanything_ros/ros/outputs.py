"""What the node publishes for one ``ProcessedFrame``: topic names, types and messages.

Shared by the rclpy node and ``bag-eval``, so a bag written offline holds the same topics and
messages as a recording of the node. Topic keys are the node's private names (``~/<key>``);
``DIAGNOSTICS_TOPIC`` is global.
"""
from __future__ import annotations

from typing import Any

from faceanything_ros.config import NodeConfig

from .conversions import (
    Types, camera_info, canonical_image, depth_image, diagnostics, make_header, point_cloud2, track_array,
    track_markers,
)
from .processing import ProcessedFrame

DEFAULT_NODE_NAME = "faceanything"
DIAGNOSTICS_TOPIC = "/diagnostics"
DIAGNOSTICS_TYPE = "diagnostic_msgs/msg/DiagnosticArray"
DIAGNOSTICS_PERIOD_NS = 1_000_000_000  # one ``/diagnostics`` message per second (bag-eval: of bag time)
OUTPUT_TYPES: dict[str, str] = {
    "depth": "sensor_msgs/msg/Image",  # 32FC1 metres, NaN where no face (REP 118)
    "points": "sensor_msgs/msg/PointCloud2",  # conversions.POINT_FIELDS
    "canonical": "sensor_msgs/msg/Image",  # 32FC3 canonical coordinates, NaN where no face
    "tracks": "faceanything_ros/msg/CanonicalTrackArray",
    "track_markers": "visualization_msgs/msg/MarkerArray",
    "camera_info": "sensor_msgs/msg/CameraInfo",  # the K used: given, or estimated from the rays
}


def output_topic(key: str, node_name: str = DEFAULT_NODE_NAME, namespace: str = "") -> str:
    """Absolute topic of output ``key`` of node ``node_name`` in ``namespace``: ``/<ns>/<node>/<key>``."""
    if key not in OUTPUT_TYPES:
        raise ValueError(f"unknown output {key!r}; outputs are {list(OUTPUT_TYPES)}")
    return "/" + "/".join(part.strip("/") for part in (namespace, node_name, key) if part.strip("/"))


def output_messages(types: Types, frame: ProcessedFrame, config: NodeConfig) -> dict[str, Any]:
    """``{OUTPUT_TYPES key: message}`` of one processed frame, every header the input image's stamp and frame."""
    header = make_header(types, frame.stamp_ns, frame.frame_id)
    reconstruction = frame.reconstruction
    height, width = reconstruction.image_size
    return {
        "depth": depth_image(types, header, reconstruction.depth),
        "points": point_cloud2(types, header, reconstruction.cloud, stride=config.point_stride),
        "canonical": canonical_image(types, header, reconstruction.canonical),
        "tracks": track_array(types, header, frame.tracks, config.track_max_distance),
        "track_markers": track_markers(types, header, frame.tracks),
        "camera_info": camera_info(types, header, frame.intrinsics, width, height),
    }


def diagnostics_message(types: Types, stamp_ns: int, stats_summary: dict[str, Any], config: NodeConfig,
                        node_name: str = DEFAULT_NODE_NAME, warn: bool | None = None, **extra: Any) -> Any:
    """``/diagnostics`` array named ``"<node_name>: face reconstruction"``: ``stats_summary`` (a
    ``ProcessingStats.summary()``), engine and input, then ``extra`` key/values (which win). Level
    WARN when ``warn`` (default: when any frame was bad), else OK."""
    summary = {**stats_summary, "engine": config.engine, "input": config.input, **extra}
    level = "WARN" if (summary["errors"] if warn is None else warn) else "OK"
    message = f"{summary['frames_out']} frames out, {summary['dropped']} dropped, {summary['errors']} bad"
    return diagnostics(types, stamp_ns, f"{node_name}: face reconstruction", summary, level=level, message=message,
                       hardware_id=config.device)
