"""``faceanything video-to-bag``: a rosbag2 of image (+ camera_info) messages from any video."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..geometry.camera import intrinsics_matrix

log = logging.getLogger("faceanything")


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register ``video-to-bag``."""
    from ..ros.bag import STORAGES
    from ..ros.bag_video import DEFAULT_START_NS, VIDEO_BAG_ENCODINGS

    parser = commands.add_parser("video-to-bag", help="make a rosbag2 (sqlite3 or MCAP) from a video")
    parser.add_argument("video", type=Path, help="video file, image folder or single image")
    parser.add_argument("-o", "--out", type=Path, required=True, help="output rosbag2 folder (must not exist)")
    parser.add_argument("--topic", help="image topic (default: /image, or /image/compressed for jpeg/png)")
    parser.add_argument("--encoding", choices=VIDEO_BAG_ENCODINGS, default="rgb8",
                        help="raw sensor_msgs/Image encoding, or jpeg/png CompressedImage (default: rgb8)")
    parser.add_argument("--camera-info-topic", help="also write sensor_msgs/CameraInfo here")
    parser.add_argument("--intrinsics", type=float, nargs=4, metavar=("FX", "FY", "CX", "CY"),
                        help="camera_info K in pixels (default: from --hfov)")
    parser.add_argument("--hfov", type=float, default=60.0, help="horizontal field of view, degrees, for camera_info "
                        "without --intrinsics (default: 60)")
    parser.add_argument("--frame-id", default="camera_optical_frame", help="header frame_id (default: %(default)s)")
    parser.add_argument("--storage", choices=tuple(STORAGES), default="sqlite3", help="default: sqlite3")
    parser.add_argument("--start-ns", type=int, default=DEFAULT_START_NS,
                        help="stamp of the first frame, nanoseconds (default: 1 s; frame i adds i / fps)")
    parser.add_argument("--max-frames", type=int, help="stop after this many frames")
    parser.add_argument("--stride", type=int, default=1, help="use every Nth frame (default: 1)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Write the bag."""
    from ..ros.bag_video import video_to_bag
    from ..ros.conversions import COMPRESSED_FORMATS

    topic = args.topic or ("/image/compressed" if args.encoding in COMPRESSED_FORMATS else "/image")
    count = video_to_bag(
        args.video, args.out, topic=topic, encoding=args.encoding, camera_info_topic=args.camera_info_topic,
        intrinsics=intrinsics_matrix(*args.intrinsics) if args.intrinsics else None, hfov_deg=args.hfov,
        frame_id=args.frame_id, storage=args.storage, start_ns=args.start_ns, max_frames=args.max_frames,
        stride=args.stride,
    )
    log.info("wrote %d frames on %s to %s", count, topic, args.out)
    return 0
