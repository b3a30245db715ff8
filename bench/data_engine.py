"""Data-engine throughput: samples per second per CPU core at 256 px, single process.

Usage (repository root): ``python -m bench.data_engine [--images DIR] [--sources 6] [--samples 48]
[--size 256] [--seq-len 1] [--json PATH]``. The process is pinned to one thread (torch, OpenCV)
so the figures are per core. Stages, each timed over the same source images:

- ``label``: face mesh + pose fit + source depth map, per labelled frame (once per source);
- ``rasterize``: the new-view z-buffer alone (``geometry.rasterizer``), per view (one frame);
- ``render``: one complete sample from a labelled frame (cameras, re-render, tracks, augmentation);
- ``end-to-end``: ``SampleGenerator.run`` over tasks (labelling amortised over ``views_per_label``
  samples) plus shard writing, as ``faceanything-data build --workers 1`` does.
Target (issue 3): >= 50 samples/s per core at 256 px, for single-frame samples (T = 1); a sequence
sample of T frames costs T renders, so for T > 1 the verdict is on frames/s (samples/s x T).
"""
from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from bench.common import SHARED_DATA, report
from faceanything_ros.canonical.pseudo_labels import FaceMeshLabeler
from faceanything_ros.canonical.space import load_canonical_space
from faceanything_ros.geometry.rasterizer import rasterize
from faceanything_ros.io.frames import IMAGE_EXTENSIONS, read_image
from training.data.config import DataEngineConfig
from training.data.generator import FileSources, SampleGenerator, discover, plan_tasks
from training.data.shards import ShardWriter

DEFAULT_IMAGES = SHARED_DATA / "faces_train" / "images" / "stargan_v2_celebahq"
TARGET_PER_CORE = 50.0


def row(stage: str, seconds: float, count: int, unit: str) -> dict:
    """A result row: ``count`` units in ``seconds``."""
    return {"stage": stage, "unit": unit, "count": count, "ms_per_unit": 1e3 * seconds / count,
            "per_second": count / seconds}


def measure(images: Path, sources: int, samples: int, config: DataEngineConfig) -> list[dict]:
    """Rows for the stages of the module docstring."""
    space = load_canonical_space()
    labeler = FaceMeshLabeler(space)
    sources = FileSources(space, config, labeler)
    generator = SampleGenerator(space, config, sources)
    try:
        entries = discover(images, IMAGE_EXTENSIONS, config)[:sources]
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(str(error)) from error
    paths = [path for path, _ in entries]
    pictures = [read_image(p) for p in paths]
    sources.label_frame(pictures[0], paths[0])  # warm up mediapipe
    start = time.perf_counter()
    frames = [sources.label_frame(picture, path) for picture, path in zip(pictures, paths)]
    rows = [row("label", time.perf_counter() - start, len(frames), "frame")]
    pool = [cv2.resize(p, (128, 128)) for p in pictures]
    rng = np.random.default_rng(0)
    cameras = [(f, generator.sampler.sample_trajectory(rng, [f.vertices], f.rotation, config.image_size)[0])
               for f in frames for _ in range(samples // len(frames))]
    start = time.perf_counter()
    for frame, camera in cameras:
        rasterize(camera.to_camera(frame.vertices), space.topology, camera.intrinsics, camera.size, camera.size,
                  generator.canonical)
    rows.append(row("rasterize", time.perf_counter() - start, len(cameras), "view"))
    start = time.perf_counter()
    for index in range(samples):
        generator.render(rng, [frames[index % len(frames)]] * config.seq_len, pool)
    rows.append(row("render", time.perf_counter() - start, samples, "sample"))
    tasks = plan_tasks(entries, [], samples, config)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        written = 0
        with ShardWriter(Path(folder) / "ds", config.samples_per_shard, {}) as writer:
            for task in tasks:
                results, _ = generator.run(task)
                for arrays, record in results:
                    writer.add(arrays, record)
                written += len(results)
        rows.append(row("end-to-end", time.perf_counter() - start, max(written, 1), "sample"))
    labeler.close()
    return rows


def main(argv: list[str] | None = None) -> None:
    """Command-line entry: parse arguments, measure, print a table, optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", default=str(DEFAULT_IMAGES), help="source images (data root has SOURCES.md)")
    parser.add_argument("--sources", type=int, default=6, help="source images labelled")
    parser.add_argument("--samples", type=int, default=48, help="samples rendered per stage")
    parser.add_argument("--size", type=int, default=256, help="output side in pixels")
    parser.add_argument("--seq-len", type=int, default=1, help="frames per sample T")
    parser.add_argument("--json", metavar="PATH", help="also write results + hardware info here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    config = dataclasses.replace(DataEngineConfig(), image_size=args.size, seq_len=args.seq_len)
    rows = measure(Path(args.images), args.sources, args.samples, config)
    for result in rows:
        result["frames_per_second"] = result["per_second"] * (args.seq_len if result["unit"] == "sample" else 1)
    end_to_end, frames = rows[-1]["per_second"], rows[-1]["frames_per_second"]
    title = (f"data engine, 1 process / 1 thread, {args.size} px, T={args.seq_len}, views_per_label="
             f"{config.views_per_label}: end-to-end {end_to_end:.1f} samples/s = {frames:.1f} frames/s per core "
             f"(target >= {TARGET_PER_CORE:.0f} frames/s: {'met' if frames >= TARGET_PER_CORE else 'MISSED'})")
    columns = [("stage", "stage", "s"), ("unit", "unit", "s"), ("count", "count", "d"),
               ("ms/unit", "ms_per_unit", ".1f"), ("per s", "per_second", ".1f"),
               ("frames/s", "frames_per_second", ".1f")]
    report("data_engine", title, columns, rows, args, views_per_label=config.views_per_label,
           target_per_core=TARGET_PER_CORE)


if __name__ == "__main__":
    main()
