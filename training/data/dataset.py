"""``torch.utils.data.Dataset`` over a sharded data-engine dataset, in the model's layout.

One item is one sample of ``T`` frames; the default collate stacks items into batches, so the
image becomes ``(B, T, 3, H, W)`` uint8, which ``images_to_float`` turns into the float32 [0, 1]
input of ``FaceAnythingNet.forward``.
Samples are copied out of memory-mapped shard arrays (``shards.ShardReader``), so worker processes
share the page cache instead of each holding the dataset.

With a ``TrainAugmentConfig`` every epoch sees new pixels: ``item(index, epoch)`` seeds its random
draw by ``(seed, epoch, index)``, so a run is reproducible whatever the number of workers (plain
indexing is epoch 0).
Augmentations keep the ground truth exact: crop jitter (zoom and shift, as a detector box would
move; ground truth moves with the image, pixels from outside the stored crop leave it), horizontal
flip (the camera's x axis mirrored, canonical coordinates mirrored through the template's
left-right symmetry plane ``x = 0``), then photometric jitter, blur, noise and JPEG on the image.

Items are ``faceanything_ros.data.samples.to_item`` tensors: depth and rays in each frame's
virtual camera, what the network predicts.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from faceanything_ros.canonical.space import MIRROR
from faceanything_ros.data.format import SPLITS, ShardReader, camera_known, read_manifest
from faceanything_ros.data.samples import to_item
from training.data.augment import photometric
from training.data.config import AugmentConfig


@dataclass(frozen=True)
class TrainAugmentConfig:
    """Per-epoch augmentation of stored samples.

    flip_probability: horizontal flip; zoom: crop side scale range (> 1 zooms in); shift: max crop
    shift as a fraction of the side; photometric: colour/blur/noise/JPEG ranges
    (``augment.photometric``; background and occluder fields are not used here).
    """

    flip_probability: float = 0.5
    zoom: tuple[float, float] = (0.9, 1.15)
    shift: float = 0.05
    photometric: AugmentConfig = field(default_factory=lambda: AugmentConfig(
        brightness=(0.85, 1.15), contrast=(0.85, 1.15), saturation=(0.8, 1.2), gain=(0.92, 1.08),
        gamma=(0.9, 1.1), blur_probability=0.15, noise_probability=0.3, noise_std=(0.0, 0.02),
        jpeg_probability=0.3, jpeg_quality=(50, 95)))

    def __post_init__(self) -> None:
        if not 0.0 <= self.flip_probability <= 1.0:
            raise ValueError(f"flip_probability must be in [0, 1], got {self.flip_probability}")
        if len(self.zoom) != 2 or not 0.0 < self.zoom[0] <= self.zoom[1]:
            raise ValueError(f"zoom must be an ordered pair of positive scales, got {self.zoom}")
        if not 0.0 <= self.shift < 0.5:
            raise ValueError(f"shift must be in [0, 0.5), got {self.shift}")


class FaceDataset(Dataset):
    """Samples of one split (or all with ``split=None``) of the dataset at ``root``; items as
    ``faceanything_ros.data.samples.to_item`` makes them, augmented when ``augment`` is given."""

    def __init__(self, root: str | Path, split: str | None = "train", augment: TrainAugmentConfig | None = None,
                 seed: int = 0) -> None:
        if split is not None and split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS} or None, got {split!r}")
        self.root = Path(root)
        self.manifest = read_manifest(self.root)
        self.records = [(i, r) for i, r in enumerate(self.manifest["samples"]) if split in (None, r["split"])]
        self.augment = augment
        self.seed = seed
        self.reader = ShardReader(self.root)

    @property
    def image_size(self) -> int:
        """Side ``S`` of the stored square images, pixels."""
        return int(self.manifest["image_size"])

    def __len__(self) -> int:
        return len(self.records)

    def record(self, index: int) -> dict[str, Any]:
        """The manifest record (source, split, licence, ...) of item ``index``."""
        return self.records[index][1]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.item(index, 0)

    def item(self, index: int, epoch: int) -> dict[str, torch.Tensor]:
        """Item ``index`` with epoch ``epoch``'s augmentation draw."""
        position, record = self.records[index]
        arrays = self.reader.sample(record)
        if self.augment is not None:
            rng = np.random.default_rng((self.seed, epoch, position))
            arrays = augment_sample(rng, arrays, self.augment)
        return to_item(arrays, position, camera_known(record))


