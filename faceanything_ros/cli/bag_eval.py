"""``faceanything bag-eval``: replay a rosbag2 through the node's processing; output bag + JSON report."""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from pathlib import Path

from ..config import ENGINES, METHODS, NodeConfig, load_yaml

log = logging.getLogger("faceanything")


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register ``bag-eval``."""
    from ..ros.bag import STORAGES
    from ..ros.outputs import DEFAULT_NODE_NAME

    parser = commands.add_parser("bag-eval", help="replay a rosbag2 (sqlite3 or MCAP) through the node's processing")
    parser.add_argument("bag", type=Path, help="input rosbag2 folder (or .db3 / .mcap file)")
    parser.add_argument("--image-topic", required=True, help="sensor_msgs/Image or CompressedImage topic")
    parser.add_argument("--camera-info-topic", help="sensor_msgs/CameraInfo topic (default: estimate K)")
    parser.add_argument("-o", "--out", type=Path, required=True, help="output rosbag2 folder (must not exist)")
    parser.add_argument("--report", type=Path, help="write the JSON report here (it is always printed)")
    parser.add_argument("--config", type=Path, help="NodeConfig YAML (the node's parameters)")
    parser.add_argument("--method", choices=METHODS,
                        help="model: the learned network; mesh: the face-mesh method (no model needed); auto: the "
                             "given or bundled model, else the face-mesh method (default: --config's, auto)")
    parser.add_argument("--model", help="checkpoint (.safetensors); default: --config's, else the bundled one")
    parser.add_argument("--engine", choices=ENGINES, help="inference engine (default: --config's, auto)")
    parser.add_argument("--device", help="torch device (default: --config's, cpu)")
    parser.add_argument("--depth-topic", help="ground-truth depth (32FC1 metres or 16UC1 mm) for depth accuracy")
    parser.add_argument("--tracks-topic", help="ground-truth CanonicalTrackArray for track accuracy")
    parser.add_argument("--storage", choices=tuple(STORAGES), help="output storage (default: the input's)")
    parser.add_argument("--node-name", default=DEFAULT_NODE_NAME,
                        help="node name in output topics (default: %(default)s)")
    parser.add_argument("--through-node", action="store_true",
                        help="publish the bag at its recorded rate to the real node over DDS and record its "
                             "outputs (needs ROS 2 rclpy), instead of calling the processing directly")
    parser.add_argument("--fastdds-profile",
                        help="with --through-node: Fast DDS profile of both processes (default: the package's "
                             "config/fastdds_large_data.xml, as the launch file sets; '' = Fast DDS's defaults)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate, print the report and write it to ``--report``."""
    config = load_yaml(NodeConfig, args.config) if args.config else NodeConfig()
    overrides = {name: getattr(args, name) for name in ("method", "model", "engine", "device") if getattr(args, name)}
    config = dataclasses.replace(config, **overrides)
    if args.fastdds_profile is not None and not args.through_node:
        raise ValueError("--fastdds-profile is for --through-node (the direct mode does not use DDS)")
    if args.through_node:
        from ..ros.node.bag_replay import replay_through_node

        report = replay_through_node(args.bag, args.out, args.image_topic, config,
                                     camera_info_topic=args.camera_info_topic, storage=args.storage,
                                     node_name=args.node_name, fastdds_profile=args.fastdds_profile)
    else:
        from ..ros.bag_eval import evaluate_bag

        report = evaluate_bag(args.bag, args.out, args.image_topic, config, camera_info_topic=args.camera_info_topic,
                              depth_topic=args.depth_topic, tracks_topic=args.tracks_topic, storage=args.storage,
                              node_name=args.node_name)
    text = json.dumps(report, indent=2)
    print(text)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(text + "\n")
    log.info("wrote %s (%d/%d frames processed)", args.out, report["frames_out"], report["frames_in"])
    return 0
