"""``faceanything reconstruct``: depth, canonical maps, clouds and tracks for a video or images."""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from ..config import TRACK_QUERIES, FaceMeshConfig, NodeConfig, PredictorConfig, TrackerConfig, load_yaml
from ..engines import ENGINE_NAMES, PRECISIONS
from ..geometry.camera import intrinsics_matrix
from ..model.bundled import checkpoint_or_bundled

if TYPE_CHECKING:
    from ..export.writer import SequenceWriter
    from ..io.frames import Frame, FrameSource
    from ..reference import Reconstructor
    from ..tracking import MultiFaceTracker, TrackState

log = logging.getLogger("faceanything")


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register ``reconstruct``."""
    rec = commands.add_parser("reconstruct", help="depth, canonical maps, clouds and tracks for a video or images")
    rec.add_argument("input", type=Path, help="video file, image folder or single image")
    rec.add_argument("-o", "--out", type=Path, required=True, help="output folder (created)")
    rec.add_argument("--method", choices=("model", "mesh"), default="model",
                     help="model: the learned network (default); mesh: the face-mesh reference method")
    rec.add_argument("--model", type=Path, help="checkpoint (.safetensors); default: the bundled one")
    rec.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda:0 (default: cpu)")
    rec.add_argument("--config", type=Path, help="PredictorConfig YAML (detector, thresholds; with --method mesh "
                     "its detector.max_faces, detector.min_confidence and default_fov_deg apply)")
    rec.add_argument("--engine", default="auto", choices=ENGINE_NAMES,
                     help="inference engine; auto picks the fastest available and logs it (default: auto)")
    rec.add_argument("--precision", choices=sorted(PRECISIONS), help="compute precision (default: the engine's)")
    rec.add_argument("--cpu-threads", type=int, default=NodeConfig.cpu_threads,
                     help="intra-op threads of torch and ONNX Runtime, as the node's cpu_threads (the file writer "
                     "thread runs beside them); 0 = torch's default, one per core "
                     f"(default: {NodeConfig.cpu_threads})")
    rec.add_argument("--window", type=int, default=4, help="frames reconstructed jointly (default: 4)")
    rec.add_argument("--max-faces", type=int, help="faces per frame, largest first (default: config, 1)")
    rec.add_argument("--flip-average", action=argparse.BooleanOptionalAction,
                     help="average the model's outputs on each face crop with those on its mirror image: more "
                     "accurate, a second network pass (default: config, on)")
    rec.add_argument("--num-tracks", type=int, default=TrackerConfig.num_tracks,
                     help=f"tracks per face (default: {TrackerConfig.num_tracks})")
    rec.add_argument("--track-queries", choices=TRACK_QUERIES, default=TrackerConfig.queries,
                     help="canonical: template points, track id k is the same facial point in every video "
                     "(default); pixels: a grid on each face's first frame")
    rec.add_argument("--ply-every", type=int, default=10, help="write a PLY cloud every N frames, 0 = none")
    rec.add_argument("--point-stride", type=int, default=1,
                     help="keep every n-th pixel row and column in the PLY clouds (default: 1)")
    rec.add_argument("--max-frames", type=int, help="stop after this many frames")
    rec.add_argument("--stride", type=int, default=1, help="use every Nth frame (default: 1)")
    rec.add_argument("--intrinsics", type=float, nargs=4, metavar=("FX", "FY", "CX", "CY"),
                     help="pinhole intrinsics in pixels; default: solved from the predicted rays")
    rec.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Reconstruct and track every frame, writing the files listed in ``export.writer``."""
    from ..export.writer import SequenceWriter
    from ..io.frames import open_frames
    from ..stream.allocator import keep_freed_memory
    from ..stream.collector import freeze_long_lived, thaw
    from ..tracking import MultiFaceTracker, Tracks

    if args.window < 1 or args.stride < 1 or args.num_tracks < 1:
        raise ValueError("--window, --stride and --num-tracks must be >= 1")
    config = load_yaml(PredictorConfig, args.config) if args.config else PredictorConfig()
    if args.max_faces is not None:
        config.detector.max_faces = args.max_faces
    if args.flip_average is not None:
        config.flip_average = args.flip_average
    intrinsics = intrinsics_matrix(*args.intrinsics) if args.intrinsics else None
    source = open_frames(args.input, max_frames=args.max_frames, stride=args.stride)
    predictor = create_reconstructor(args, config, tracking=source.kind == "video")
    tracker = MultiFaceTracker(TrackerConfig(num_tracks=args.num_tracks, queries=args.track_queries),
                               device=args.device)
    writer = SequenceWriter(args.out, fps=source.fps, ply_every=args.ply_every, point_stride=args.point_stride)
    freeze_long_lived()  # the model and graphs stay out of the later garbage collections (stream.collector)
    keep_freed_memory()  # each frame's buffers reuse the last frame's memory (stream.allocator)
    started = time.perf_counter()
    try:
        with source, predictor:
            states, faces_found = reconstruct_sequence(source, predictor, tracker, intrinsics, args.window, writer)
    except BaseException:
        writer.close(None)  # the frames written so far stay complete
        raise
    finally:
        thaw()
    writer.close(Tracks.from_states(states) if states else None)
    elapsed = time.perf_counter() - started
    log.info("%d frames (%d with a face) in %.1f s (%.2f frames/s, files included) -> %s", len(states), faces_found,
             elapsed, len(states) / max(elapsed, 1e-9), args.out)
    return 0


