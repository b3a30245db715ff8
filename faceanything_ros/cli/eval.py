"""``faceanything eval``: judge the learned model and the face-mesh method, side by side, by one code.

``faceanything eval DATASET [--method model mesh] [--model M] [--split test] --json OUT`` scores
data-engine samples with exact ground truth (``eval.dataset_eval``: depth, canonical, mask, focal,
TAP-Vid tracking); ``faceanything eval VIDEO... [--method ...] --json OUT`` scores real videos
without ground truth (``eval.video_eval``: agreement with the face mesh's landmarks, jitter,
frames/s), each method run as ``faceanything reconstruct`` runs it on a video (the face mesh in its
tracking mode, the model's face boxes tracked between detections), and images one by one. One
table on the terminal; JSON grouped by metric family (per method when several).
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..config import PredictorConfig

log = logging.getLogger("faceanything.eval")

METHODS = ("model", "mesh")
SPLIT_CHOICES = ("train", "val", "test", "all")


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register ``faceanything eval``."""
    parser = commands.add_parser("eval", help="score the model and/or the face-mesh method on a dataset or videos",
                                 description=__doc__.split("\n\n")[1])
    parser.add_argument("inputs", nargs="+", type=Path, help="a dataset folder (faceanything-data) or video files")
    parser.add_argument("--method", nargs="+", choices=METHODS, default=["model"],
                        help="methods to score side by side (default: model)")
    parser.add_argument("--model", help="checkpoint (default: the bundled model)")
    parser.add_argument("--split", choices=SPLIT_CHOICES, default="test", help="dataset split (default: test)")
    parser.add_argument("--limit", type=int, help="score at most this many dataset samples / frames per video")
    parser.add_argument("--device", default="cpu", help="torch device of the model (default: cpu)")
    parser.add_argument("--flip-average", action=argparse.BooleanOptionalAction, default=PredictorConfig.flip_average,
                        help="average the model's outputs on each crop with those on its mirror image, as "
                             f"reconstruct and the Python API do by default (default: {PredictorConfig.flip_average})")
    parser.add_argument("--json", type=Path, required=True, help="write the results here")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Score each method, print the table, write the JSON."""
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be >= 1, got {args.limit}")
    dataset = len(args.inputs) == 1 and args.inputs[0].is_dir()
    for path in args.inputs:
        if not path.exists():
            raise FileNotFoundError(f"no such dataset or video: {path}")
    results = {method: (_score_dataset if dataset else _score_videos)(method, args) for method in args.method}
    print(format_table(results))
    payload: dict[str, Any] = {"inputs": [str(p) for p in args.inputs],
                               "split": args.split if dataset else None, "methods": list(results)}
    payload.update(results[args.method[0]] if len(results) == 1 else results)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(payload, indent=1, allow_nan=True) + "\n")
    log.info("wrote %s", args.json)
    return 0


def _score_dataset(method: str, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    import torch

    from ..data.format import read_manifest
    from ..eval.dataset_eval import dataset_batches, mesh_predictions, model_predictions, score_batches

    manifest = read_manifest(args.inputs[0])
    split = None if args.split == "all" else args.split
    batches = dataset_batches(args.inputs[0], split, args.limit)
    mm_per_unit = manifest["canonical_space"]["mm_per_unit"]
    if method == "mesh":
        from ..canonical.pseudo_labels import FaceMeshLabeler

        with FaceMeshLabeler() as labeler:
            return score_batches(lambda batch: mesh_predictions(labeler, batch), batches, mm_per_unit)
    model, metadata = _load_model(args.model, args.device)
    if metadata.input_resolution != (manifest["image_size"],) * 2:
        raise ValueError(f"the model takes {metadata.input_resolution} px crops but the dataset's are "
                         f"{manifest['image_size']} px; build the dataset with faceanything-data build --size "
                         f"{metadata.input_resolution[0]}")
    device = torch.device(args.device)
    return score_batches(lambda batch: model_predictions(model, batch, device, mm_per_unit,
                                                         flip_average=args.flip_average), batches, mm_per_unit)


def _score_videos(method: str, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    from ..canonical.pseudo_labels import FaceMeshLabeler
    from ..canonical.space import load_canonical_space

    template = load_canonical_space().canonical_template
    with FaceMeshLabeler() as landmarks:
        per_video = {path.name: _score_video(method, path, args, landmarks, template) for path in args.inputs}
    metrics = list(next(iter(per_video.values())))
    mean = {name: _mean_of_finite([v[name] for v in per_video.values()]) for name in metrics}
    return {"video": mean, "videos": per_video}


def _score_video(method: str, path: Path, args: argparse.Namespace, landmarks, template: np.ndarray) -> dict[str, float]:
    """``VideoScore.summary`` of ``method`` on one video (run as on a stream: the face mesh in its tracking
    mode, the model's face boxes tracked between detections) or image (alone)."""
    from ..eval.video_eval import VideoScore, score_frame, timed
    from ..io.frames import open_frames
    from ..predictor import Predictor
    from ..reference import MeshReference

    score = VideoScore()
    with open_frames(path, max_frames=args.limit) as source:
        video = source.kind == "video"
        reconstructor = MeshReference(tracking=video) if method == "mesh" else \
            Predictor(_checkpoint(args.model), device=args.device, video=video,
                      config=PredictorConfig(flip_average=args.flip_average))
        with reconstructor:
            for frame in source:
                reconstruction = timed(score, reconstructor.predict, frame.rgb[None])[0]
                labels = landmarks.label(frame.rgb, reconstruction.intrinsics)
                score_frame(score, reconstruction, labels[0] if labels else None, template)
    return score.summary()


def _mean_of_finite(values: list[float]) -> float:
    """Mean of the finite values; NaN when there is none (e.g. jitter of single images)."""
    finite = [value for value in values if np.isfinite(value)]
    return float(np.mean(finite)) if finite else float("nan")


def _checkpoint(path: str | None) -> Path:
    from ..model.bundled import checkpoint_or_bundled

    return checkpoint_or_bundled(path)


def _load_model(path: str | None, device: str):
    from ..model.checkpoint import load_checkpoint

    checkpoint = _checkpoint(path)
    model, metadata = load_checkpoint(checkpoint, device=device)
    if not metadata.trained:
        log.warning("%s is UNTRAINED (random weights): its scores show the pipeline, not real geometry", checkpoint)
    return model, metadata


def format_table(results: dict[str, dict[str, dict[str, Any]]]) -> str:
    """One row per ``family.metric``, one column per method."""
    methods = list(results)
    names = []
    for families in results.values():
        for family, values in families.items():
            if family == "videos":
                continue
            names += [f"{family}.{name}" for name in values if f"{family}.{name}" not in names]
    width = max([len(n) for n in names] + [6])
    lines = [f"{'metric':<{width}}  " + "  ".join(f"{m:>12}" for m in methods)]
    for name in names:
        family, metric = name.split(".", 1)
        cells = [results[m].get(family, {}).get(metric) for m in methods]
        lines.append(f"{name:<{width}}  " + "  ".join(f"{c:>12.4g}" if isinstance(c, float) else f"{'-':>12}"
                                                    for c in cells))
    return "\n".join(lines)
