"""Latency of one ``CanonicalTracker.step`` per image size, track count and search mode.

Usage (repository root): ``python -m bench.tracking [--device cpu] [--json PATH]``.
The frames are exact renders of the canonical template (``tracking.template_render``) whose face
spans ``--face-fraction`` of the image width, turning and moving a little from frame to frame
(``--motion-px`` pixels and 2 degrees of yaw per frame, back and forth over 8 frames), so the
warm-started window search meets real motion. The queries are the canonical template points; the
tracker steps through the frames in a loop. Each setting is measured with the window search
(``TrackerConfig.search_radius``) and with the global search only (radius 0). Prints median /
p90 / min in milliseconds.
"""
from __future__ import annotations

import argparse
import itertools

import numpy as np

from bench.common import latency_stats, report, time_calls
from faceanything_ros.config import TrackerConfig
from faceanything_ros.geometry import intrinsics_from_fov
from faceanything_ros.tracking import BACKENDS, CanonicalTracker, TrackingFrame
from faceanything_ros.tracking.template_render import face_distance_for, head_rotation_matrix, render_template_frame

RESOLUTIONS = {"480p": (480, 640), "720p": (720, 1280)}
POSES = 8  # frames of one back-and-forth head motion


def moving_face(height: int, width: int, face_fraction: float, motion_px: float) -> list[TrackingFrame]:
    """``POSES`` template renders, the face ``face_fraction`` of the image wide, moving ``motion_px`` per frame."""
    intrinsics = intrinsics_from_fov(width, height, 60.0)
    distance = face_distance_for(face_fraction, intrinsics[0, 0], width)
    frames = []
    for step in list(range(POSES // 2)) + list(range(POSES // 2, 0, -1)):
        shift = step * motion_px * distance / intrinsics[0, 0]
        frames.append(render_template_frame(head_rotation_matrix(yaw_deg=2.0 * step), np.array([shift, 0.0, distance]),
                                            intrinsics, height, width))
    return frames


def measure(resolutions: list[str], track_counts: list[int], backend: str | None, device: str,
            face_fraction: float, motion_px: float, runs: int, warmup: int) -> list[dict]:
    """One result row per (resolution, tracks, search): step latency stats in ms plus the setting itself."""
    rows = []
    for name in resolutions:
        height, width = RESOLUTIONS[name]
        frames = moving_face(height, width, face_fraction, motion_px)
        for tracks, radius in itertools.product(track_counts, (TrackerConfig.search_radius, 0)):
            tracker = CanonicalTracker(TrackerConfig(num_tracks=tracks, search_radius=radius), device=device,
                                       backend=backend)
            tracker.seed_canonical()
            cycle = itertools.cycle(frames)
            visible = []
            samples = time_calls(lambda: visible.append(tracker.step(next(cycle)).visible.mean()), runs=runs,
                                 warmup=warmup)
            rows.append({"resolution": name, "height": height, "width": width,
                         "face_pixels": int(np.mean([frame.mask.sum() for frame in frames])), "tracks": tracks,
                         "search": f"window r={radius}" if radius else "global",
                         "visible": float(np.mean(visible)), **latency_stats(samples)})
    return rows


def main(argv: list[str] | None = None) -> None:
    """Command-line entry: parse arguments, measure, print a table, optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolutions", nargs="+", default=["480p"], choices=list(RESOLUTIONS))
    parser.add_argument("--tracks", type=int, nargs="+", default=[256, 2048], help="canonical queries per face")
    parser.add_argument("--device", default="cpu", help="torch device of the neighbour search, e.g. cpu or cuda")
    parser.add_argument("--backend", choices=BACKENDS, help="neighbour search (default: torch on CUDA, else kdtree)")
    parser.add_argument("--face-fraction", type=float, default=0.4, help="face width / image width")
    parser.add_argument("--motion-px", type=float, default=3.0, help="face motion per frame, pixels")
    parser.add_argument("--runs", type=int, default=40, help="timed steps per setting")
    parser.add_argument("--warmup", type=int, default=8, help="untimed steps first")
    parser.add_argument("--json", metavar="PATH", help="also write results + hardware info here")
    args = parser.parse_args(argv)

    rows = measure(args.resolutions, args.tracks, args.backend, args.device, args.face_fraction, args.motion_px,
                   args.runs, args.warmup)
    backend = CanonicalTracker(device=args.device, backend=args.backend).backend
    title = f"CanonicalTracker.step, {backend} backend on {args.device}, {args.runs} runs after {args.warmup} warm-up"
    columns = [("width", "width", "d"), ("height", "height", "d"), ("face px", "face_pixels", "d"),
               ("tracks", "tracks", "d"), ("search", "search", "s"), ("visible", "visible", ".2f"),
               ("median ms", "median_ms", ".2f"), ("p90 ms", "p90_ms", ".2f"), ("min ms", "min_ms", ".2f")]
    report("tracking", title, columns, rows, args, backend=backend)


if __name__ == "__main__":
    main()
