"""Training throughput: the data pipeline per core, and training steps per model and input size.

Usage (repository root): ``python -m bench.training --data DATASET [DATASET ...] [--sizes tiny small]
[--json PATH]``, one data-engine dataset per input size (e.g. built with ``faceanything-data build
--size 128`` and ``--size 224``). Rows:

- ``read``: ``FaceDataset`` items per second in one process with one thread (per core), stored samples
  as they are (memory-mapped shards -> model-layout tensors with virtual-camera ground truth);
- ``read+augment``: the same with the per-epoch augmentation (crop jitter, flip, photometric, blur,
  noise, JPEG);
- ``train <size>``: optimiser steps of the full stage-2 loss on real batches (batch 16, T = 1),
  samples per second with all of this process's threads (data loading excluded: the loader runs in
  its own worker processes during training).
Targets: read >= 1000 / 300 samples/s per core at 128 / 224 px, read+augment >= 500 / 150.
"""
from __future__ import annotations

import argparse
import time

import cv2
import torch

from bench.common import report
from faceanything_ros.config import ModelConfig
from faceanything_ros.data.samples import images_to_float
from faceanything_ros.model.net import FaceAnythingNet
from training.data.dataset import FaceDataset, TrainAugmentConfig
from training.losses import LossWeights, compute_losses

TARGETS = {"read": {128: 1000.0, 224: 300.0}, "read+augment": {128: 500.0, 224: 150.0}}


def read_rate(dataset: FaceDataset, count: int) -> float:
    """Items per second over the first ``count`` items (after one warm-up pass over 8)."""
    for index in range(min(8, len(dataset))):
        dataset[index]
    count = min(count, len(dataset))
    start = time.perf_counter()
    for index in range(count):
        dataset[index]
    return count / (time.perf_counter() - start)


def train_rate(dataset: FaceDataset, size: str, batch: int, steps: int) -> float:
    """Samples per second of forward + loss + backward + AdamW step of model ``size`` on one real batch."""
    torch.manual_seed(0)
    model = FaceAnythingNet(ModelConfig.preset(size, image_size=dataset.image_size))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    items = torch.utils.data.default_collate([dataset[i] for i in range(batch)])
    items = {name: value[:, :1] if value.ndim > 1 and name not in ("tracks", "track_visible", "track_canonical",
                                                                     "track_query_frame") else value
             for name, value in items.items()}
    items["tracks"], items["track_visible"] = items["tracks"][:, :, :1], items["track_visible"][:, :, :1]
    weights = LossWeights(tracks=1.0)

    def step() -> None:
        outputs = model(images_to_float(items["images"]))
        loss = compute_losses(outputs, items, weights)["total"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry: measure, print a table, optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", required=True, help="datasets, one per input size")
    parser.add_argument("--sizes", nargs="+", default=["tiny", "small"], help="model sizes trained")
    parser.add_argument("--items", type=int, default=400, help="items read per data row")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps per row")
    parser.add_argument("--batch", type=int, default=16, help="training batch")
    parser.add_argument("--json", metavar="PATH", help="also write results + hardware info here")
    args = parser.parse_args(argv)
    threads = torch.get_num_threads()
    rows = []
    for root in args.data:
        plain, augmented = FaceDataset(root, None), FaceDataset(root, None, TrainAugmentConfig())
        pixels = plain.image_size
        torch.set_num_threads(1)
        cv2.setNumThreads(1)
        for name, dataset in (("read", plain), ("read+augment", augmented)):
            rate = read_rate(dataset, args.items)
            target = TARGETS[name].get(pixels)
            rows.append({"row": name, "pixels": pixels, "per_second": rate, "unit": "samples/s/core",
                         "target": target or float("nan"), "met": "yes" if target and rate >= target else "no"})
        torch.set_num_threads(threads)
        cv2.setNumThreads(threads)
        for size in args.sizes:
            rate = train_rate(plain, size, args.batch, args.steps)
            rows.append({"row": f"train {size}", "pixels": pixels, "per_second": rate,
                         "unit": f"samples/s ({threads} threads)", "target": float("nan"), "met": "-"})
    report("training", "Training throughput (T = 1 samples)",
           [("row", "row", ""), ("pixels", "pixels", "d"), ("per second", "per_second", ".1f"), ("unit", "unit", ""),
            ("target", "target", ".0f"), ("met", "met", "")], rows, args, torch_threads=threads)


if __name__ == "__main__":
    main()
