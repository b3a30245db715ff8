"""Forward latency of ``FaceAnythingNet`` (random init) per input size and frame count.

Usage (repository root): ``python -m bench.model_latency [--size tiny] [--json PATH]``.
Times ``model(images)`` for ``images (1, T, 3, S, S)`` under ``torch.inference_mode`` with
torch's default thread count, after warm-up; prints median / p90 / min in milliseconds.
"""
from __future__ import annotations

import argparse

import torch

from bench.common import latency_stats, report, time_calls
from faceanything_ros.config import MODEL_SIZES, ModelConfig
from faceanything_ros.model import FaceAnythingNet


def measure(model: FaceAnythingNet, size: str, resolutions: list[int], frame_counts: list[int], runs: int,
            warmup: int, device: str) -> list[dict]:
    """One result row per (resolution, frames) of ``model`` (preset ``size``, on ``device``):
    latency stats in ms plus the setting itself."""
    rows = []
    for resolution in resolutions:
        for frames in frame_counts:
            images = torch.rand(1, frames, 3, resolution, resolution, device=device)
            with torch.inference_mode():
                samples = time_calls(lambda: model(images), runs=runs, warmup=warmup)
            rows.append({"size": size, "resolution": resolution, "frames": frames, **latency_stats(samples)})
    return rows


def main(argv: list[str] | None = None) -> None:
    """Command-line entry: parse arguments, measure, print a table, optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="tiny", choices=sorted(MODEL_SIZES), help="model preset")
    parser.add_argument("--resolutions", type=int, nargs="+", default=[224, 256], help="square input sides, pixels")
    parser.add_argument("--frames", type=int, nargs="+", default=[1, 4], help="frames per sequence (T)")
    parser.add_argument("--runs", type=int, default=30, help="timed forward passes per setting")
    parser.add_argument("--warmup", type=int, default=5, help="untimed forward passes first")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--json", metavar="PATH", help="also write results + hardware info here")
    args = parser.parse_args(argv)

    model = FaceAnythingNet(ModelConfig.preset(args.size)).to(args.device).eval()
    rows = measure(model, args.size, args.resolutions, args.frames, args.runs, args.warmup, args.device)
    parameters = sum(p.numel() for p in model.parameters())
    title = (f"FaceAnythingNet {args.size} ({parameters / 1e6:.2f} M parameters) on {args.device}, "
             f"{torch.get_num_threads()} threads, {args.runs} runs after {args.warmup} warm-up")
    columns = [("input px", "resolution", "d"), ("T", "frames", "d"), ("median ms", "median_ms", ".1f"),
               ("p90 ms", "p90_ms", ".1f"), ("min ms", "min_ms", ".1f")]
    report("model_latency", title, columns, rows, args, parameters=parameters)

if __name__ == "__main__":
    main()
