"""ROS parameters of the faceanything node: one per ``NodeConfig`` field, same name, same range.

Ranges come from ``config.NODE_RANGES`` and string choices from ``config.NODE_CHOICES``, so the
descriptors shown by ``ros2 param describe`` and the dataclass's validation cannot disagree.
Parameters that only apply when the node configures (model, engine, QoS, ...) are read-only:
set them at start-up (``--ros-args -p`` / ``--params-file``); ``RUNTIME_PARAMETERS`` can also be
changed while the node runs, and every change is validated by building a ``NodeConfig``.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter

from faceanything_ros.config import NODE_CHOICES, NODE_RANGES, NodeConfig

# Applied on the next processed frame; everything else is read when the node configures.
RUNTIME_PARAMETERS = frozenset({"max_rate_hz", "point_stride"})

DESCRIPTIONS: dict[str, str] = {
    "model": "checkpoint path (.safetensors); empty = the bundled model",
    "engine": "inference engine; auto picks the fastest available on the device",
    "device": "torch device, e.g. cpu, cuda, cuda:1",
    "window": "frames the model sees jointly: the newest plus window-1 previous ones as context",
    "max_rate_hz": "processed frames per second at most (newer frames replace waiting ones); 0 = unlimited",
    "num_tracks": "query grid size when (re)seeding canonical tracks",
    "reseed": "track re-seeding: never, on_loss (visible fraction < reseed_min_visible), every_n frames",
    "reseed_min_visible": "fraction of visible tracks below which reseed=on_loss re-seeds",
    "reseed_every_n": "processed frames between re-seeds for reseed=every_n (>= 1 then)",
    "min_depth_confidence": "depth confidence (>= 1; 1 = keep all) below which a pixel leaves ~/points",
    "mask_threshold": "face-mask probability threshold; pixels below it are NaN in ~/depth",
    "track_max_distance": "canonical nearest-neighbour distance above which a track is not visible",
    "track_min_confidence": "canonical confidence (>= 1; 1 = all) below which a pixel is not searched",
    "face_min_confidence": "face detector score threshold",
    "max_faces": "faces reconstructed per frame, largest first",
    "point_stride": "keep every n-th pixel row and column in ~/points",
    "input": "raw subscribes to `image` (sensor_msgs/Image), compressed to `image/compressed`",
    "qos_reliability": "reliability of the image and camera_info subscriptions (sensor-data QoS by default)",
    "qos_depth": "history depth of the image and camera_info subscriptions",
}


def parameter_descriptor(name: str, default: Any) -> ParameterDescriptor:
    """The descriptor of ``NodeConfig`` field ``name`` (whose default value is ``default``)."""
    descriptor = ParameterDescriptor(
        name=name, description=DESCRIPTIONS[name], read_only=name not in RUNTIME_PARAMETERS)
    if name in NODE_RANGES:
        low, high = NODE_RANGES[name]
        if isinstance(default, int):
            descriptor.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=1)]
        else:
            descriptor.floating_point_range = [FloatingPointRange(from_value=float(low), to_value=float(high), step=0.0)]
    if name in NODE_CHOICES:
        descriptor.additional_constraints = f"one of: {', '.join(NODE_CHOICES[name])}"
    if name not in RUNTIME_PARAMETERS:
        descriptor.additional_constraints = " ".join(
            filter(None, [descriptor.additional_constraints, "(read when the node configures)"]))
    return descriptor


def declare_node_parameters(node: Node) -> None:
    """Declare every ``NodeConfig`` field as a parameter of ``node`` (default: the field's default).

    Overrides (``-p``, ``--params-file``) apply; a value outside its range or of the wrong type
    raises here, naming the parameter, before anything is configured.
    """
    for field in dataclasses.fields(NodeConfig):
        default = field.default
        node.declare_parameter(field.name, default, parameter_descriptor(field.name, default))
    node.add_on_set_parameters_callback(lambda parameters: validate_changes(node, parameters))


def node_config(node: Node, changes: dict[str, Any] | None = None) -> NodeConfig:
    """The ``NodeConfig`` of ``node``'s current parameters (with ``changes`` applied on top).

    Raises ``ValueError`` naming the field when a value breaks ``NodeConfig``'s rules.
    """
    values = {field.name: node.get_parameter(field.name).value for field in dataclasses.fields(NodeConfig)}
    return NodeConfig(**{**values, **(changes or {})})


def validate_changes(node: Node, parameters: list[Parameter]) -> SetParametersResult:
    """Accept a parameter change only if the resulting ``NodeConfig`` is valid (QoS overrides pass)."""
    fields = {field.name for field in dataclasses.fields(NodeConfig)}
    changes = {p.name: p.value for p in parameters if p.name in fields}
    try:
        node_config(node, changes)
    except (ValueError, TypeError) as error:
        return SetParametersResult(successful=False, reason=str(error))
    return SetParametersResult(successful=True)
