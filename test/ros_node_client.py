"""Test client of test_ros_node.py: drives a running faceanything node and records what it publishes.

Run in a sourced colcon install of this package (it subscribes to ``faceanything_ros/msg``):

    python ros_node_client.py SCENARIO OUT_DIR VIDEO

``lifecycle``: the node starts unconfigured; the client configures and activates it through its
lifecycle services, sends face frames in lock step (each with a CameraInfo of the same stamp
and a K that differs per frame), then bad frames, a frame without a face, a burst faster than
the model runs, and finally deactivates, cleans up, configures and activates it again.
``plain``: the node configured and activated itself and reads ``image/compressed``; the client
sends JPEG frames without CameraInfo. ``mesh``: the face-mesh method with no model
(``ros_node_mesh_scenario.py``): every output incl. faces and TF, outputs nobody subscribes to,
deactivate during processing, reconfigure with new parameter values.

Nothing is asserted here: ``OUT_DIR/record.json`` (events, states, parameter descriptors,
diagnostics snapshots, message headers, latencies) and ``OUT_DIR/arrays.npz`` (decoded outputs
of the lock-step frames) are checked by the tests. The decoding here uses numpy only, not the
package's conversions, so the tests check the node against an independent reader.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.srv import DescribeParameters, GetParameters
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from visualization_msgs.msg import MarkerArray

from faceanything_ros.msg import CanonicalTrackArray, FaceArray
from tf2_msgs.msg import TFMessage

# The test names the node and the camera topics per run, so concurrent runs sharing a DDS domain stay apart.
NODE = os.environ.get("FACEANYTHING_TEST_NODE", "/faceanything")
CAMERA = os.environ.get("FACEANYTHING_TEST_CAMERA", "/camera")
FRAME_ID = "camera_color_optical_frame"
IMAGE_TOPIC = f"{CAMERA}/image"
INFO_TOPIC = f"{CAMERA}/camera_info"
OUTPUTS = {"depth/image": Image, "depth/camera_info": CameraInfo, "canonical": Image,
           "canonical/camera_info": CameraInfo, "points": PointCloud2, "tracks": CanonicalTrackArray, "track_markers": MarkerArray, "faces": FaceArray, "tf": TFMessage}
GLOBAL = {"tf": "/tf"}
RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)


def stamp_ns(header) -> int:
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


class Client:
    """Publishers of images and camera infos, subscribers of every node output, service clients."""

    def __init__(self, compressed: bool) -> None:
        self.node = rclpy.create_node("faceanything_test_client")
        self.received: dict[str, list[tuple[float, object]]] = {name: [] for name in OUTPUTS}
        self.output_subscriptions = {
            name: self.node.create_subscription(msg_type, GLOBAL.get(name, f"{NODE}/{name}"), self._keeper(name),
                                                RELIABLE)
            for name, msg_type in OUTPUTS.items()}
        self.diagnostics: list[tuple[float, dict[str, str]]] = []
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, RELIABLE)
        image_type, topic = (CompressedImage, IMAGE_TOPIC + "/compressed") if compressed else (Image, IMAGE_TOPIC)
        self.image_publisher = self.node.create_publisher(image_type, topic, RELIABLE)
        self.info_publisher = self.node.create_publisher(CameraInfo, INFO_TOPIC, RELIABLE)
        self.sent_at: dict[int, float] = {}

    def _keeper(self, name: str):
        return lambda msg: self.received[name].append((time.monotonic(), msg))

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.startswith(f"{NODE.lstrip('/')}:"):
                values = {kv.key: kv.value for kv in status.values}
                self.diagnostics.append((time.monotonic(), {"level": int.from_bytes(status.level, "little"),
                                                            **values}))

    def spin_until(self, done, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while not done():
            if time.monotonic() > deadline:
                return False
            rclpy.spin_once(self.node, timeout_sec=0.05)
        return True

    def wait_connected(self, timeout_s: float) -> bool:
        """Until the image publisher matches the node's subscription and every output subscription its
        publisher, then 0.5 s for DDS to finish the node's side of the matches (a best-effort image
        sent before that is lost)."""
        connected = self.spin_until(lambda: self.image_publisher.get_subscription_count() > 0 and all(
            subscription.get_publisher_count() > 0 for subscription in self.output_subscriptions.values()), timeout_s)
        self.spin_until(lambda: False, 0.5)
        return connected

    def call(self, srv_type, name: str, request, timeout_s: float = 60.0):
        client = self.node.create_client(srv_type, f"{NODE}/{name}")
        if not client.wait_for_service(timeout_sec=120.0):  # the node imports torch first: slow on a busy machine
            raise RuntimeError(f"service {NODE}/{name} not available")
        future = client.call_async(request)
        answered = self.spin_until(future.done, timeout_s)
        self.node.destroy_client(client)
        if not answered:
            raise RuntimeError(f"service {NODE}/{name} gave no answer within {timeout_s:.0f} s")
        return future.result()

    def state(self) -> str:
        return self.call(GetState, "get_state", GetState.Request()).current_state.label

    def transition(self, transition_id: int) -> bool:
        request = ChangeState.Request()
        request.transition.id = transition_id
        # configure loads the model, builds every engine shape and runs a warm-up: minutes on a busy CPU
        return bool(self.call(ChangeState, "change_state", request, timeout_s=300.0).success)

    def publish_image(self, msg, stamp: int) -> None:
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
        msg.header.frame_id = FRAME_ID
        self.sent_at[stamp] = time.monotonic()
        self.image_publisher.publish(msg)

    def publish_info(self, stamp: int, k: np.ndarray, width: int, height: int) -> None:
        msg = CameraInfo(width=width, height=height, distortion_model="plumb_bob")
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
        msg.header.frame_id = FRAME_ID
        msg.k = k.reshape(-1).tolist()
        msg.d = [0.0] * 5
        msg.r = np.eye(3).reshape(-1).tolist()
        msg.p = np.concatenate([k, np.zeros((3, 1))], axis=1).reshape(-1).tolist()
        self.info_publisher.publish(msg)

    def outputs_for(self, stamp: int) -> dict[str, object]:
        found = {}
        for name, messages in self.received.items():
            for _, msg in messages:
                header = header_message(name, msg)
                if header is not None and stamp_ns(header) == stamp:
                    found[name] = msg
        return found

    def wait_outputs(self, stamp: int, timeout_s: float = 60.0, names=None) -> bool:
        """Until every output in ``names`` (default: all but TF, which a face-less frame lacks) arrived."""
        names = set(OUTPUTS) - {"tf"} if names is None else set(names)
        return self.spin_until(lambda: names <= set(self.outputs_for(stamp)), timeout_s)

    def diagnostics_after(self, moment: float, timeout_s: float = 5.0) -> dict[str, str]:
        self.spin_until(lambda: any(t > moment for t, _ in self.diagnostics), timeout_s)
        later = [values for t, values in self.diagnostics if t > moment]
        return later[0] if later else {}

    def idle_diagnostics(self, moment: float, timeout_s: float) -> dict[str, str]:
        """The first diagnostics after ``moment`` of an idle node: no frame waiting or in flight
        (``frames_pending`` 0) and no new frame since the previous diagnostics; {} on timeout."""
        def idle(previous: dict[str, str], values: dict[str, str]) -> bool:
            return values.get("frames_pending") == "0" and values.get("frames_in") == previous.get("frames_in")

        def found() -> dict[str, str] | None:
            later = [values for t, values in self.diagnostics if t > moment]
            return next((b for a, b in zip(later, later[1:]) if idle(a, b)), None)

        self.spin_until(lambda: found() is not None, timeout_s)
        return found() or {}


def raw_image(rgb: np.ndarray, encoding: str = "rgb8", step: int | None = None) -> Image:
    height, width = rgb.shape[:2]
    return Image(height=height, width=width, encoding=encoding, step=width * 3 if step is None else step,
                 data=rgb.tobytes())


def intrinsics(index: int, width: int, height: int) -> np.ndarray:
    """A different, valid K per frame, so the outputs show which CameraInfo the node used."""
    focal = 520.0 + 15.0 * index
    return np.array([[focal, 0.0, (width - 1) / 2], [0.0, focal, (height - 1) / 2], [0.0, 0.0, 1.0]])


def header_message(name: str, msg):
    """The header of an output message (TF: its first transform's; None when it has none)."""
    if name == "track_markers":
        return msg.markers[0].header
    if name == "tf":
        return msg.transforms[0].header if msg.transforms else None
    return msg.header


def decode(name: str, msg) -> dict[str, np.ndarray]:
    """Output message -> arrays (numpy only) and header facts."""
    if name in ("depth/image", "canonical"):
        channels, dtype = {"32FC1": (1, "<f4"), "32FC3": (3, "<f4"), "16UC1": (1, "<u2")}[msg.encoding]
        size = np.dtype(dtype).itemsize
        pixels = np.frombuffer(bytes(msg.data), dtype).reshape(msg.height, msg.step // size)
        return {"pixels": pixels[:, : msg.width * channels].reshape(msg.height, msg.width, channels)}
    if name == "faces":
        faces = list(msg.faces)
        return {"ids": np.array([f.id for f in faces], np.int64),
                "boxes": np.array([[f.x_min, f.y_min, f.x_max, f.y_max] for f in faces]).reshape(-1, 4),
                "pose_valid": np.array([f.pose_valid for f in faces], bool),
                "xyz": np.array([[f.pose.position.x, f.pose.position.y, f.pose.position.z] for f in faces]).reshape(-1, 3),
                "quaternion": np.array([[f.pose.orientation.x, f.pose.orientation.y, f.pose.orientation.z,
                                         f.pose.orientation.w] for f in faces]).reshape(-1, 4),
                "num_pixels": np.array([f.num_pixels for f in faces], np.int64)}
    if name == "tf":
        transforms = list(msg.transforms)
        return {"children": np.array([t.child_frame_id for t in transforms]),
                "parents": np.array([t.header.frame_id for t in transforms]),
                "xyz": np.array([[t.transform.translation.x, t.transform.translation.y, t.transform.translation.z]
                                 for t in transforms]).reshape(-1, 3)}
    if name == "points":
        dtype = np.dtype({"names": [f.name for f in msg.fields], "offsets": [f.offset for f in msg.fields],
                          "formats": ["<f4" if f.datatype == 7 else "u1" for f in msg.fields],
                          "itemsize": msg.point_step})
        cloud = np.frombuffer(bytes(msg.data), dtype=dtype, count=msg.width * msg.height)
        arrays = {f"field_{f.name}": np.ascontiguousarray(cloud[f.name]) for f in msg.fields}
        arrays["datatypes"] = np.array([f.datatype for f in msg.fields])
        return arrays
    if name == "tracks":
        tracks = list(msg.tracks)
        return {"ids": np.array([t.id for t in tracks], np.int64),
                "uv": np.array([[t.u, t.v] for t in tracks], np.float64).reshape(-1, 2),
                "xyz": np.array([[t.position.x, t.position.y, t.position.z] for t in tracks]).reshape(-1, 3),
                "visible": np.array([t.visible for t in tracks], bool),
                "face_ids": np.array([t.face_id for t in tracks], np.int64),
                "confidence": np.array([t.confidence for t in tracks], np.float64)}
    if name == "track_markers":
        return {"actions": np.array([m.action for m in msg.markers]), "types": np.array([m.type for m in msg.markers]),
                "counts": np.array([len(m.points) for m in msg.markers]),
                "xyz": np.array([[p.x, p.y, p.z] for m in msg.markers for p in m.points]).reshape(-1, 3)}
    return {"k": np.array(msg.k).reshape(3, 3), "size": np.array([msg.width, msg.height]), "d": np.array(msg.d),
            "roi": np.array([msg.roi.x_offset, msg.roi.y_offset, msg.roi.width, msg.roi.height])}


def header_of(name: str, msg) -> list:
    header = header_message(name, msg)
    return [stamp_ns(header), header.frame_id] + ([msg.encoding] if name in ("depth/image", "canonical") else [])


def save_frame(client: Client, stamp: int, label: str, record: dict, arrays: dict) -> None:
    outputs = client.outputs_for(stamp)
    record["frames"][label] = {"stamp": stamp, "headers": {n: header_of(n, m) for n, m in outputs.items()}}
    for name, msg in outputs.items():
        for key, value in decode(name, msg).items():
            arrays[f"{label}/{name}/{key}"] = value


def lifecycle_scenario(client: Client, frames: list[np.ndarray], record: dict, arrays: dict) -> None:
    height, width = frames[0].shape[:2]
    record["states"] = [client.state()]
    described = client.call(DescribeParameters, "describe_parameters", DescribeParameters.Request(
        names=["model", "window", "mask_threshold", "max_rate_hz", "engine", "point_stride"]))
    record["descriptors"] = {d.name: {
        "read_only": d.read_only, "description": d.description, "constraints": d.additional_constraints,
        "float_range": [[r.from_value, r.to_value] for r in d.floating_point_range],
        "int_range": [[r.from_value, r.to_value, r.step] for r in d.integer_range]} for d in described.descriptors}
    values = client.call(GetParameters, "get_parameters", GetParameters.Request(names=["mask_threshold", "num_tracks"]))
    record["parameter_values"] = [values.values[0].double_value, values.values[1].integer_value]
    record["configure_ok"] = client.transition(Transition.TRANSITION_CONFIGURE)
    record["states"].append(client.state())
    record["activate_ok"] = client.transition(Transition.TRANSITION_ACTIVATE)
    record["states"].append(client.state())
    client.wait_connected(20.0)

    # lock step: the next frame after all outputs arrived. Each frame has a CameraInfo of its stamp,
    # sent with the previous frame: when a frame is processed, the latest info is the next frame's,
    # so only matching by stamp gives the frame its own K.
    stamps = [1_000 * 1_000_000_000 + i * 33_000_000 for i in range(len(frames))]
    record["k_sent"] = {f"face{i}": intrinsics(i, width, height).tolist() for i in range(len(frames))}
    client.publish_info(stamps[0], intrinsics(0, width, height), width, height)
    round_trips = []
    for i, (rgb, stamp) in enumerate(zip(frames, stamps)):
        if i + 1 < len(frames):
            client.publish_info(stamps[i + 1], intrinsics(i + 1, width, height), width, height)
        client.spin_until(lambda: False, 0.3)  # let the infos arrive: they travel apart from the image
        client.publish_image(raw_image(rgb), stamp)
        record.setdefault("lockstep_ok", []).append(client.wait_outputs(stamp))
        round_trips.append(max((t for t, m in client.received["depth/image"] if stamp_ns(m.header) == stamp),
                               default=float("nan")) - client.sent_at[stamp])
        save_frame(client, stamp, f"face{i}", record, arrays)
    record["lockstep_round_trips_s"] = round_trips
    record["diagnostics_lockstep"] = client.diagnostics_after(time.monotonic())

    # bad input, then a frame whose CameraInfo is for another image size, a face-less frame, a good frame
    bad_stamp = 2_000 * 1_000_000_000
    bad_frames = [raw_image(frames[0], encoding="yuv_unknown"), raw_image(frames[0], step=width * 3 - 3),
                  Image(height=0, width=0, encoding="rgb8", step=0, data=b"")]
    for i, msg in enumerate(bad_frames):
        client.publish_image(msg, bad_stamp + i)
        client.spin_until(lambda: False, 0.3)  # one at a time through the node's shallow input queue
    client.publish_info(bad_stamp + 3, intrinsics(0, 320, 240), 320, 240)
    client.spin_until(lambda: False, 0.5)
    client.publish_image(raw_image(frames[1]), bad_stamp + 3)
    record["bad_size_info_ok"] = client.wait_outputs(bad_stamp + 3)
    save_frame(client, bad_stamp + 3, "wrong_info", record, arrays)
    blank = np.full_like(frames[0], 128)
    client.publish_info(bad_stamp + 4, intrinsics(0, width, height), width, height)
    client.spin_until(lambda: False, 0.3)
    client.publish_image(raw_image(blank), bad_stamp + 4)
    record["no_face_ok"] = client.wait_outputs(bad_stamp + 4)
    save_frame(client, bad_stamp + 4, "no_face", record, arrays)
    client.publish_image(raw_image(frames[2]), bad_stamp + 5)
    record["after_bad_ok"] = client.wait_outputs(bad_stamp + 5)
    record["diagnostics_bad"] = client.idle_diagnostics(time.monotonic(), 60.0)

    # burst: 40 frames at 50 Hz, much faster than the model runs on a CPU
    burst = [3_000 * 1_000_000_000 + i * 20_000_000 for i in range(40)]
    for i, stamp in enumerate(burst):
        client.publish_image(raw_image(frames[i % len(frames)]), stamp)
        client.spin_until(lambda: False, 0.02)
    # until the node is idle (every frame it received is out, dropped or failed; however slow the
    # machine), then until every frame it processed has arrived here
    record["diagnostics_burst"] = client.idle_diagnostics(time.monotonic(), 120.0)
    processed = int(record["diagnostics_burst"].get("frames_out", 0)) - int(record["diagnostics_bad"]["frames_out"])
    burst_outputs = lambda: {stamp_ns(m.header): t for t, m in client.received["depth/image"]
                             if stamp_ns(m.header) in set(burst)}
    client.spin_until(lambda: len(burst_outputs()) >= processed, 10.0)
    record["burst"] = {"sent": len(burst),
                       "latencies_s": [t - client.sent_at[s] for s, t in sorted(burst_outputs().items())]}

    # deactivate: no outputs; cleanup; configure and activate again: outputs again
    record["deactivate_ok"] = client.transition(Transition.TRANSITION_DEACTIVATE)
    record["states"].append(client.state())
    inactive_stamp = 4_000 * 1_000_000_000
    client.publish_image(raw_image(frames[0]), inactive_stamp)
    client.spin_until(lambda: False, 1.5)
    record["outputs_while_inactive"] = len(client.outputs_for(inactive_stamp))
    record["cleanup_ok"] = client.transition(Transition.TRANSITION_CLEANUP)
    record["states"].append(client.state())
    record["reconfigure_ok"] = client.transition(Transition.TRANSITION_CONFIGURE)
    record["reactivate_ok"] = client.transition(Transition.TRANSITION_ACTIVATE)
    record["states"].append(client.state())
    client.wait_connected(20.0)
    client.publish_image(raw_image(frames[0]), inactive_stamp + 1)
    record["outputs_after_reactivate"] = client.wait_outputs(inactive_stamp + 1)


def plain_scenario(client: Client, frames: list[np.ndarray], record: dict, arrays: dict) -> None:
    client.wait_connected(60.0)

    def jpeg_message(rgb: np.ndarray) -> CompressedImage:
        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        return CompressedImage(format="jpeg", data=jpeg.tobytes())

    # The input is best effort: a frame sent while the node's side of the discovery is still
    # settling can be lost, so warm up until one frame comes back before the lock-step frames.
    record["warmup_attempts"] = None
    for attempt in range(1, 7):
        stamp = 4_000 * 1_000_000_000 + attempt
        client.publish_image(jpeg_message(frames[0]), stamp)
        if client.wait_outputs(stamp, timeout_s=20.0):
            record["warmup_attempts"] = attempt
            break
    for i, rgb in enumerate(frames[:2]):
        stamp = 5_000 * 1_000_000_000 + i
        client.publish_image(jpeg_message(rgb), stamp)
        record.setdefault("lockstep_ok", []).append(client.wait_outputs(stamp))
        save_frame(client, stamp, f"jpeg{i}", record, arrays)
    record["diagnostics"] = client.diagnostics_after(time.monotonic())


def main(scenario: str, out_dir: Path, video: Path) -> None:
    capture = cv2.VideoCapture(str(video))
    frames = []
    while len(frames) < 4:
        ok, bgr = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    rclpy.init()
    client = Client(compressed=scenario == "plain")
    record: dict = {"frames": {}}
    arrays: dict = {}
    if scenario == "mesh":
        from ros_node_mesh_scenario import mesh_scenario as run_scenario
    else:
        run_scenario = lifecycle_scenario if scenario == "lifecycle" else plain_scenario
    try:
        run_scenario(client, frames, record, arrays)
    finally:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "record.json").write_text(json.dumps(record, indent=1))
        np.savez(out_dir / "arrays.npz", **arrays)
        client.node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]))
