"""The camera side of ``bench.node_graph``: publishes a face video at a fixed rate and records every output.

Run by path (``python bench/node_graph_client.py ...``) in a sourced colcon install of this
package, so ``faceanything_ros.msg`` comes from the install; ``bench.node_graph`` starts it and
reads its record. It imports rclpy, the message packages, OpenCV and numpy only.

It publishes ``sensor_msgs/Image`` (rgb8, built once per video frame, re-stamped per send) and a
``CameraInfo`` of the same stamp on ``<camera>/image`` and ``<camera>/camera_info`` with
sensor-data QoS (best effort, as camera drivers do), subscribes to every output it is given
(``--outputs``, from ``ros.outputs.OUTPUT_TYPES``; reliable, as the node publishes; serialized, as a
recorder does: the arrival time is taken before any deserialization, and only the stamp is read)
and to ``/diagnostics``. ``--warmup-frames`` are sent first and
not measured; the record (JSON) holds the send time of each measured stamp, the arrival time of
each output message by stamp, and every diagnostics snapshot of the node with its arrival time.
"""
from __future__ import annotations

import argparse
import array
import importlib
import json
import struct
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image

OUTPUT_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
FRAME_ID = "camera_color_optical_frame"
HORIZONTAL_FOV_DEG = 60.0  # the CameraInfo sent with every image
SEQUENCE_OF_STAMPED = {"visualization_msgs/msg/MarkerArray"}  # no header of their own: their first element's


def message_class(type_name: str) -> type:
    """The rclpy class of a ROS type name such as ``sensor_msgs/msg/Image``."""
    package, _, name = type_name.split("/")
    return getattr(importlib.import_module(f"{package}.msg"), name)


