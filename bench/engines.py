"""Inference engines compared: model-only and end-to-end latency / throughput per setting.

Usage (repository root)::

    python -m bench.engines [--sizes tiny] [--resolutions 224 256 518] [--frames 1 4 8]
        [--engines torch onnx compile] [--precisions fp32 bf16] [--video NAME] [--e2e-frames 40]
        [--[no-]flip-average] [--json PATH]

Model-only: ``engine.run`` on ``(1, T, 3, S, S)`` random images (with ``--flip-average``, the
default as in ``PredictorConfig``, on them and their mirror images: ``model.flip_average``) (weights: seeded random init,
so the timings are those of a trained model of the same size). End-to-end: ``Predictor`` +
``CanonicalTracker`` over a real face video (decode -> detect/crop -> engine -> paste-back,
intrinsics, point cloud -> canonical tracks), windows of ``T`` frames; the first window
(engine build / compile) is not timed. Latency is per call (model-only) or per window
(end-to-end); throughput is frames per second. Inputs whose side is not a multiple of the
patch size (518 with patch 16) use the nearest multiple (512) and report both. Engines that
cannot run here are reported as skipped with the reason.
"""
from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench.common import SHARED_DATA, latency_stats, report, time_calls
from faceanything_ros.config import MODEL_SIZES, ModelConfig, PredictorConfig, TrackerConfig
from faceanything_ros.engines import ENGINE_NAMES, EngineUnavailableError, create_engine, resolve_engine
from faceanything_ros.engines.base import PRECISIONS
from faceanything_ros.engines.static_engine import parameter_millions
from faceanything_ros.io.frames import open_frames
from faceanything_ros.model.checkpoint import init_checkpoint, load_checkpoint
from faceanything_ros.model.flip_average import flip_averaged
from faceanything_ros.predictor import Predictor
from faceanything_ros.tracking import MultiFaceTracker

VIDEOS = SHARED_DATA / "faces" / "videos"
DEFAULT_VIDEO = "liveportrait_d18_man_frontal_mouth.mp4"


def model_side(requested: int, patch_size: int) -> int:
    """The multiple of ``patch_size`` nearest to ``requested`` pixels (at least one patch)."""
    return max(patch_size, int(round(requested / patch_size)) * patch_size)


def percentiles(samples_s: list[float], frames: int) -> dict[str, float]:
    """``latency_stats`` plus ``p99_ms`` and ``fps`` (``frames`` per call at the median latency)."""
    stats = latency_stats(samples_s)
    stats["p99_ms"] = float(np.percentile(np.asarray(samples_s) * 1e3, 99))
    stats["fps"] = frames * 1e3 / stats["median_ms"]
    return stats


def model_only(engine, frames: int, side: int, runs: int, warmup: int, flip_average: bool) -> dict[str, float]:
    """Latency of ``engine.run`` on ``(1, frames, 3, side, side)`` random images (and their mirror
    images, averaged, with ``flip_average``)."""
    images = torch.rand(1, frames, 3, side, side)
    run = (lambda: flip_averaged(engine.run, images)) if flip_average else (lambda: engine.run(images))
    run()  # build / compile / cache load, not timed
    return percentiles(time_calls(run, runs=runs, warmup=warmup), frames)


def end_to_end(checkpoint: Path, engine: str, precision: str | None, device: str, video: Path, frames: int,
               max_frames: int, cache_dir: Path, flip_average: bool) -> dict[str, float]:
    """Per-window latency of decode + ``Predictor.predict`` + tracker steps over ``video``.

    The first window (engine build, compile, caches) is run untimed; then ``max_frames`` frames
    are timed in windows of ``frames``. Every pixel of each face crop counts as face (see below).
    ``faces_found`` counts the frames with a face in every window, the untimed first one included.
    """
    samples, faces = [], 0
    # Random weights predict no face mask; threshold 0 makes the whole crop "face", so point clouds
    # and tracking carry at least a real face's load (an upper bound for the geometry stages).
    config = PredictorConfig(mask_threshold=0.0, flip_average=flip_average)
    with Predictor(checkpoint, device=device, config=config, engine=engine, precision=precision,
                   engine_cache=cache_dir) as predictor, \
            open_frames(video, max_frames=max_frames + frames) as source:
        tracker = MultiFaceTracker(TrackerConfig(), device=device)
        iterator = iter(source)
        while True:
            started = time.perf_counter()
            window = [frame.rgb for _, frame in zip(range(frames), iterator)]
            if len(window) < frames:
                break
            for reconstruction in predictor.predict(np.stack(window)):
                tracker.step(reconstruction.tracking_frames())
                faces += reconstruction.found
            samples.append(time.perf_counter() - started)
    if len(samples) < 2:
        raise ValueError(f"{video} has too few frames for two windows of {frames}")
    return {**percentiles(samples[1:], frames), "faces_found": faces}


