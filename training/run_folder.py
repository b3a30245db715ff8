"""A training run's folder: config, logs, resumable state and the exported model.

Layout::

    RUN/config.yaml               the TrainConfig of the run (a resumed run must match it)
    RUN/train.csv, RUN/val.csv    one row per logged step / validation: step and every metric
    RUN/tensorboard/              the same scalars for TensorBoard
    RUN/state.pt                  last full state (weights, EMA, optimiser, step, schedule): --resume
    RUN/model.safetensors         the best EMA weights by validation, as ``Predictor`` loads them
    RUN/metrics.json              validation summary of the exported model and its step
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import torch

from faceanything_ros.config import load_yaml, save_yaml, to_dict
from faceanything_ros.files import write_atomically
from training.config import TrainConfig

STATE_FILE = "state.pt"
MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.yaml"


class RunFolder:
    """The files of one run; only the main process (``rank 0``) writes."""

    def __init__(self, root: str | Path, config: TrainConfig, resume: bool, writer: bool) -> None:
        self.root = Path(root)
        self.writer = writer
        config_path = self.root / CONFIG_FILE
        if resume:
            if not (self.root / STATE_FILE).is_file():
                raise FileNotFoundError(f"cannot resume: no {STATE_FILE} in {self.root}")
            saved = load_yaml(TrainConfig, config_path)
            if to_dict(saved) != to_dict(config):
                raise ValueError(f"cannot resume {self.root}: its {CONFIG_FILE} differs from the given config")
        elif (self.root / STATE_FILE).exists() or (self.root / MODEL_FILE).exists():
            raise FileExistsError(f"{self.root} already holds a run; pass --resume to continue it or choose a new --out")
        self._csv_fields: dict[str, list[str]] = {}
        self._tensorboard = None
        if writer:
            self.root.mkdir(parents=True, exist_ok=True)
            save_yaml(config, config_path)
            from torch.utils.tensorboard import SummaryWriter

            self._tensorboard = SummaryWriter(str(self.root / "tensorboard"))

    @property
    def state_path(self) -> Path:
        return self.root / STATE_FILE

    @property
    def model_path(self) -> Path:
        return self.root / MODEL_FILE

    def log(self, step: int, split: str, values: dict[str, float]) -> None:
        """Append ``values`` (flat ``name -> number``) for ``step`` to ``RUN/<split>.csv`` (split: train or
        val; columns fixed by the file's header, missing values left empty) and to TensorBoard."""
        if not self.writer:
            return
        path = self.root / f"{split}.csv"
        if split not in self._csv_fields:
            if path.is_file() and path.stat().st_size:
                with path.open(newline="") as handle:
                    self._csv_fields[split] = next(csv.reader(handle))
            else:
                self._csv_fields[split] = ["step", *sorted(values)]
                path.write_text(",".join(self._csv_fields[split]) + "\n")
        with path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self._csv_fields[split], extrasaction="ignore")
            writer.writerow({"step": step, **{k: f"{v:.6g}" for k, v in values.items()}})
        for name, value in values.items():
            self._tensorboard.add_scalar(f"{split}/{name}", value, step)
        self._tensorboard.flush()

    def save_state(self, state: dict[str, Any]) -> None:
        """Write the resumable state atomically (a crash never leaves a half-written file)."""
        if self.writer:
            write_atomically(self.state_path, lambda temporary: torch.save(state, temporary))

    def load_state(self) -> dict[str, Any]:
        """The state written by ``save_state``; ``ValueError`` naming the file when it is corrupt."""
        try:
            return torch.load(self.state_path, map_location="cpu", weights_only=True)
        except (RuntimeError, EOFError, OSError, ValueError) as error:
            raise ValueError(f"corrupt training state {self.state_path}: {error}") from error

    def write_metrics(self, step: int, summary: dict[str, dict[str, float]]) -> None:
        """The exported model's validation ``summary`` and ``step`` as ``metrics.json``."""
        if self.writer:
            payload = json.dumps({"step": step, **summary}, indent=1) + "\n"
            write_atomically(self.root / "metrics.json", lambda temporary: temporary.write_text(payload))

    def close(self) -> None:
        if self._tensorboard is not None:
            self._tensorboard.close()