def create_reconstructor(args: argparse.Namespace, config: PredictorConfig, tracking: bool) -> Reconstructor:
    """The reconstructor of ``args.method``: ``MeshReference`` (``tracking``: the frames are one video, in
    order) or ``Predictor`` (``args.model`` or the bundled checkpoint, ``args.device``, ``args.engine``,
    ``args.precision``), with the detector and thresholds of ``config``; ``args.cpu_threads`` > 0 first sets
    torch's intra-op threads for the process (an ONNX Runtime session takes as many)."""
    import torch

    from ..predictor import Predictor
    from ..reference import MeshReference

    if args.cpu_threads < 0:
        raise ValueError(f"--cpu-threads must be >= 0 (0 = one per core), got {args.cpu_threads}")
    if args.cpu_threads:
        torch.set_num_threads(args.cpu_threads)
    if args.method == "mesh":
        return MeshReference(FaceMeshConfig(max_faces=config.detector.max_faces,
                                            min_confidence=config.detector.min_confidence,
                                            default_fov_deg=config.default_fov_deg), tracking=tracking)
    checkpoint = checkpoint_or_bundled(args.model)
    predictor = Predictor(checkpoint, device=args.device, config=config, engine=args.engine, precision=args.precision,
                          video=tracking)
    if not predictor.metadata.trained:
        log.warning("%s is UNTRAINED (random weights): outputs show the pipeline, not real geometry", checkpoint)
    return predictor


def reconstruct_sequence(source: FrameSource, predictor: Reconstructor, tracker: MultiFaceTracker,
                         intrinsics: np.ndarray | None, window: int, writer: SequenceWriter | None
                         ) -> tuple[list[TrackState], int]:
    """Reconstruct ``source`` in windows of ``window`` frames and track it, handing each frame to ``writer``
    (None: nothing is written); the track state of every frame and the number of frames with a face.

    intrinsics: ``(3, 3)`` K in pixels, or None (estimated by ``predictor``).
    """
    states: list[TrackState] = []
    faces_found = 0

    def flush(frames: list[Frame]) -> None:
        nonlocal faces_found
        reconstructions = predictor.predict(np.stack([f.rgb for f in frames]), intrinsics, [f.index for f in frames])
        for frame, reconstruction in zip(frames, reconstructions):
            state = tracker.step(reconstruction.tracking_frames())
            states.append(state)
            faces_found += reconstruction.found
            if writer is not None:
                writer.write_frame(frame.rgb, reconstruction, state)

    pending: list[Frame] = []
    for frame in tqdm(source, total=len(source), unit="frame", desc=source.name):
        pending.append(frame)
        if len(pending) == window:
            flush(pending)
            pending = []
    if pending:
        flush(pending)
    return states, faces_found
