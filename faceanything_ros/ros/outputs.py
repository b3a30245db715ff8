"""What the node publishes for one ``ProcessedFrame``: topic names, types, switches and messages.

Shared by the rclpy node and ``bag-eval``, so a bag written offline holds the same topics and
messages as a recording of the node. Topic keys are the node's private names (``~/<key>``)
except ``GLOBAL_TOPICS`` (``/tf``) and ``DIAGNOSTICS_TOPIC``. Every message carries the input
image's stamp and its frame_id (or ``NodeConfig.frame_id`` when set).

``~/canonical`` shows the region ``(x, y, width, height)`` (input pixels) that the roi of
``~/canonical/camera_info`` holds: the whole image, or with ``canonical_region: faces`` only the
faces' bounding box; resized by ``canonical_scale``. Pixel ``(u, v)`` of ``~/canonical`` lies at
input pixel ``(x + (u + 0.5) * width / image_width - 0.5, y + (v + 0.5) * height / image_height - 0.5)``
(at scale 1: ``(x + u, y + v)``, the roi convention image_geometry applies). An estimated K
(no usable camera_info) has an empty D in both CameraInfos, a calibration's D is carried as given.
"""
from __future__ import annotations

from typing import Any, Collection

import cv2
import numpy as np

from faceanything_ros.config import NodeConfig
from faceanything_ros.export.colorize import colorize_region
from faceanything_ros.export.depth import depth_to_millimetres
from faceanything_ros.reconstruction import Reconstruction
from faceanything_ros.stream.health import StreamHealth
from faceanything_ros.stream.processing import ProcessedFrame

from .conversions import (
    Types, array_to_image, camera_info, canonical_image, depth_image, diagnostics, make_header, point_cloud2,
    track_array, track_markers,
)
from .conversions.faces import face_array, face_label_markers, face_transforms

DEFAULT_NODE_NAME = "faceanything"
DIAGNOSTICS_TOPIC = "/diagnostics"
DIAGNOSTICS_TYPE = "diagnostic_msgs/msg/DiagnosticArray"
DIAGNOSTICS_PERIOD_NS = 1_000_000_000  # one ``/diagnostics`` message per second (bag-eval: of bag time)
TF_TYPE = "tf2_msgs/msg/TFMessage"
OUTPUT_TYPES: dict[str, str] = {
    "depth/image": "sensor_msgs/msg/Image",  # 32FC1 metres (NaN = none) or 16UC1 millimetres (0 = none), REP 118
    "depth/camera_info": "sensor_msgs/msg/CameraInfo",  # the input's (given K), else the estimated K
    "points": "sensor_msgs/msg/PointCloud2",  # conversions.POINT_FIELDS
    "canonical": "sensor_msgs/msg/Image",  # 32FC3 canonical coordinates, NaN where no face
    "canonical/camera_info": "sensor_msgs/msg/CameraInfo",  # depth/camera_info, roi = the region ~/canonical shows
    "tracks": "faceanything_ros/msg/CanonicalTrackArray",
    "track_markers": "visualization_msgs/msg/MarkerArray",  # tracks, and a "face <id>" label per face
    "faces": "faceanything_ros/msg/FaceArray",
    "tf": TF_TYPE,  # face_<id> frames
}
GLOBAL_TOPICS = {"tf": "/tf"}
# the NodeConfig switch of each output
OUTPUT_SWITCHES = {
    "depth/image": "publish_depth", "depth/camera_info": "publish_depth", "points": "publish_points",
    "canonical": "publish_canonical", "canonical/camera_info": "publish_canonical", "tracks": "publish_tracks", "track_markers": "publish_markers",
    "faces": "publish_faces", "tf": "publish_tf",
}


def output_topic(key: str, node_name: str = DEFAULT_NODE_NAME, namespace: str = "") -> str:
    """Absolute topic of output ``key`` of node ``node_name`` in ``namespace``: ``/<ns>/<node>/<key>``
    (``GLOBAL_TOPICS`` as they are)."""
    if key not in OUTPUT_TYPES:
        raise ValueError(f"unknown output {key!r}; outputs are {list(OUTPUT_TYPES)}")
    if key in GLOBAL_TOPICS:
        return GLOBAL_TOPICS[key]
    return "/" + "/".join(part.strip("/") for part in (namespace, node_name, key) if part.strip("/"))


def enabled_outputs(config: NodeConfig, types: Types) -> list[str]:
    """Output keys switched on in ``config`` whose message type ``types`` has (``tf`` needs tf2_msgs)."""
    return [key for key, kind in OUTPUT_TYPES.items() if getattr(config, OUTPUT_SWITCHES[key]) and kind in types]


