"""Soak test of the node's processing: many frames through ``FrameProcessor``; memory must stay flat.

Usage (repository root): ``python -m bench.soak [--frames 10000] [--input-rate-hz 0] [--json PATH]``.
A shared face video (decoded once, looped) feeds ``FrameProcessor`` as the node does: with
``--input-rate-hz R > 0`` a feeder thread submits frames at R Hz to the node's newest-only worker
(``stream.worker.FrameWorker``), so frames arriving while the model runs are dropped and
counted; with 0 every frame is processed in lock step (no drops). Without ``--model`` a tiny
untrained model is used (mask threshold 0, so tracking works on every face pixel).
Reports resident memory (RSS) after warm-up and at the end, its growth per 1000 frames (least
squares over samples every ``--sample-every`` frames), frames in/out, drops, errors and latency.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import report
from bench.engines import DEFAULT_VIDEO, VIDEOS
from faceanything_ros.config import ENGINES, NodeConfig
from faceanything_ros.io.frames import open_frames
from faceanything_ros.stream.worker import FrameWorker
from faceanything_ros.stream.processing import FrameProcessor
from faceanything_ros.stream.stats import ProcessingStats

WARMUP_FRAMES = 20  # RSS "start" is taken after these (model, detector and allocator warm)


def rss_mb() -> float:
    """Resident set size of this process, MiB (Linux /proc)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def soak(config: NodeConfig, frames: list[np.ndarray], count: int, input_rate_hz: float,
         sample_every: int) -> dict:
    """Run ``count`` frames (``frames`` looped) through a ``FrameProcessor``; the result row."""
    stats = ProcessingStats(latency_window=count)
    samples: list[tuple[int, float]] = []
    with FrameProcessor(config) as processor:
        def handle(item: tuple[int, float]) -> None:
            index, arrived = item
            try:
                processor.process(frames[index % len(frames)], index, "camera_optical_frame")
            except ValueError as error:
                stats.record_error(type(error).__name__)
                return
            stats.record_output(time.monotonic() - arrived)
            if stats.frames_out % sample_every == 0:
                samples.append((stats.frames_out, rss_mb()))

        for index in range(WARMUP_FRAMES):
            processor.process(frames[index % len(frames)], index, "camera_optical_frame")
        start_mb, start = rss_mb(), time.monotonic()
        samples.append((0, start_mb))
        if input_rate_hz > 0:
            worker = FrameWorker(handle, on_drop=lambda item: stats.record_drop())
            worker.start()
            for index in range(count):
                time.sleep(max(0.0, start + index / input_rate_hz - time.monotonic()))
                stats.record_input()
                worker.submit((index, time.monotonic()))
            worker.stop(timeout_s=600)
        else:
            for index in range(count):
                stats.record_input()
                handle((index, time.monotonic()))
        elapsed = time.monotonic() - start
    end_mb = rss_mb()
    samples.append((stats.frames_out, end_mb))
    done, memory = np.array(samples).T
    growth = float(np.polyfit(done, memory, 1)[0] * 1000) if len(set(done)) > 1 else 0.0
    summary = stats.summary()
    return {
        "frames_in": summary["frames_in"], "frames_out": summary["frames_out"], "dropped": summary["dropped"],
        "errors": summary["errors"], "rss_start_mb": start_mb, "rss_end_mb": end_mb,
        "rss_max_mb": float(memory.max()), "rss_growth_mb_per_1k": growth, "fps": summary["frames_out"] / elapsed,
        **summary["latency"], "elapsed_s": elapsed,
    }


def main() -> None:
    """Parse arguments, soak, print the table (and JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10_000, help="frames to process (default: 10000)")
    parser.add_argument("--video", default=str(VIDEOS / DEFAULT_VIDEO), help="face video, looped")
    parser.add_argument("--model", help="checkpoint (default: a tiny untrained one)")
    parser.add_argument("--engine", choices=ENGINES, default="torch", help="inference engine (default: torch)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--input-rate-hz", type=float, default=0.0,
                        help="camera rate; 0 = lock step, no drops (default: 0)")
    parser.add_argument("--video-frames", type=int, default=60, help="frames decoded from the video and looped")
    parser.add_argument("--sample-every", type=int, default=50, help="RSS sample period, frames")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    args = parser.parse_args()
    with open_frames(args.video, max_frames=args.video_frames) as source:
        frames = [frame.rgb for frame in source]
    with tempfile.TemporaryDirectory() as folder:
        model = args.model
        if model is None:
            import torch

            from faceanything_ros.model.checkpoint import init_checkpoint

            torch.manual_seed(0)
            model = str(Path(folder) / "tiny_untrained.safetensors")
            init_checkpoint(model, "tiny")
        config = NodeConfig(model=model, engine=args.engine, device=args.device,
                            mask_threshold=0.0 if args.model is None else NodeConfig.mask_threshold)
        row = soak(config, frames, args.frames, args.input_rate_hz, args.sample_every)
    columns = [("frames", "frames_out", "d"), ("dropped", "dropped", "d"), ("errors", "errors", "d"),
               ("fps", "fps", ".2f"), ("p50 ms", "p50_ms", ".1f"), ("p95 ms", "p95_ms", ".1f"),
               ("p99 ms", "p99_ms", ".1f"), ("RSS start MB", "rss_start_mb", ".1f"),
               ("RSS end MB", "rss_end_mb", ".1f"), ("MB / 1k frames", "rss_growth_mb_per_1k", ".2f")]
    report("soak", f"soak: {args.frames} frames of {Path(args.video).name} ({frames[0].shape[1]}x{frames[0].shape[0]}), "
           f"input {args.input_rate_hz or 'lock-step'} Hz", columns, [row], args,
           video_shape=list(frames[0].shape))


if __name__ == "__main__":
    main()