def video_frames(path: str, width: int, height: int, count: int, content: tuple[int, int] | None = None
                 ) -> list[np.ndarray]:
    """Up to ``count`` RGB frames of ``path``, centre-cropped to the ``width:height`` aspect and resized; with
    ``content`` (w, h), cropped and resized to that size instead and centred in a black ``width x height``
    frame (cut where larger), so that the face has the same pixels at every frame size."""
    fill_width, fill_height = content or (width, height)
    capture = cv2.VideoCapture(path)
    frames = []
    while len(frames) < count:
        ok, bgr = capture.read()
        if not ok:
            break
        rows, cols = bgr.shape[:2]
        keep_cols = min(cols, round(rows * fill_width / fill_height))
        keep_rows = min(rows, round(cols * fill_height / fill_width))
        top, left = (rows - keep_rows) // 2, (cols - keep_cols) // 2
        rgb = cv2.cvtColor(cv2.resize(bgr[top:top + keep_rows, left:left + keep_cols], (fill_width, fill_height),
                                      interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
        frames.append(rgb if content is None else centred(rgb, width, height))
    capture.release()
    if not frames:
        raise SystemExit(f"no frames could be read from {path}")
    return frames


def centred(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """``rgb`` in the middle of a black ``width x height`` image (its middle part where it is larger)."""
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    rows, cols = rgb.shape[:2]
    (src_v, dst_v, n_v), (src_u, dst_u, n_u) = ((max(0, (a - b) // 2), max(0, (b - a) // 2), min(a, b))
                                                for a, b in ((rows, height), (cols, width)))
    canvas[dst_v:dst_v + n_v, dst_u:dst_u + n_u] = rgb[src_v:src_v + n_v, src_u:src_u + n_u]
    return canvas


def stamp_ns(rawdata: bytes, type_name: str) -> int | None:
    """The header stamp (ns) of a serialized message (CDR) that starts with a ``std_msgs/Header``, or of the
    first element of one in ``SEQUENCE_OF_STAMPED`` (None when that is empty)."""
    order = "<" if rawdata[1] & 1 else ">"  # encapsulation kind: odd = little endian
    offset = 4  # after the encapsulation header
    if type_name in SEQUENCE_OF_STAMPED:
        (count,) = struct.unpack_from(f"{order}I", rawdata, offset)
        if not count:
            return None
        offset += 4
    sec, nanosec = struct.unpack_from(f"{order}iI", rawdata, offset)
    return sec * 1_000_000_000 + nanosec


def image_message(rgb: np.ndarray) -> Image:
    """An rgb8 ``Image`` of ``rgb`` (its stamp is set per send)."""
    height, width = rgb.shape[:2]
    message = Image(height=height, width=width, encoding="rgb8", is_bigendian=0, step=width * 3)
    message.header.frame_id = FRAME_ID
    message.data = array.array("B", rgb.tobytes())  # rclpy's fast path (bytes are copied per element)
    return message


def camera_info_message(width: int, height: int) -> CameraInfo:
    """A distortion-free pinhole ``CameraInfo`` of ``HORIZONTAL_FOV_DEG``, principal point at the centre."""
    focal = width / 2.0 / np.tan(np.radians(HORIZONTAL_FOV_DEG) / 2.0)
    k = [focal, 0.0, (width - 1) / 2.0, 0.0, focal, (height - 1) / 2.0, 0.0, 0.0, 1.0]
    message = CameraInfo(width=width, height=height, distortion_model="plumb_bob", d=[0.0] * 5, k=k,
                         r=[1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0], p=k[:3] + [0.0] + k[3:6] + [0.0] + k[6:] + [0.0])
    message.header.frame_id = FRAME_ID
    return message


class Camera:
    """Publishers of the camera topics, subscribers of the node's outputs and diagnostics, and their record."""

    def __init__(self, node_name: str, camera: str, outputs: dict[str, str]) -> None:
        self.node = rclpy.create_node("faceanything_bench_camera")
        self.lock = threading.Lock()
        self.received: dict[str, dict[int, float]] = {name: {} for name in outputs}
        self.output_subscriptions = [
            self.node.create_subscription(message_class(type_name), f"{node_name}/{name}",
                                          self._keeper(name, type_name), OUTPUT_QOS, raw=True)
            for name, type_name in outputs.items()]
        self.diagnostics: list[tuple[float, dict[str, str]]] = []
        self.status_name = f"{node_name.lstrip('/')}:"
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, OUTPUT_QOS)
        self.image_publisher = self.node.create_publisher(Image, f"{camera}/image", qos_profile_sensor_data)
        self.info_publisher = self.node.create_publisher(CameraInfo, f"{camera}/camera_info", qos_profile_sensor_data)

    def _keeper(self, name: str, type_name: str):
        def keep(rawdata: bytes) -> None:
            now = time.monotonic()
            stamp = stamp_ns(rawdata, type_name)
            if stamp is not None:
                with self.lock:
                    self.received[name][stamp] = now
        return keep

    def _on_diagnostics(self, message: DiagnosticArray) -> None:
        for status in message.status:
            if status.name.startswith(self.status_name):
                with self.lock:
                    self.diagnostics.append((time.monotonic(), {kv.key: kv.value for kv in status.values}))

    def connected(self) -> bool:
        """The node's image subscription and every output publisher are matched."""
        return self.image_publisher.get_subscription_count() > 0 and all(
            subscription.get_publisher_count() > 0 for subscription in self.output_subscriptions)

    def send(self, images: list[Image], info: CameraInfo, count: int, rate_hz: float, first_stamp_ns: int
             ) -> dict[int, float]:
        """Publish ``count`` images (``images`` looped) at ``rate_hz``; ``{stamp_ns: send time}``."""
        sent: dict[int, float] = {}
        start = time.monotonic()
        for index in range(count):
            time.sleep(max(0.0, start + index / rate_hz - time.monotonic()))
            stamp_ns = first_stamp_ns + index * round(1e9 / rate_hz)
            message = images[index % len(images)]
            message.header.stamp.sec, message.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
            info.header.stamp = message.header.stamp
            self.info_publisher.publish(info)
            sent[stamp_ns] = time.monotonic()
            self.image_publisher.publish(message)
        return sent


def wait(condition, timeout_s: float) -> bool:
    """Poll ``condition`` every 50 ms (the executor spins in its own thread) until true or ``timeout_s``."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", required=True)
    parser.add_argument("--size", required=True, help="WIDTHxHEIGHT of the published images")
    parser.add_argument("--content", help="WIDTHxHEIGHT: the video at this size, centred in every image "
                                          "(default: the video fills the image)")
    parser.add_argument("--rate-hz", type=float, required=True)
    parser.add_argument("--frames", type=int, required=True, help="measured frames")
    parser.add_argument("--warmup-frames", type=int, required=True)
    parser.add_argument("--video-frames", type=int, required=True, help="frames decoded and looped")
    parser.add_argument("--node", required=True, help="the node's absolute name, e.g. /faceanything")
    parser.add_argument("--camera", required=True, help="camera namespace, e.g. /camera")
    parser.add_argument("--outputs", nargs="+", required=True,
                        help="the node's private outputs to subscribe, as KEY=TYPE (depth/image=sensor_msgs/msg/Image)")
    parser.add_argument("--settle-s", type=float, default=3.0, help="wait after the last frame for outputs")
    parser.add_argument("--connect-timeout-s", type=float, default=120.0, help="wait for the node's topics")
    parser.add_argument("--out", type=Path, required=True, help="record JSON")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    content = tuple(int(v) for v in args.content.split("x")) if args.content else None
    images = [image_message(rgb) for rgb in video_frames(args.video, width, height, args.video_frames, content)]
    info = camera_info_message(width, height)
    rclpy.init()
    camera = Camera(args.node, args.camera, dict(output.split("=", 1) for output in args.outputs))
    executor = SingleThreadedExecutor()
    executor.add_node(camera.node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    record: dict = {"size": [width, height], "content": content, "video_frames": len(images)}
    try:
        if not wait(camera.connected, args.connect_timeout_s):
            raise SystemExit(f"the node's topics did not match within {args.connect_timeout_s:g} s")
        time.sleep(1.0)  # let DDS finish the node's side of the matches before best-effort images
        camera.send(images, info, args.warmup_frames, args.rate_hz, first_stamp_ns=1_000_000_000)
        time.sleep(args.settle_s)
        with camera.lock:
            record["diagnostics_before"] = camera.diagnostics[-1] if camera.diagnostics else None
        record["measure_start_wall"] = time.time()
        start = time.monotonic()
        sent = camera.send(images, info, args.frames, args.rate_hz, first_stamp_ns=1_000_000_000_000)
        record["send_s"] = time.monotonic() - start
        time.sleep(args.settle_s)
        with camera.lock:
            record["diagnostics_after"] = camera.diagnostics[-1] if camera.diagnostics else None
            record["sent"] = {str(stamp): t for stamp, t in sent.items()}
            record["received"] = {name: {str(s): t for s, t in times.items() if s in sent}
                                  for name, times in camera.received.items()}
        args.out.write_text(json.dumps(record))  # before the shutdown: the record is complete here
    finally:
        executor.shutdown()
        spinner.join(timeout=5.0)  # no callback runs while the node is destroyed
        camera.node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
