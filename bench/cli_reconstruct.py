"""``faceanything reconstruct`` throughput with every file written, against the processing alone.

Usage (repository root): ``python -m bench.cli_reconstruct [--method mesh|model] [--engine onnx] [--frames 150]``.
The command's own loop (``cli.reconstruct.reconstruct_sequence``, its reconstructor from
``cli.reconstruct.create_reconstructor``) runs twice on the same frames of a shared face video,
once without a writer (processing: reconstruction and tracking) and once with the
``SequenceWriter`` of the command (depth and canonical PNGs, maps, clouds, the video); reported:
frames/s of each and their ratio (the target is >= 0.8), the CPU time of the process per frame in
each (all threads; on a machine shared with other work, what the frames cost when wall times are
stretched by waiting for a core), per-stage times (``faceanything_ros.stages``) and the bytes
written per frame.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.common import report
from bench.engines import DEFAULT_VIDEO, VIDEOS
from faceanything_ros.cli.reconstruct import create_reconstructor, reconstruct_sequence
from faceanything_ros.config import NodeConfig, PredictorConfig, TrackerConfig
from faceanything_ros.engines import ENGINE_NAMES
from faceanything_ros.export.writer import SequenceWriter
from faceanything_ros.io.frames import open_frames
from faceanything_ros.stages import STAGE_TIMES
from faceanything_ros.tracking import MultiFaceTracker


def timed_run(args: argparse.Namespace, out: Path | None) -> dict:
    """One pass over the frames; writing to ``out`` unless None. Frames/s and per-stage ms per frame."""
    source = open_frames(args.video, max_frames=args.frames)
    writer = None if out is None else SequenceWriter(out, fps=source.fps, ply_every=args.ply_every)
    tracker = MultiFaceTracker(TrackerConfig(num_tracks=args.num_tracks))
    with source, create_reconstructor(args, PredictorConfig(), tracking=True) as predictor:
        predictor.predict(next(iter(open_frames(args.video, max_frames=1))).rgb)  # warm-up, untimed
        predictor.reset()
        STAGE_TIMES.reset()
        start, start_cpu = time.perf_counter(), time.process_time()
        states, _ = reconstruct_sequence(source, predictor, tracker, None, args.window, writer)
        if writer is not None:
            writer.close(None)
        elapsed, cpu_s = time.perf_counter() - start, time.process_time() - start_cpu
    stages = {name: values["total_s"] * 1e3 / len(states) for name, values in STAGE_TIMES.summary().items()}
    written = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) if out is not None else 0
    return {"fps": len(states) / elapsed, "frames": len(states), "stages_ms_per_frame": stages,
            "cpu_ms_per_frame": cpu_s * 1e3 / len(states), "bytes_per_frame": written / max(len(states), 1)}


def main() -> None:
    """Parse arguments, run without and with files, print the table (and JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=("model", "mesh"), default="mesh")
    parser.add_argument("--model", help="checkpoint for --method model (default: the bundled one)")
    parser.add_argument("--engine", choices=ENGINE_NAMES, default="auto")
    parser.add_argument("--precision", help="compute precision (default: the engine's)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--video", default=str(VIDEOS / DEFAULT_VIDEO), help="face video")
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--cpu-threads", type=int, default=NodeConfig.cpu_threads,
                        help="the command's --cpu-threads (model intra-op threads; 0 = one per core)")
    parser.add_argument("--window", type=int, default=1, help="frames reconstructed jointly (default: 1)")
    parser.add_argument("--num-tracks", type=int, default=256)
    parser.add_argument("--ply-every", type=int, default=10)
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    args = parser.parse_args()
    processing = timed_run(args, None)
    with tempfile.TemporaryDirectory() as folder:
        files = timed_run(args, Path(folder) / "out")
    row = {"method": args.method, "frames": files["frames"], "processing_fps": processing["fps"],
           "files_fps": files["fps"], "ratio": files["fps"] / processing["fps"],
           "mb_per_frame": files["bytes_per_frame"] / 2**20,
           "processing_cpu_ms": processing["cpu_ms_per_frame"], "files_cpu_ms": files["cpu_ms_per_frame"],
           "stages_ms_per_frame": files["stages_ms_per_frame"],
           "processing_stages_ms_per_frame": processing["stages_ms_per_frame"]}
    columns = [("method", "method", "s"), ("frames", "frames", "d"), ("processing fps", "processing_fps", ".2f"),
               ("files fps", "files_fps", ".2f"), ("ratio", "ratio", ".2f"), ("MB/frame", "mb_per_frame", ".2f"),
               ("CPU ms/frame", "processing_cpu_ms", ".1f"), ("+files CPU ms", "files_cpu_ms", ".1f")]
    report("cli_reconstruct", f"reconstruct --method {args.method}: {Path(args.video).name}, window {args.window}",
           columns, [row], args)
    print("ms/frame with files: " + ", ".join(f"{k} {v:.1f}" for k, v in row["stages_ms_per_frame"].items()))


if __name__ == "__main__":
    main()
