"""``faceanything``: reconstruct and track faces in a video, an image folder or an image.

Commands: ``reconstruct`` (the main job), ``info`` (version, model, device, engines) and
``init-model`` (write an untrained checkpoint of a given size, for pipeline checks).
"""
from __future__ import annotations

import argparse
import importlib.util
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from . import __version__
from .config import PredictorConfig, TrackerConfig, load_yaml
from .geometry.camera import intrinsics_matrix
from .model.bundled import NO_BUNDLED_MODEL, bundled_checkpoint
from .model.checkpoint import CheckpointError, init_checkpoint, read_checkpoint_metadata

log = logging.getLogger("faceanything")


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns the process exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.run(args)
    except (FileNotFoundError, ValueError, ImportError, OSError) as error:
        log.error("%s", error)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="faceanything", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"faceanything_ros {__version__}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    rec = commands.add_parser("reconstruct", help="depth, canonical maps, clouds and tracks for a video or images")
    rec.add_argument("input", type=Path, help="video file, image folder or single image")
    rec.add_argument("-o", "--out", type=Path, required=True, help="output folder (created)")
    rec.add_argument("--model", type=Path, help="checkpoint (.safetensors); default: the bundled one")
    rec.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda:0 (default: cpu)")
    rec.add_argument("--config", type=Path, help="PredictorConfig YAML (detector, thresholds)")
    rec.add_argument("--window", type=int, default=4, help="frames reconstructed jointly (default: 4)")
    rec.add_argument("--max-faces", type=int, help="faces per frame, largest first (default: config, 1)")
    rec.add_argument("--num-tracks", type=int, default=TrackerConfig.num_tracks,
                     help=f"canonical tracks seeded on the first face (default: {TrackerConfig.num_tracks})")
    rec.add_argument("--ply-every", type=int, default=10, help="write a PLY cloud every N frames, 0 = none")
    rec.add_argument("--max-frames", type=int, help="stop after this many frames")
    rec.add_argument("--stride", type=int, default=1, help="use every Nth frame (default: 1)")
    rec.add_argument("--intrinsics", type=float, nargs=4, metavar=("FX", "FY", "CX", "CY"),
                     help="pinhole intrinsics in pixels; default: solved from the predicted rays")
    rec.set_defaults(run=_reconstruct)

    info = commands.add_parser("info", help="version, model, device and available engines")
    info.add_argument("--model", type=Path, help="checkpoint to describe (default: the bundled one)")
    info.set_defaults(run=_info)

    init = commands.add_parser("init-model", help="write an UNTRAINED checkpoint (random weights) for pipeline checks")
    init.add_argument("--size", default="tiny", choices=["tiny", "small", "base"])
    init.add_argument("-o", "--out", type=Path, required=True, help="output .safetensors path")
    init.add_argument("--seed", type=int, default=0)
    init.set_defaults(run=_init_model)
    return parser


def _checkpoint_or_bundled(path: Path | None) -> Path:
    if path is not None:
        return path
    bundled = bundled_checkpoint()
    if bundled is None:
        raise FileNotFoundError(NO_BUNDLED_MODEL)
    return bundled


def _reconstruct(args: argparse.Namespace) -> int:
    from .export.writer import SequenceWriter
    from .io.frames import open_frames
    from .predictor import Predictor
    from .tracking import CanonicalTracker, Tracks

    if args.window < 1 or args.stride < 1 or args.num_tracks < 1:
        raise ValueError("--window, --stride and --num-tracks must be >= 1")
    config = load_yaml(PredictorConfig, args.config) if args.config else PredictorConfig()
    if args.max_faces is not None:
        config.detector.max_faces = args.max_faces
    intrinsics = intrinsics_matrix(*args.intrinsics) if args.intrinsics else None
    checkpoint = _checkpoint_or_bundled(args.model)
    source = open_frames(args.input, max_frames=args.max_frames, stride=args.stride)
    predictor = Predictor(checkpoint, device=args.device, config=config)
    if not predictor.metadata.trained:
        log.warning("%s is UNTRAINED (random weights): outputs show the pipeline, not real geometry", checkpoint)
    tracker = CanonicalTracker(TrackerConfig(num_tracks=args.num_tracks), device=args.device)
    writer = SequenceWriter(args.out, fps=source.fps or 10.0, ply_every=args.ply_every)
    states, faces_found, started = [], 0, time.perf_counter()

    def flush(window: list) -> None:
        nonlocal faces_found
        reconstructions = predictor.predict(np.stack([f.rgb for f in window]), intrinsics,
                                            first_index=window[0].index)
        for frame, reconstruction in zip(window, reconstructions):
            tracking_frame = reconstruction.tracking_frame()
            if not len(tracker.ids) and reconstruction.found:
                tracker.seed_grid(tracking_frame)
            state = tracker.step(tracking_frame)
            states.append(state)
            faces_found += reconstruction.found
            writer.write_frame(frame.rgb, reconstruction, state)

    with source, predictor:
        window: list = []
        for frame in tqdm(source, total=len(source), unit="frame", desc=source.name):
            window.append(frame)
            if len(window) == args.window:
                flush(window)
                window = []
        if window:
            flush(window)
    writer.close(Tracks.from_states(states) if states else None)
    elapsed = time.perf_counter() - started
    log.info("%d frames (%d with a face) in %.1f s (%.2f frames/s) -> %s", len(states), faces_found, elapsed,
             len(states) / max(elapsed, 1e-9), args.out)
    return 0


def _info(args: argparse.Namespace) -> int:
    print(f"faceanything_ros {__version__}")
    print(f"python {sys.version.split()[0]}, torch {torch.__version__}")
    cuda = torch.cuda.is_available()
    print(f"device: {'cuda (' + torch.cuda.get_device_name(0) + ')' if cuda else 'cpu'}; "
          f"torch threads: {torch.get_num_threads()}")
    engines = {"torch": True, "compile": hasattr(torch, "compile"),
               "onnx": importlib.util.find_spec("onnxruntime") is not None,
               "tensorrt": importlib.util.find_spec("torch_tensorrt") is not None and cuda}
    print("engines: " + ", ".join(f"{name} ({'available' if ok else 'missing'})" for name, ok in engines.items()))
    checkpoint = args.model or bundled_checkpoint()
    if checkpoint is None:
        print(f"model: none bundled ({NO_BUNDLED_MODEL})")
        return 0
    try:
        metadata = read_checkpoint_metadata(checkpoint)
    except CheckpointError as error:
        print(f"model: {checkpoint}: {error}")
        return 2
    print(f"model: {checkpoint}")
    print(f"  size {metadata.model_config.size}, input {metadata.model_config.image_size} px, "
          f"{'trained' if metadata.trained else 'UNTRAINED'}, canonical space "
          f"{metadata.canonical_space_id} v{metadata.canonical_space_version}")
    return 0


def _init_model(args: argparse.Namespace) -> int:
    torch.manual_seed(args.seed)
    init_checkpoint(args.out, args.size)
    print(f"wrote untrained {args.size} checkpoint {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