def output_messages(types: Types, frame: ProcessedFrame, config: NodeConfig, keys: Collection[str]) -> dict[str, Any]:
    """``{key: message}`` of one processed frame for the output ``keys`` only (nothing else is built)."""
    header = make_header(types, frame.stamp_ns, config.frame_id or frame.frame_id)
    reconstruction = frame.reconstruction
    region = canonical_region(reconstruction, config.canonical_region)
    builders = {
        "depth/image": lambda: _depth_image(types, header, reconstruction, config.depth_encoding),
        "depth/camera_info": lambda: _camera_info(types, header, frame),
        "points": lambda: point_cloud2(types, header, reconstruction.point_cloud(config.point_stride, config.max_points)),
        "canonical": lambda: canonical_image(types, header, _scaled(
            reconstruction.over("canonical", _slices(region)), config.canonical_scale)),
        "canonical/camera_info": lambda: _camera_info(types, header, frame, region),
        "tracks": lambda: track_array(types, header, frame.tracks, config.track_max_distance, frame.track_face_ids,
                                      frame.canonical_space),
        "track_markers": lambda: _markers(types, header, frame),
        "faces": lambda: face_array(types, header, frame.faces, frame.canonical_space),
        "tf": lambda: face_transforms(types, header, frame.faces),
    }
    return {key: builders[key]() for key in OUTPUT_TYPES if key in keys}


def _depth_image(types: Types, header: Any, reconstruction: Reconstruction, encoding: str) -> Any:
    """The whole image's depth as ``32FC1`` metres (NaN = none) or ``16UC1`` millimetres (0 = none); the
    millimetres are converted on the faces' region only (all else is 0 anyway)."""
    if encoding == "16UC1":
        return array_to_image(types, header, colorize_region(depth_to_millimetres, reconstruction, "depth"), "16UC1")
    return depth_image(types, header, reconstruction.depth)


def _camera_info(types: Types, header: Any, frame: ProcessedFrame, roi: tuple[int, int, int, int] | None = None) -> Any:
    """The CameraInfo of the frame's image: the input's (its K, P, D) when its K was used, else the
    estimated K (``conversions.camera_info``, empty D). ``roi``: ``(x, y, width, height)`` input
    pixels of the sub-image it describes (added to the input's own roi offset); None = the input's roi."""
    given = frame.camera_info
    height, width = frame.reconstruction.image_size
    region = types["sensor_msgs/msg/RegionOfInterest"]
    info = camera_info(types, header, frame.intrinsics, width, height, estimated=True) if given is None else \
        types["sensor_msgs/msg/CameraInfo"](  # the given message's values in ``types``' classes and numpy arrays
            header=header, height=given.height, width=given.width, distortion_model=given.distortion_model,
            d=np.asarray(given.d, dtype=np.float64), k=np.asarray(given.k, dtype=np.float64),
            r=np.asarray(given.r, dtype=np.float64), p=np.asarray(given.p, dtype=np.float64),
            binning_x=given.binning_x, binning_y=given.binning_y,
            roi=region(x_offset=given.roi.x_offset, y_offset=given.roi.y_offset, width=given.roi.width,
                       height=given.roi.height, do_rectify=given.roi.do_rectify))
    if roi is not None:
        x, y, roi_width, roi_height = roi
        info.roi = region(x_offset=int(info.roi.x_offset) + x, y_offset=int(info.roi.y_offset) + y, width=roi_width,
                          height=roi_height, do_rectify=False)
    return info


def canonical_region(reconstruction: Reconstruction, region: str) -> tuple[int, int, int, int]:
    """``(x, y, width, height)`` pixels of what ``~/canonical`` shows of the reconstruction's image:
    ``image`` = all of it; ``faces`` = the bounding box of the face pixels (``Reconstruction.region``;
    1 x 1 at the origin when there is none, so that an empty frame costs one pixel)."""
    height, width = reconstruction.image_size
    if region == "image":
        return 0, 0, width, height
    rows, columns = reconstruction.region
    if rows.stop == rows.start:
        return 0, 0, 1, 1
    return columns.start, rows.start, columns.stop - columns.start, rows.stop - rows.start


def _slices(roi: tuple[int, int, int, int]) -> tuple[slice, slice]:
    """``(x, y, width, height)`` pixels -> ``(rows, cols)`` slices."""
    x, y, width, height = roi
    return slice(y, y + height), slice(x, x + width)


def _scaled(image: np.ndarray, scale: float) -> np.ndarray:
    """``image`` resized by ``scale`` (nearest neighbour: no value mixes face and background)."""
    if scale >= 1.0:
        return image
    height, width = image.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(np.asarray(image), size, interpolation=cv2.INTER_NEAREST)


def _markers(types: Types, header: Any, frame: ProcessedFrame) -> Any:
    """The tracks' markers followed by one label per face."""
    markers = track_markers(types, header, frame.tracks)
    markers.markers = [*markers.markers, *face_label_markers(types, header, frame.faces)]
    return markers


def diagnostics_message(types: Types, stamp_ns: int, stats_summary: dict[str, Any], config: NodeConfig,
                        health: StreamHealth, node_name: str = DEFAULT_NODE_NAME, **extra: Any) -> Any:
    """``/diagnostics`` array named ``"<node_name>: face reconstruction"`` at ``health``'s level and
    message: ``stats_summary`` (a ``ProcessingStats.summary()``), method, engine and input, then
    ``extra`` key/values (which win)."""
    summary = {**stats_summary, "method": config.method, "engine": config.engine, "input": config.input, **extra}
    message = (f"{health.message}; {summary['frames_out']} frames out, {summary['dropped']} dropped, "
               f"{summary['errors']} bad")
    return diagnostics(types, stamp_ns, f"{node_name}: face reconstruction", summary, level=health.level,
                       message=message, hardware_id=config.device)
