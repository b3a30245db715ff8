"""``torch.utils.data.Dataset`` over a sharded data-engine dataset, in the model's layout.

One item is one sample of ``T`` frames; the default collate stacks items into batches, so the
image becomes ``(B, T, 3, H, W)`` float32 in [0, 1] like ``FaceAnythingNet.forward`` expects.
Off-mask ground truth is filled with 0 (never NaN) and must be ignored through ``mask``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from faceanything_ros.geometry.rays import rays_from_intrinsics
from faceanything_ros.model.prediction import frames_to_batch
from training.data.shards import read_manifest, read_sample
from training.data.splits import SPLITS


class FaceDataset(Dataset):
    """Samples of one split (or all with ``split=None``) of the dataset at ``root``.

    An item is a dict of tensors: ``images`` (T, 3, S, S) float32 [0, 1]; ``depth`` (T, S, S)
    float32 metres (0 off mask); ``canonical`` (T, S, S, 3) float32 [-1, 1] (0 off mask); ``mask``
    and ``surface`` (T, S, S) bool; ``rays`` (T, S, S, 3) float32 unit rays (optical frame) from the
    intrinsics; ``intrinsics`` (T, 3, 3) and ``world_from_camera`` (T, 4, 4) float32; ``tracks``
    (N, T, 2) float32 pixels; ``track_visible`` (N, T) bool; ``track_canonical`` (N, 3) float32;
    ``track_query_frame`` (N,) int64; ``index`` int64 (position in the manifest's sample list).
    """

    def __init__(self, root: str | Path, split: str | None = "train") -> None:
        if split is not None and split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS} or None, got {split!r}")
        self.root = Path(root)
        self.manifest = read_manifest(self.root)
        self.records = [(i, r) for i, r in enumerate(self.manifest["samples"]) if split in (None, r["split"])]

    def __len__(self) -> int:
        return len(self.records)

    def record(self, index: int) -> dict[str, Any]:
        """The manifest record (source, split, licence, ...) of item ``index``."""
        return self.records[index][1]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        position, record = self.records[index]
        arrays = read_sample(self.root, record)
        mask = arrays["mask"]
        size = mask.shape[-1]
        rays = np.stack([rays_from_intrinsics(K, size, size) for K in arrays["intrinsics"]])
        return {
            "images": frames_to_batch(arrays["rgb"])[0],
            "depth": torch.from_numpy(np.where(mask, arrays["depth"], 0.0).astype(np.float32)),
            "canonical": torch.from_numpy(np.where(mask[..., None], arrays["canonical"], 0.0).astype(np.float32)),
            "mask": torch.from_numpy(mask),
            "surface": torch.from_numpy(arrays["surface"]),
            "rays": torch.from_numpy(rays.astype(np.float32)),
            "intrinsics": torch.from_numpy(arrays["intrinsics"].astype(np.float32)),
            "world_from_camera": torch.from_numpy(arrays["world_from_camera"].astype(np.float32)),
            "tracks": torch.from_numpy(arrays["tracks"]),
            "track_visible": torch.from_numpy(arrays["track_visible"]),
            "track_canonical": torch.from_numpy(arrays["track_canonical"]),
            "track_query_frame": torch.from_numpy(arrays["track_query_frame"].astype(np.int64)),
            "index": torch.tensor(position, dtype=torch.int64),
        }

