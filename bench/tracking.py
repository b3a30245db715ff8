"""Latency of one ``CanonicalTracker.step`` per map size and track count.

Usage (repository root): ``python -m bench.tracking [--device cpu] [--json PATH]``.
The frame is synthetic: an elliptical face covering ``--face-fraction`` of the image side in each
direction, with a smooth hemispherical canonical map, a spherical depth map and intrinsics; the
queries are ``seed_grid`` nodes on it. Prints median / p90 / min in milliseconds.
"""
from __future__ import annotations

import argparse

import numpy as np

from bench.common import latency_stats, report, time_calls
from faceanything_ros.config import TrackerConfig
from faceanything_ros.geometry import intrinsics_from_fov
from faceanything_ros.tracking import BACKENDS, CanonicalTracker, TrackingFrame

RESOLUTIONS = {"224": (224, 224), "720p": (720, 1280)}


def synthetic_frame(height: int, width: int, face_fraction: float) -> TrackingFrame:
    """A ``(height, width)`` frame with an elliptical face of ``face_fraction`` of each image side."""
    v, u = np.mgrid[0:height, 0:width].astype(np.float32)
    x = (u - (width - 1) / 2) / (face_fraction * width / 2)
    y = (v - (height - 1) / 2) / (face_fraction * height / 2)
    radius_sq = x**2 + y**2
    mask = radius_sq <= 1.0
    canonical = np.stack([x, y, np.sqrt(np.clip(1.0 - radius_sq, 0.0, None))], axis=-1) * 0.9
    depth = np.where(mask, 0.6 - 0.08 * canonical[..., 2], np.nan).astype(np.float32)
    confidence = np.where(mask, 5.0, 1.0).astype(np.float32)
    intrinsics = intrinsics_from_fov(width, height, 60.0)
    return TrackingFrame(canonical, confidence, mask, depth, intrinsics)


def measure(resolutions: list[str], track_counts: list[int], backend: str, device: str, face_fraction: float,
            runs: int, warmup: int) -> list[dict]:
    """One result row per (resolution, tracks): step latency stats in ms plus the setting itself."""
    rows = []
    for name in resolutions:
        height, width = RESOLUTIONS[name]
        frame = synthetic_frame(height, width, face_fraction)
        for tracks in track_counts:
            tracker = CanonicalTracker(TrackerConfig(num_tracks=tracks), device=device, backend=backend)
            seeded = len(tracker.seed_grid(frame))
            samples = time_calls(lambda: tracker.step(frame), runs=runs, warmup=warmup)
            rows.append({"resolution": name, "height": height, "width": width, "face_pixels": int(frame.mask.sum()),
                         "tracks": seeded, **latency_stats(samples)})
    return rows


def main(argv: list[str] | None = None) -> None:
    """Command-line entry: parse arguments, measure, print a table, optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolutions", nargs="+", default=list(RESOLUTIONS), choices=list(RESOLUTIONS))
    parser.add_argument("--tracks", type=int, nargs="+", default=[256, 1024], help="requested grid sizes")
    parser.add_argument("--device", default="cpu", help="torch device of the neighbour search, e.g. cpu or cuda")
    parser.add_argument("--backend", choices=BACKENDS, help="neighbour search (default: torch on CUDA, else kdtree)")
    parser.add_argument("--face-fraction", type=float, default=0.5, help="face ellipse axes / image sides")
    parser.add_argument("--runs", type=int, default=30, help="timed steps per setting")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--json", metavar="PATH", help="also write results + hardware info here")
    args = parser.parse_args(argv)

    rows = measure(args.resolutions, args.tracks, args.backend, args.device, args.face_fraction, args.runs,
                   args.warmup)
    backend = CanonicalTracker(device=args.device, backend=args.backend).backend
    title = f"CanonicalTracker.step, {backend} backend on {args.device}, {args.runs} runs after {args.warmup} warm-up"
    columns = [("width", "width", "d"), ("height", "height", "d"), ("face px", "face_pixels", "d"),
               ("tracks", "tracks", "d"), ("median ms", "median_ms", ".2f"), ("p90 ms", "p90_ms", ".2f"),
               ("min ms", "min_ms", ".2f")]
    report("tracking", title, columns, rows, args, backend=backend)

if __name__ == "__main__":
    main()
