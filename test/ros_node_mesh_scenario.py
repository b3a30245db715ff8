"""``ros_node_client.py mesh``: the node with the face-mesh method and no model, driven through its lifecycle.

Steps (all recorded, nothing asserted; test_ros_node.py checks): a configure with method model and
no model fails (the node logs why), method mesh configures; lock-step face frames with a
CameraInfo of their stamp, every output subscribed (TF included); the same with no ``~/points``
subscriber; a burst then deactivate while a frame is in flight; cleanup, new parameter values
(``depth_encoding`` 16UC1, ``frame_id``, ``canonical_scale`` 0.5, ``num_tracks`` 16, ``canonical_region``
image), configure,
activate and one more frame.
"""
from __future__ import annotations

import time

from lifecycle_msgs.msg import Transition
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters

from ros_node_client import Client, intrinsics, raw_image, save_frame, stamp_ns

NEW_VALUES = {"depth_encoding": "16UC1", "frame_id": "head_camera", "canonical_scale": 0.5, "num_tracks": 16,
              "canonical_region": "image"}


def parameter(name: str, value) -> Parameter:
    if isinstance(value, str):
        return Parameter(name=name, value=ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value))
    if isinstance(value, float):
        return Parameter(name=name, value=ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value))
    return Parameter(name=name, value=ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=value))


def set_parameters(client: Client, values: dict) -> list[bool]:
    request = SetParameters.Request(parameters=[parameter(name, value) for name, value in values.items()])
    return [result.successful for result in client.call(SetParameters, "set_parameters", request).results]


MISSING_MODEL = "/nonexistent/faceanything_model.safetensors"  # method model with a model that is not there


def lockstep(client: Client, frames, stamps, label: str, record: dict, arrays: dict, names=None) -> list[bool]:
    """Each frame with a CameraInfo of its stamp, the next one once its outputs (``names``) arrived."""
    height, width = frames[0].shape[:2]
    done = []
    for i, (rgb, stamp) in enumerate(zip(frames, stamps)):
        client.publish_info(stamp, intrinsics(i, width, height), width, height)
        client.spin_until(lambda: False, 0.2)
        client.publish_image(raw_image(rgb), stamp)
        done.append(client.wait_outputs(stamp, names=names))
        client.spin_until(lambda: False, 0.2)  # late TF / points, if any
        save_frame(client, stamp, f"{label}{i}", record, arrays)
    return done


def mesh_scenario(client: Client, frames, record: dict, arrays: dict) -> None:
    record["set_model_ok"] = set_parameters(client, {"method": "model", "model": MISSING_MODEL})
    record["configure_without_model_ok"] = client.transition(Transition.TRANSITION_CONFIGURE)
    record["set_mesh_ok"] = set_parameters(client, {"method": "mesh", "model": ""})
    started = time.monotonic()
    record["configure_ok"] = client.transition(Transition.TRANSITION_CONFIGURE)
    record["configure_s"] = time.monotonic() - started
    record["activate_ok"] = client.transition(Transition.TRANSITION_ACTIVATE)
    record["connected"] = client.wait_connected(30.0)
    record["k_sent"] = [intrinsics(i, *frames[0].shape[1::-1]).tolist() for i in range(3)]
    record["lockstep_ok"] = lockstep(client, frames[:3], [1_000 * 10**9 + i * 33_000_000 for i in range(3)],
                                     "mesh", record, arrays, names=set(client.received))
    record["diagnostics_all"] = client.diagnostics_after(time.monotonic())

    # nobody listens to ~/points: the node builds no cloud and counts it
    client.node.destroy_subscription(client.output_subscriptions.pop("points"))
    client.spin_until(lambda: False, 1.0)
    without = [2_000 * 10**9 + i * 33_000_000 for i in range(2)]
    record["no_points_ok"] = lockstep(client, frames[:2], without, "nopoints", record, arrays,
                                      names=set(client.received) - {"points", "tf"})
    record["points_for_unsubscribed"] = sum(stamp_ns(m.header) in without for _, m in client.received["points"])
    record["diagnostics_no_points"] = client.diagnostics_after(time.monotonic())

    # deactivate while frames are in flight
    for i in range(15):
        client.publish_image(raw_image(frames[i % len(frames)]), 3_000 * 10**9 + i * 20_000_000)
        client.spin_until(lambda: False, 0.02)
    started = time.monotonic()
    record["deactivate_ok"] = client.transition(Transition.TRANSITION_DEACTIVATE)
    record["deactivate_s"] = time.monotonic() - started
    deactivated = time.monotonic()
    client.spin_until(lambda: False, 1.5)
    record["outputs_after_deactivate"] = sum(t > deactivated + 0.2 for t, _ in client.received["depth/image"])
    record["state_after_deactivate"] = client.state()

    # new parameter values take effect at the next configure
    record["cleanup_ok"] = client.transition(Transition.TRANSITION_CLEANUP)
    record["set_new_values_ok"] = set_parameters(client, NEW_VALUES)
    record["reconfigure_ok"] = client.transition(Transition.TRANSITION_CONFIGURE)
    record["reactivate_ok"] = client.transition(Transition.TRANSITION_ACTIVATE)
    client.wait_connected(30.0)
    record["after_reconfigure_ok"] = lockstep(client, frames[:1], [4_000 * 10**9], "reconfigured", record, arrays,
                                              names=set(client.output_subscriptions))
