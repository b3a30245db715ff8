"""CPU a frame of building and publishing the node's outputs: rclpy message objects vs rosbags CDR bytes.

Usage (repository root): ``python -m bench.output_messages [--method mesh] [--sizes 640x480 1280x720]
[--workspace WS] [--json PATH]``. The rclpy classes of this package's messages exist only in a
colcon build, so the measurement runs in a child process with the install of ``--workspace``
sourced (default: this repository built in a temporary folder, as ``bench.node_graph`` does).

Frames of a shared face video are processed once (``FrameProcessor``, every output switched on,
``--num-tracks`` tracks); then every output of each frame is built and published on a real
rclpy publisher, with a raw subscriber to every output in another process (``listen``; in the
workspace child both run on the package's Fast DDS profile, as on a robot), two ways, interleaved
per output: from the rclpy message classes (``publish(message)``), and as ``OutputPublishers``
does, built from the rosbags typestore and published as CDR bytes (``publish(bytes)``). Reports
the median thread CPU of each output and their sum, in ms. The frame-level maps are made before
timing, so both ways time message work only.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rclpy

from bench.common import report
from bench.node_graph import DEFAULT_VIDEO, REPO_ROOT, build_workspace, graph_environment, sourced
from bench.node_graph_client import video_frames
from faceanything_ros.config import METHODS, NodeConfig
from faceanything_ros.ros.message_types import typestore
from faceanything_ros.ros.node.message_types import rclpy_message_types
from faceanything_ros.ros.node.publishers import OUTPUT_QOS, cdr_bytes
from faceanything_ros.ros.outputs import OUTPUT_TYPES, enabled_outputs, output_messages, output_topic
from faceanything_ros.stream.processing import FrameProcessor

WARMUP_FRAMES = 20
NODE_NAME = "faceanything_output_messages_bench"


def publish_costs(config: NodeConfig, results: list, repeats: int) -> dict[str, dict[str, float]]:
    """``{output key: {"rclpy_ms": median, "cdr_ms": median}}`` thread CPU of building + publishing."""
    classes, store = rclpy_message_types(), typestore()
    keys = enabled_outputs(config, classes)
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node(NODE_NAME, context=context)
    publishers = {key: node.create_publisher(classes[OUTPUT_TYPES[key]], output_topic(key, NODE_NAME), OUTPUT_QOS)
                  for key in keys}
    listener = subprocess.Popen([sys.executable, "-c", child_call("listen", keys)])
    costs: dict[str, dict[str, list[float]]] = {key: {"rclpy_ms": [], "cdr_ms": []} for key in keys}
    try:
        deadline = time.monotonic() + 60.0
        while not all(publisher.get_subscription_count() for publisher in publishers.values()):
            if time.monotonic() > deadline or listener.poll() is not None:
                raise SystemExit("the listener process did not subscribe to every output within 60 s")
            time.sleep(0.1)
        for _ in range(repeats):
            for result in results:
                output_messages(store.types, result, config, keys)  # the frame-level maps, made once
                for key in keys:
                    start = time.thread_time()
                    publishers[key].publish(output_messages(classes, result, config, [key])[key])
                    costs[key]["rclpy_ms"].append(time.thread_time() - start)
                    start = time.thread_time()
                    message = output_messages(store.types, result, config, [key])[key]
                    publishers[key].publish(cdr_bytes(store, message, OUTPUT_TYPES[key]))
                    costs[key]["cdr_ms"].append(time.thread_time() - start)
                time.sleep(1 / 30)  # camera rate: the subscriber keeps up
    finally:
        listener.kill()
        listener.wait()
        node.destroy_node()
        rclpy.shutdown(context=context)
    return {key: {way: float(np.median(samples)) * 1e3 for way, samples in ways.items()} for key, ways in costs.items()}


def listen(keys: list[str]) -> None:
    """The subscriber process: raw subscriptions to the benchmark node's ``keys`` outputs, spun until killed."""
    classes = rclpy_message_types()
    rclpy.init()
    node = rclpy.create_node("faceanything_output_messages_listener")
    for key in keys:
        node.create_subscription(classes[OUTPUT_TYPES[key]], output_topic(key, NODE_NAME), lambda raw: None,
                                 OUTPUT_QOS, raw=True)
    rclpy.spin(node)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=METHODS, default="mesh")
    parser.add_argument("--model", default=None, help="checkpoint for --method model (default: the bundled one)")
    parser.add_argument("--sizes", nargs="+", default=["640x480", "1280x720"], help="image sizes, WIDTHxHEIGHT")
    parser.add_argument("--frames", type=int, default=40, help="processed frames whose outputs are timed")
    parser.add_argument("--repeats", type=int, default=3, help="times each frame's outputs are timed")
    parser.add_argument("--num-tracks", type=int, default=256)
    parser.add_argument("--video", default=str(DEFAULT_VIDEO), help="face video")
    parser.add_argument("--workspace", help="colcon workspace of this repository (default: build one)")
    parser.add_argument("--json", help="write the results as JSON here")
    args = parser.parse_args(argv)
    try:
        rclpy_message_types()  # only a colcon install has the package's own message classes
    except ImportError:
        measure_in_workspace(args, sys.argv[1:] if argv is None else argv)
        return
    config = NodeConfig(method=args.method, model=args.model, num_tracks=args.num_tracks)
    rows = []
    for size in args.sizes:
        width, height = (int(side) for side in size.split("x"))
        frames = video_frames(args.video, width, height, WARMUP_FRAMES + args.frames)
        with FrameProcessor(config) as processor:
            results = [processor.process(frame, 1_000 + index, "camera") for index, frame in enumerate(frames)]
        costs = publish_costs(config, results[WARMUP_FRAMES:], args.repeats)
        rows.append({"size": size, "rclpy_ms": sum(c["rclpy_ms"] for c in costs.values()),
                     "cdr_ms": sum(c["cdr_ms"] for c in costs.values()), "outputs": costs})
    report("output_messages", f"every output of a {args.method} frame built and published, thread CPU ms "
           f"({args.num_tracks} tracks)", [("size", "size", ""), ("rclpy ms", "rclpy_ms", ".2f"),
                                           ("CDR ms", "cdr_ms", ".2f")], rows, args)
    for row in rows:
        print(f"{row['size']}: " + ", ".join(f"{key} {c['rclpy_ms']:.2f} -> {c['cdr_ms']:.2f}"
                                             for key, c in row["outputs"].items()))


