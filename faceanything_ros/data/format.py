"""The data-engine dataset format: manifest, per-shard ``.npy`` arrays, and their reader.

Layout of a dataset folder::

    manifest.json                         format, sizes, array schema, per-sample records, shard list
    shards/<split>-<NNNNN>/<name>.npy     array ``name`` of up to ``samples_per_shard`` samples of one split

Each shard array stacks its samples on a leading axis (``(n, T, S, S, 3)`` for ``rgb``), so readers
memory-map it (``np.load(..., mmap_mode="r")``) and copy one sample without reading the others;
the operating system's page cache, not each reader process, holds the data. Stored dtypes and why
they are exact enough: ``rgb`` uint8 (the image itself); ``depth`` float32 metres (NaN off the mask;
exact renderer output); ``canonical`` float16 (NaN off the mask; spacing <= 2^-11 on [-1, 1], i.e.
< 0.1 mm on the face); ``mask``/``surface``/``track_visible`` bool; ``intrinsics``/``world_from_camera``
float64 (exact); ``tracks``/``track_canonical`` float32; ``track_query_frame`` int32. A manifest sample
record holds ``shard``, ``index``, ``split``, ``source`` (path relative to its data root),
``source_root``, ``identity``, ``video``, ``frames`` (source frame indices) and ``provenance``
(repo, commit, licence, terms). Written by the training side's data engine (``faceanything-data``);
read here so that ``faceanything eval`` scores any method on it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from faceanything_ros.canonical.space import CanonicalSpace

SPLITS = ("train", "val", "test")
FORMAT = "faceanything-data"
FORMAT_VERSION = 2
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
# optional record key: True when the source camera itself took the sample (its K is the face mesh
# labeller's assumption, not a measured camera); absent or False for samples of a known novel camera
SOURCE_VIEW_KEY = "source_view"


def camera_known(record: dict[str, Any]) -> bool:
    """Whether a sample's intrinsics are exact (a novel camera of the data engine), so that its rays,
    focal length and metric depth are ground truth; False for source-view samples, whose K was
    assumed when labelling (their relative depth, canonical map, mask and tracks stay exact)."""
    return not record.get(SOURCE_VIEW_KEY, False)



def space_metadata(space: CanonicalSpace) -> dict[str, Any]:
    """The manifest's ``canonical_space`` entry: ``id``, ``version`` and ``mm_per_unit`` of ``space``."""
    return {"id": space.id, "version": space.version, "mm_per_unit": space.mm_per_unit}


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


class ShardReader:
    """Reads samples of one dataset through memory-mapped shard arrays, opened once per shard and
    process (safe to create before worker processes fork: nothing is opened until first use)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._open: dict[str, dict[str, np.ndarray]] = {}

    def shard(self, name: str) -> dict[str, np.ndarray]:
        """The memory-mapped ``SAMPLE_ARRAYS`` of shard ``name`` (``(n, ...)`` each); clear errors for a
        missing, truncated or foreign shard."""
        arrays = self._open.get(name)
        if arrays is None:
            folder = self.root / name
            if not folder.is_dir():
                raise FileNotFoundError(f"dataset shard missing: {folder}")
            arrays = {}
            for key, (dtype, _, _) in SAMPLE_ARRAYS.items():
                path = folder / f"{key}.npy"
                try:
                    arrays[key] = np.load(path, mmap_mode="r")
                except (OSError, ValueError) as error:
                    raise ValueError(f"corrupt or missing dataset array {path}: {error}") from error
                if arrays[key].dtype != np.dtype(dtype):
                    raise ValueError(f"dataset array {path} is {arrays[key].dtype}, expected {dtype}")
            counts = {len(value) for value in arrays.values()}
            if len(counts) != 1:
                raise ValueError(f"dataset shard {folder} is inconsistent: arrays hold {sorted(counts)} samples")
            self._open[name] = arrays
        return arrays

    def sample(self, record: dict[str, Any]) -> dict[str, np.ndarray]:
        """The ``SAMPLE_ARRAYS`` of one manifest record (copies, with their stored dtypes)."""
        arrays = self.shard(record["shard"])
        index = record["index"]
        if not 0 <= index < len(arrays["rgb"]):
            raise ValueError(f"sample {index} is not in shard {record['shard']} ({len(arrays['rgb'])} samples)")
        return {name: np.array(value[index]) for name, value in arrays.items()}


def read_sample(root: str | Path, record: dict[str, Any]) -> dict[str, np.ndarray]:
    """The ``SAMPLE_ARRAYS`` of one manifest record (one-off read; ``ShardReader`` for many)."""
    return ShardReader(root).sample(record)
