"""``faceanything build-engine``: pre-build cached engine artefacts (ONNX / TensorRT) per shape.

Building at install time spares the robot the build at first start: the predictor later finds
each ``(T, size)`` artefact in the cache (same checkpoint, device, precision and versions).
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from tqdm import tqdm

from ..engines import PRECISIONS
from ..model.bundled import checkpoint_or_bundled

log = logging.getLogger("faceanything")

BUILDABLE = ("onnx", "tensorrt")


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register ``build-engine``."""
    parser = commands.add_parser("build-engine", help="pre-build cached ONNX / TensorRT engines")
    parser.add_argument("--model", type=Path, help="checkpoint (.safetensors); default: the bundled one")
    parser.add_argument("--engine", required=True, choices=BUILDABLE, help="which compiled engine to build")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda:0 (default: cpu)")
    parser.add_argument("--precision", choices=sorted(PRECISIONS),
                        help="compute precision (default: fp16 for tensorrt, fp32 for onnx)")
    parser.add_argument("--sizes", type=int, nargs="+",
                        help="square input sides in pixels (default: the model's input size)")
    parser.add_argument("--window", type=int, nargs="+", default=[1],
                        help="frame counts T to build for (default: 1)")
    parser.add_argument("--cache-dir", type=Path,
                        help="artefact folder (default: $FACEANYTHING_ENGINE_CACHE or ~/.cache/faceanything_ros/engines)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Build (or find cached) one artefact per (T, size); print each artefact path."""
    from ..engines import create_engine
    from ..model.checkpoint import load_checkpoint

    checkpoint = checkpoint_or_bundled(args.model)
    model, metadata = load_checkpoint(checkpoint, device=args.device)
    sizes = args.sizes or [metadata.model_config.image_size]
    patch = metadata.model_config.patch_size
    bad = [value for value in sizes if value <= 0 or value % patch] + [value for value in args.window if value < 1]
    if bad:
        raise ValueError(f"--sizes must be positive multiples of the patch size {patch} and --window >= 1; got {bad}")
    engine = create_engine(args.engine, model, checkpoint, args.device, args.precision, args.cache_dir)
    shapes = [(frames, size, size) for size in sizes for frames in args.window]
    for shape in tqdm(shapes, desc=f"{args.engine} engines", unit="shape"):
        engine.prepare(*shape)
        print(engine.cache.artefact_path(engine.cache_key(*shape), engine.suffix))
    return 0