def child_call(function: str, argument: list[str]) -> str:
    """``python -c`` code calling this module's ``function(argument)`` in another process: this
    repository's ``bench`` after the install on ``sys.path``, so ``faceanything_ros`` is the install's."""
    return (f"import sys; sys.path.append({str(REPO_ROOT)!r}); from bench.output_messages import {function}; "
            f"{function}({argument!r})")


def measure_in_workspace(args: argparse.Namespace, argv: list[str]) -> None:
    """Run this benchmark again in a child process with the workspace's install sourced
    (``child_call``; paths made absolute, the child running elsewhere)."""
    paths = {"--video": args.video, "--model": args.model, "--json": args.json}
    argv = [*argv, *(item for flag, path in paths.items() if path for item in (flag, str(Path(path).resolve())))]
    with tempfile.TemporaryDirectory(prefix="faceanything_output_messages_") as folder:
        workspace = Path(args.workspace).resolve() if args.workspace else build_workspace(Path(folder))
        env = graph_environment(str(REPO_ROOT / "config" / "fastdds_large_data.xml"))
        done = subprocess.run(sourced(workspace, [sys.executable, "-c", child_call("main", argv)]), cwd=folder, env=env,
                              check=False)
    if done.returncode != 0:
        raise SystemExit(f"the measurement in {workspace} failed ({done.returncode})")


if __name__ == "__main__":
    main()