def measure(args: argparse.Namespace, workdir: Path) -> list[dict]:
    """One row per (model size, resolution, engine, T, mode); skipped engines get a ``skipped`` row."""
    rows = []
    for size in args.sizes:
        for requested in args.resolutions:
            side = model_side(requested, ModelConfig.preset(size).patch_size)
            checkpoint = workdir / f"{size}-{side}.safetensors"
            init_checkpoint(checkpoint, size, seed=0, image_size=side)
            model, _ = load_checkpoint(checkpoint, device=args.device)
            setting = {"size": size, "parameters_m": parameter_millions(model),
                       "checkpoint_mb": checkpoint.stat().st_size / 1e6, "requested_resolution": requested,
                       "resolution": side}
            for name in args.engines:
                for precision in args.precisions or [None]:
                    rows += _engine_rows(args, workdir, setting, model, checkpoint, name, precision)
    return rows


def _engine_rows(args: argparse.Namespace, workdir: Path, setting: dict, model, checkpoint: Path, name: str,
                 precision: str | None) -> list[dict]:
    """Rows of one engine at one precision (None = its default) for every window size; a ``skipped`` row
    when it cannot run here."""
    resolved = resolve_engine(name, args.device)
    try:
        engine = create_engine(resolved, model, checkpoint, args.device, precision, cache_dir=workdir / "cache")
    except EngineUnavailableError as error:
        print(f"skipped {resolved}: {error}")
        return [{**setting, "engine": resolved, "precision": precision, "skipped": str(error)}]
    rows = []
    for frames in args.frames:
        stats = model_only(engine, frames, setting["resolution"], args.runs, args.warmup, args.flip_average)
        rows.append({**setting, "engine": resolved, "precision": engine.precision, "frames": frames,
                     "mode": "model", **stats})
        if args.e2e_frames:
            stats = end_to_end(checkpoint, resolved, engine.precision, args.device, VIDEOS / args.video, frames,
                               args.e2e_frames, workdir / "cache", args.flip_average)
            rows.append({**setting, "engine": resolved, "precision": engine.precision, "frames": frames,
                         "mode": "end-to-end", **stats})
    return rows


def main(argv: list[str] | None = None) -> None:
    """Command-line entry: parse arguments, measure, print a table, optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["tiny"], choices=sorted(MODEL_SIZES), help="model presets")
    parser.add_argument("--resolutions", type=int, nargs="+", default=[224, 256, 518],
                        help="square input sides, pixels (rounded to the nearest patch multiple)")
    parser.add_argument("--frames", type=int, nargs="+", default=[1, 4, 8], help="window sizes T")
    parser.add_argument("--engines", nargs="+", default=["torch", "onnx", "compile", "tensorrt"],
                        choices=ENGINE_NAMES, help="engines to compare")
    parser.add_argument("--precisions", nargs="+", choices=sorted(PRECISIONS),
                        help="compute precisions, each engine at each (default: the engine's own)")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--runs", type=int, default=20, help="timed model-only calls per setting")
    parser.add_argument("--warmup", type=int, default=3, help="untimed model-only calls first")
    parser.add_argument("--video", default=DEFAULT_VIDEO, help=f"face video in {VIDEOS} for end-to-end")
    parser.add_argument("--e2e-frames", type=int, default=40, help="timed end-to-end frames; 0 = model-only")
    parser.add_argument("--flip-average", action=argparse.BooleanOptionalAction, default=PredictorConfig.flip_average,
                        help="each call runs the images and their mirror images, averaged (PredictorConfig.flip_average; "
                             f"default: {PredictorConfig.flip_average})")
    parser.add_argument("--json", metavar="PATH", help="also write results + hardware info here")
    args = parser.parse_args(argv)

    # random weights predict rays of no pinhole camera: the predictor's per-frame fallback warning
    # (default field of view) is expected here and would flood the output
    logging.getLogger("faceanything_ros.predictor").setLevel(logging.ERROR)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as workdir:
        rows = measure(args, Path(workdir))
    measured = [row for row in rows if "skipped" not in row]
    title = (f"engines on {args.device}, {torch.get_num_threads()} threads; latency per call (model) or per "
             f"window (end-to-end), fps = frames per second")
    columns = [("size", "size", "s"), ("input", "resolution", "d"), ("engine", "engine", "s"),
               ("prec", "precision", "s"), ("T", "frames", "d"), ("mode", "mode", "s"), ("p50 ms", "median_ms", ".1f"),
               ("p99 ms", "p99_ms", ".1f"), ("fps", "fps", ".1f")]
    # other processes on the machine inflate latencies: the 1/5/15-min load averages go on record
    report("engines", title, columns, measured, args, skipped=[row for row in rows if "skipped" in row],
           load_average_before=load_before, load_average_after=os.getloadavg())


if __name__ == "__main__":
    main()
