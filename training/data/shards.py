"""Writing data-engine datasets (the format and its reader: ``faceanything_ros.data.format``)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from faceanything_ros.data.format import FORMAT, FORMAT_VERSION, MANIFEST, RECORD_KEYS, SAMPLE_ARRAYS, SPLITS
from training.data.splits import check_splits


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
        name = f"shards/{split}-{index:05d}"
        (self.root / name).mkdir()
        for key in SAMPLE_ARRAYS:
            np.save(self.root / name / f"{key}.npy", np.stack([arrays[key] for arrays, _ in queue]))
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
