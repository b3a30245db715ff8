"""Sharded dataset storage: ``.npz`` shard files plus one ``manifest.json``.

Layout of a dataset folder::

    manifest.json                  format, sizes, array schema, per-sample records, shard list
    shards/<split>-<NNNNN>.npz     up to ``samples_per_shard`` samples of one split

Inside a shard, sample ``i`` (its index in the shard) stores each array of ``SAMPLE_ARRAYS`` under
the key ``"<i:05d>.<name>"`` (uncompressed, so one array is read without decoding the others).
Stored dtypes and why they are exact enough: ``rgb`` uint8 (the image itself); ``depth`` float32
metres (NaN off the mask; exact renderer output); ``canonical`` float16 (NaN off the mask; spacing
<= 2^-11 on [-1, 1], i.e. < 0.1 mm on the face); ``mask``/``surface``/``track_visible`` bool;
``intrinsics``/``world_from_camera`` float64 (exact); ``tracks``/``track_canonical`` float32;
``track_query_frame`` int32. A manifest sample record holds ``shard``, ``index``, ``split``,
``source`` (path relative to its data root), ``source_root``, ``identity``, ``video``, ``frames``
(source frame indices) and ``provenance`` (repo, commit, licence, terms).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from faceanything_ros.canonical.space import CanonicalSpace
from training.data.splits import SPLITS, check_splits

FORMAT = "faceanything-data"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"

# name -> (dtype, shape with T = frames, S = image side, N = tracks, description)
SAMPLE_ARRAYS: dict[str, tuple[str, str, str]] = {
    "rgb": ("uint8", "(T, S, S, 3)", "augmented RGB image"),
    "depth": ("float32", "(T, S, S)", "z-depth, metres, NaN off mask"),
    "canonical": ("float16", "(T, S, S, 3)", "canonical coordinates in [-1, 1], NaN off mask"),
    "mask": ("bool", "(T, S, S)", "face surface seen by the source image: ground truth valid"),
    "surface": ("bool", "(T, S, S)", "any face surface (mask + surface without texture)"),
    "intrinsics": ("float64", "(T, 3, 3)", "pinhole K, pixels"),
    "world_from_camera": ("float64", "(T, 4, 4)", "camera pose; world = source camera optical frame"),
    "tracks": ("float32", "(N, T, 2)", "pixel (u, v) of each track in each frame"),
    "track_visible": ("bool", "(N, T)", "track visible in frame"),
    "track_canonical": ("float32", "(N, 3)", "canonical coordinates of each track's point"),
    "track_query_frame": ("int32", "(N,)", "frame where each track was queried"),
}
RECORD_KEYS = ("split", "source", "source_root", "identity", "video", "frames", "provenance")


def space_metadata(space: CanonicalSpace) -> dict[str, Any]:
    """The manifest's ``canonical_space`` entry: ``id``, ``version`` and ``mm_per_unit`` of ``space``."""
    return {"id": space.id, "version": space.version, "mm_per_unit": space.mm_per_unit}


class ShardWriter:
    """Writes samples into per-split shards and the manifest (use as a context manager).

    ``metadata``: dataset-level facts for the manifest (image size, seq_len, canonical space, config).
    """

    def __init__(self, root: str | Path, samples_per_shard: int, metadata: dict[str, Any]) -> None:
        if samples_per_shard < 1:
            raise ValueError(f"samples_per_shard must be >= 1, got {samples_per_shard}")
        self.root = Path(root)
        if (self.root / MANIFEST).exists():
            raise FileExistsError(f"{self.root} already holds a dataset ({MANIFEST}); choose a new output folder")
        (self.root / "shards").mkdir(parents=True, exist_ok=True)
        self.samples_per_shard = samples_per_shard
        self.metadata = metadata
        self.records: list[dict[str, Any]] = []
        self.shards: list[dict[str, Any]] = []
        self._pending: dict[str, list[tuple[dict[str, np.ndarray], dict[str, Any]]]] = {s: [] for s in SPLITS}

    def add(self, arrays: dict[str, np.ndarray], record: dict[str, Any]) -> None:
        """Queue one sample (``SAMPLE_ARRAYS`` arrays with their dtypes) and its manifest record."""
        missing = sorted(set(SAMPLE_ARRAYS) - set(arrays)) + sorted(set(RECORD_KEYS) - set(record))
        if missing:
            raise ValueError(f"sample is missing {missing}")
        for name, (dtype, _, _) in SAMPLE_ARRAYS.items():
            if np.asarray(arrays[name]).dtype != np.dtype(dtype):
                raise ValueError(f"sample array {name!r} must be {dtype}, got {np.asarray(arrays[name]).dtype}")
        if record["split"] not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {record['split']!r}")
        queue = self._pending[record["split"]]
        queue.append(({name: arrays[name] for name in SAMPLE_ARRAYS}, dict(record)))
        if len(queue) >= self.samples_per_shard:
            self._flush(record["split"])

    def _flush(self, split: str) -> None:
        queue = self._pending[split]
        if not queue:
            return
        index = sum(1 for shard in self.shards if shard["split"] == split)
        name = f"shards/{split}-{index:05d}.npz"
        payload = {f"{i:05d}.{key}": value for i, (arrays, _) in enumerate(queue) for key, value in arrays.items()}
        np.savez(self.root / name, **payload)
        for i, (_, record) in enumerate(queue):
            self.records.append({"shard": name, "index": i, **record})
        self.shards.append({"file": name, "split": split, "num_samples": len(queue)})
        queue.clear()

    def close(self) -> Path:
        """Flush every split and write ``manifest.json`` (after checking splits never mix); its path."""
        for split in SPLITS:
            self._flush(split)
        check_splits(self.records)
        manifest = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            **self.metadata,
            "arrays": {name: {"dtype": d, "shape": s, "description": text} for name, (d, s, text) in SAMPLE_ARRAYS.items()},
            "counts": {split: sum(r["split"] == split for r in self.records) for split in SPLITS},
            "shards": self.shards,
            "samples": self.records,
        }
        path = self.root / MANIFEST
        path.write_text(json.dumps(manifest, indent=1) + "\n")
        return path

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()


def read_manifest(root: str | Path) -> dict[str, Any]:
    """The manifest dict of a dataset folder; clear errors for a missing or foreign file."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"no dataset manifest at {path}")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"corrupt dataset manifest {path}: {error}") from error
    if manifest.get("format") != FORMAT or manifest.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path} is not a {FORMAT} v{FORMAT_VERSION} manifest "
                         f"(format={manifest.get('format')!r}, version={manifest.get('version')!r})")
    return manifest


def read_sample(root: str | Path, record: dict[str, Any]) -> dict[str, np.ndarray]:
    """The ``SAMPLE_ARRAYS`` of one manifest record, with their stored dtypes."""
    path = Path(root) / record["shard"]
    if not path.is_file():
        raise FileNotFoundError(f"dataset shard missing: {path}")
    with np.load(path) as shard:
        return {name: shard[f"{record['index']:05d}.{name}"] for name in SAMPLE_ARRAYS}
