"""ROS parameters of the faceanything node: one per ``NodeConfig`` field, same name, same range.

Ranges come from ``config.NODE_RANGES`` and string choices from ``config.NODE_CHOICES``, so the
descriptors shown by ``ros2 param describe`` and the dataclass's validation cannot disagree.
Every parameter can be changed at any time and every change is validated by building a
``NodeConfig``; ``RUNTIME_PARAMETERS`` apply from the next processed frame, the others when the
node configures next (``cleanup`` then ``configure`` applies new values). Floating-point
parameters accept integers too (``-p max_rate_hz:=10``).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Iterable

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter

from faceanything_ros.config import NODE_CHOICES, NODE_RANGES, NodeConfig

# Applied on the next processed frame; everything else is read when the node configures.
RUNTIME_PARAMETERS = frozenset({
    "max_rate_hz", "point_stride", "max_points", "frame_id", "depth_encoding", "canonical_scale", "canonical_region",
    "publish_depth", "publish_points", "publish_canonical", "publish_tracks", "publish_markers", "publish_faces",
    "publish_tf", "expected_rate_hz", "stale_after_s", "error_after_failures",
})
FLOAT_PARAMETERS = frozenset(f.name for f in dataclasses.fields(NodeConfig) if isinstance(f.default, float))

DESCRIPTIONS: dict[str, str] = {
    "method": "model (the network), mesh (the face-mesh method, no model needed) or auto (the given or bundled "
              "model, else the face-mesh method)",
    "model": "checkpoint path (.safetensors); empty = the bundled model",
    "engine": "inference engine; auto picks the fastest available on the device",
    "device": "torch device, e.g. cpu, cuda, cuda:1",
    "cpu_threads": "intra-op threads of torch and ONNX Runtime in the node's process (set at configure); "
                   "0 = leave torch's setting (one per core unless changed). 1: the node's inference and "
                   "publishing threads keep the cores busy, and a per-frame op waiting for a pool thread "
                   "stalls the frame",
    "window": "frames the model sees jointly: the newest plus window-1 previous ones as context",
    "max_rate_hz": "processed frames per second at most (newer frames replace waiting ones); 0 = unlimited",
    "num_tracks": "query grid size when (re)seeding canonical tracks",
    "reseed": "track re-seeding: never, on_loss (visible fraction < reseed_min_visible), every_n frames",
    "reseed_min_visible": "fraction of visible tracks below which reseed=on_loss re-seeds",
    "reseed_every_n": "processed frames between re-seeds for reseed=every_n (>= 1 then)",
    "min_depth_confidence": "depth confidence (>= 1; 1 = keep all) below which a pixel leaves ~/points",
    "mask_threshold": "face-mask probability threshold; pixels below it are NaN in ~/depth/image",
    "metric_depth": "the model's metric depth scale: face_size (the face has the canonical template's metric "
                    "size, as the face-mesh method assumes) or rays (the network's depth for the focal length its "
                    "rays imply, rescaled to the camera's)",
    "flip_average": "average the model's outputs on each face crop with those on its mirror image: lower "
                    "canonical, depth and tracking error for a second network pass per crop (off by default: on "
                    "a small CPU it costs the camera rate)",
    "track_max_distance": "canonical nearest-neighbour distance above which a track is not visible",
    "track_min_confidence": "canonical confidence (>= 1; 1 = all) below which a pixel is not searched",
    "face_min_confidence": "face detector score threshold",
    "max_faces": "faces reconstructed per frame, largest first",
    "face_redetect_every": "face detection every n-th frame (the model), face boxes tracked in between; a lost "
                           "face is detected at once",
    "point_stride": "keep every n-th pixel row and column in ~/points",
    "max_points": "~/points holds about this many points at most: a face with more pixels is sampled with a "
                  "larger stride, so the cloud's size does not grow with the camera's resolution; 0 = no cap",
    "input": "raw subscribes to `image` (sensor_msgs/Image), compressed to `image/compressed`",
    "qos_reliability": "reliability of the image and camera_info subscriptions (sensor-data QoS by default)",
    "qos_depth": "history depth of the image and camera_info subscriptions",
    "camera_matrix": "which camera_info matrix is the image's: P (rectified image), K (raw image; a non-zero D is "
                     "ignored and reported in /diagnostics), auto = P when the image topic has an image_rect* "
                     "name, else K",
    "frame_id": "frame_id of every output; empty = the input image's",
    "depth_encoding": "~/depth/image encoding: 32FC1 metres (NaN = none) or 16UC1 millimetres (0 = none)",
    "canonical_scale": "~/canonical image size relative to the input image (nearest neighbour)",
    "canonical_region": "~/canonical covers the whole image, or only the faces' bounding box (faces; its place in "
                        "the image is the roi of ~/canonical/camera_info)",
    "publish_depth": "publish ~/depth/image and ~/depth/camera_info",
    "publish_points": "publish ~/points",
    "publish_canonical": "publish ~/canonical",
    "publish_tracks": "publish ~/tracks",
    "publish_markers": "publish ~/track_markers",
    "publish_faces": "publish ~/faces",
    "publish_tf": "publish face_<id> frames on /tf (needs tf2_msgs)",
    "expected_rate_hz": "diagnostics WARN when fewer frames per second are processed; 0 = no check",
    "stale_after_s": "diagnostics STALE when no image arrived for this many seconds",
    "error_after_failures": "diagnostics ERROR after this many failed frames in a row",
}


def parameter_descriptor(name: str, default: Any) -> ParameterDescriptor:
    """The descriptor of ``NodeConfig`` field ``name`` (whose default value is ``default``)."""
    descriptor = ParameterDescriptor(name=name, description=DESCRIPTIONS[name], dynamic_typing=name in FLOAT_PARAMETERS)
    if name in NODE_RANGES:
        low, high = NODE_RANGES[name]
        if isinstance(default, int):
            descriptor.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=1)]
        else:
            descriptor.floating_point_range = [FloatingPointRange(from_value=float(low), to_value=float(high), step=0.0)]
    if name in NODE_CHOICES:
        descriptor.additional_constraints = f"one of: {', '.join(NODE_CHOICES[name])}"
    applied = "(applied from the next frame)" if name in RUNTIME_PARAMETERS else "(applied at the next configure)"
    descriptor.additional_constraints = " ".join(filter(None, [descriptor.additional_constraints, applied]))
    return descriptor


def declare_node_parameters(node: Node) -> None:
    """Declare every ``NodeConfig`` field as a parameter of ``node`` (default: the field's default).

    Overrides (``-p``, ``--params-file``) apply; a value outside its range or of the wrong type
    raises here, naming the parameter, before anything is configured.
    """
    for field in dataclasses.fields(NodeConfig):
        node.declare_parameter(field.name, field.default, parameter_descriptor(field.name, field.default))
    node.add_on_set_parameters_callback(lambda parameters: validate_changes(node, parameters))


def node_config(node: Node, changes: dict[str, Any] | None = None) -> NodeConfig:
    """The ``NodeConfig`` of ``node``'s current parameters (with ``changes`` applied on top).

    Raises ``ValueError`` naming the field when a value breaks ``NodeConfig``'s rules.
    """
    values = {field.name: node.get_parameter(field.name).value for field in dataclasses.fields(NodeConfig)}
    return NodeConfig(**_floats({**values, **(changes or {})}))


def runtime_config(node: Node, config: NodeConfig) -> NodeConfig:
    """``config`` with the current values of the ``RUNTIME_PARAMETERS``."""
    return dataclasses.replace(config, **_floats({name: node.get_parameter(name).value for name in RUNTIME_PARAMETERS}))


def _floats(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with integers of floating-point fields as floats (other values unchanged)."""
    return {name: float(value) if name in FLOAT_PARAMETERS and _is_integer(value) else value
            for name, value in values.items()}


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_changes(node: Node, parameters: Iterable[Parameter]) -> SetParametersResult:
    """Accept a parameter change only if the resulting ``NodeConfig`` is valid (QoS overrides pass)."""
    fields = {field.name for field in dataclasses.fields(NodeConfig)}
    changes = {p.name: p.value for p in parameters if p.name in fields}
    try:
        node_config(node, changes)
    except (ValueError, TypeError) as error:
        return SetParametersResult(successful=False, reason=str(error))
    return SetParametersResult(successful=True)