def augment_sample(rng: np.random.Generator, arrays: dict[str, np.ndarray], config: TrainAugmentConfig) -> dict[str, np.ndarray]:
    """One augmentation draw applied to every frame of a stored sample (see module docstring).

    Returns new arrays with an ``in_frame`` (T, S, S) bool entry: pixels that come from the stored crop.
    """
    size = arrays["mask"].shape[-1]
    zoom = float(rng.uniform(*config.zoom))
    shift = rng.uniform(-config.shift, config.shift, size=2) * size
    flip = bool(rng.random() < config.flip_probability)
    # new pixel = A @ old pixel (pixel centres at integers), zoom about the image centre, then flip
    centre = (size - 1) / 2.0
    affine = np.array([[zoom, 0.0, centre * (1 - zoom) + shift[0]], [0.0, zoom, centre * (1 - zoom) + shift[1]], [0, 0, 1.0]])
    if flip:
        affine = np.array([[-1.0, 0.0, size - 1.0], [0.0, 1.0, 0.0], [0, 0, 1.0]]) @ affine
    out = dict(arrays)
    warp = lambda image, flags: cv2.warpAffine(image, affine[:2], (size, size), flags=flags,  # noqa: E731
                                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    inside = np.ones((size, size), dtype=np.uint8)
    in_frame = warp(inside, cv2.INTER_NEAREST).astype(bool)
    out["in_frame"] = np.broadcast_to(in_frame, arrays["mask"].shape).copy()
    out["rgb"] = np.stack([photometric(rng, warp(frame, cv2.INTER_LINEAR), config.photometric) for frame in arrays["rgb"]])
    for name in ("mask", "surface"):
        out[name] = np.stack([warp(m.astype(np.uint8), cv2.INTER_NEAREST).astype(bool) for m in arrays[name]]) & in_frame
    out["depth"] = np.stack([warp(np.nan_to_num(d, nan=0.0), cv2.INTER_NEAREST) for d in arrays["depth"]])
    canonical = np.stack([warp(np.nan_to_num(c.astype(np.float32), nan=0.0), cv2.INTER_NEAREST) for c in arrays["canonical"]])
    track_canonical = arrays["track_canonical"]
    if flip:
        canonical = canonical * MIRROR.astype(np.float32)
        track_canonical = track_canonical * MIRROR.astype(np.float32)
        # a mirrored image is seen by a camera whose x axis is mirrored (det -1 pose)
        out["world_from_camera"] = arrays["world_from_camera"] @ np.diag([-1.0, 1.0, 1.0, 1.0])
    out["canonical"] = canonical
    out["track_canonical"] = track_canonical
    # K' = A K with the flip's negative x scale moved into the camera's mirrored x axis
    unflip = np.diag([-1.0, 1.0, 1.0]) if flip else np.eye(3)
    out["intrinsics"] = affine @ arrays["intrinsics"] @ unflip
    tracks = arrays["tracks"] @ affine[:2, :2].T + affine[:2, 2]
    cols, rows = np.rint(tracks[..., 0]), np.rint(tracks[..., 1])
    inside_tracks = np.isfinite(tracks).all(axis=-1) & (cols >= 0) & (cols < size) & (rows >= 0) & (rows < size)
    out["tracks"] = tracks.astype(np.float32)
    out["track_visible"] = arrays["track_visible"] & inside_tracks
    return out
