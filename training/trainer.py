"""The training loop: one process, or one of several DDP processes started by ``torchrun``.

``Trainer(config, data, out, ...).run()`` trains ``FaceAnythingNet`` on a data-engine dataset with
``training.losses``: AdamW, linear warmup + cosine decay, gradient clipping, an EMA of the weights
(validated and exported), bf16 autocast on CUDA, optional ``torch.compile``. Every ``eval_every``
steps the EMA weights are scored on the validation split (``faceanything_ros.eval.dataset_eval``, the
code of ``faceanything eval``), the resumable
state is saved and, when the selection metric improved, ``RUN/model.safetensors`` is exported.
A ``minutes`` budget shortens the schedule to what fits (measured speed) and always ends with a
saved, evaluated, exported model. Without a budget a run is deterministic: resuming gives the same
losses as not stopping.
"""
from __future__ import annotations

import contextlib
import math
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader
from tqdm import tqdm

from faceanything_ros.config import ModelConfig, to_dict
from faceanything_ros.model.checkpoint import CheckpointMetadata, load_checkpoint, save_checkpoint
from faceanything_ros.model.net import FaceAnythingNet
from training.batches import EpochKeyed, StepBatches, window
from training.config import TrainConfig
from faceanything_ros.data.samples import images_to_float
from faceanything_ros.eval.dataset_eval import model_predictions, score_batches
from training.data.dataset import FaceDataset
from training.losses import compute_losses
from training.run_folder import RunFolder

SPEED_PROBE_STEPS = (3, 13)  # a --minutes schedule is first sized at the speed between these two steps
FINAL_RESERVE_S = 30.0  # seconds kept free at the end of a --minutes budget for the last validation


@dataclass(frozen=True)
class Process:
    """This process's place in a (possibly distributed) run."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0


class Trainer:
    """Trains one stage (see module docstring); ``run()`` returns the exported model's validation summary."""

    def __init__(self, config: TrainConfig, data: str | Path | list[str | Path], out: str | Path,
                 minutes: float | None = None, init: str | Path | None = None, resume: bool = False,
                 process: Process = Process()) -> None:
        self.config, self.process, self.minutes = config, process, minutes
        roots = [data] if isinstance(data, (str, Path)) else list(data)
        self.train_sets = [FaceDataset(root, "train", config.augment, seed=config.seed) for root in roots]
        self.val_set = FaceDataset(roots[0], "val", None)
        if not len(self.val_set):
            raise ValueError(f"dataset {roots[0]} has no validation sample; build it with more sources")
        for root, dataset in zip(roots, self.train_sets):
            if dataset.image_size != config.image_size:
                raise ValueError(f"dataset {root} images are {dataset.image_size} px but the config trains at "
                                 f"{config.image_size} px")
        self.run_folder = RunFolder(out, config, resume, writer=process.main)
        torch.manual_seed(config.seed)
        model_config = ModelConfig.preset(config.model_size, image_size=config.image_size)
        self.model = FaceAnythingNet(model_config).to(process.device)
        self.lineage: list[dict[str, Any]] = []
        if init is not None:
            self._load_init(Path(init))
        self.ema = AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(config.optim.ema_decay), use_buffers=True)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.optim.lr, betas=config.optim.betas,
                                           weight_decay=config.optim.weight_decay)
        self.step, self.total_steps, self.best = 0, config.steps, math.inf
        self.best_summary: dict[str, dict[str, float]] = {}
        self.seconds = 0.0  # training seconds of earlier runs of this folder (resume)
        self._started = time.monotonic()
        if resume:
            self._load_state(self.run_folder.load_state())
        network = DistributedDataParallel(self.model) if process.world > 1 else self.model
        self.network = torch.compile(network) if config.compile else network

    def _load_init(self, path: Path) -> None:
        model, metadata = load_checkpoint(path)
        if metadata.model_config != self.model.config:
            raise ValueError(f"--init checkpoint {path} is a {metadata.model_config.size} network at "
                             f"{metadata.model_config.image_size} px; this config trains {self.model.config}")
        self.model.load_state_dict(model.state_dict())
        self.lineage = list(metadata.training_data.get("compute", []))

    def _load_state(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.total_steps, self.best = state["step"], state["total_steps"], state["best"]
        self.best_summary, self.seconds, self.lineage = state["best_summary"], state["seconds"], state["lineage"]

    def _state(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "ema": self.ema.state_dict(), "optimizer": self.optimizer.state_dict(),
                "step": self.step, "total_steps": self.total_steps, "best": self.best,
                "best_summary": self.best_summary, "seconds": self.elapsed_seconds(), "lineage": self.lineage}

    def elapsed_seconds(self) -> float:
        """Training seconds of this run folder: earlier runs (resume) plus this ``run()`` so far."""
        return self.seconds + time.monotonic() - self._started

    def learning_rate(self, step: int) -> float:
        """Linear warmup to ``lr`` over ``warmup_steps``, then cosine decay to ``min_lr_ratio * lr`` at the
        end of the schedule."""
        optim = self.config.optim
        if step < optim.warmup_steps:
            return optim.lr * (step + 1) / optim.warmup_steps
        progress = min(1.0, (step - optim.warmup_steps) / max(1, self.total_steps - optim.warmup_steps))
        return optim.lr * (optim.min_lr_ratio + (1 - optim.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.config.precision == "bf16" and self.process.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One optimiser step on this process's part of the global batch; the loss terms."""
        first, length = window(self.config.seed, self.step, self.config.seq_lens, batch["images"].shape[1])
        batch = {name: _window(name, value, first, length) for name, value in batch.items()}
        batch = {name: value.to(self.process.device, non_blocking=True) for name, value in batch.items()}
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate(self.step)
        self.model.train()
        with self._autocast():
            outputs = self.network(images_to_float(batch["images"]))
        terms = compute_losses(outputs, batch, self.config.losses)
        self.optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        if self.config.optim.grad_clip > 0:
            terms["grad_norm"] = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.optim.grad_clip)
        self.optimizer.step()
        self.ema.update_parameters(self.model)
        self.step += 1
        return {name: float(value.detach()) for name, value in terms.items()}

    def validate(self) -> dict[str, dict[str, float]]:
        """Score the EMA weights on the first ``val_samples`` validation samples (main process)."""
        count = min(self.config.val_samples, len(self.val_set))
        loader = DataLoader(torch.utils.data.Subset(self.val_set, range(count)), batch_size=8, num_workers=0)
        autocast = self._autocast() if self.process.device.type == "cuda" else None
        mm_per_unit = self.val_set.manifest["canonical_space"]["mm_per_unit"]
        return score_batches(lambda batch: model_predictions(self.ema.module, batch, self.process.device, mm_per_unit,
                                                             autocast), loader, mm_per_unit)

    def _loader(self, end_step: int) -> DataLoader:
        sampler = StepBatches([len(d) for d in self.train_sets], self.config.batch_size, self.process.rank,
                              self.process.world, self.config.seed, self.step, end_step)
        workers = self.config.workers
        # two batches in flight per worker (torch's default): a 4-frame batch of 128 is about 0.3 GB of shared memory
        return DataLoader(EpochKeyed(self.train_sets), batch_sampler=sampler, num_workers=workers,
                          pin_memory=self.process.device.type == "cuda", persistent_workers=False,
                          worker_init_fn=_single_threaded)

    def run(self, stop_after: int | None = None) -> dict[str, dict[str, float]]:
        """Train to the end of the schedule (or the time budget); returns the exported model's summary.

        ``stop_after``: end after this step with a saved, resumable state and the schedule unchanged
        (a job slot ending), so that ``resume`` continues exactly as if nothing had stopped.
        """
        self._started = started = time.monotonic()
        deadline = None if self.minutes is None else started + 60.0 * self.minutes
        progress = tqdm(total=self.total_steps, initial=self.step, unit="step", disable=not self.process.main,
                        desc=f"stage {self.config.stage}")
        probe: dict[str, float] = {}
        while self.step < self.total_steps:
            for batch in self._loader(self.total_steps):
                terms = self.train_step(batch)
                progress.update(1)
                if self.step % self.config.log_every == 0:
                    progress.set_postfix(loss=f"{terms['total']:.3f}", lr=f"{self.learning_rate(self.step):.2e}")
                    self.run_folder.log(self.step, "train", terms)
                if deadline is not None:
                    self._follow_budget(probe, deadline)
                    progress.total = self.total_steps
                stopping = self.step == stop_after
                if self.step % self.config.eval_every == 0 or self.step >= self.total_steps or stopping:
                    self._checkpoint()
                if self.step >= self.total_steps or stopping:
                    break
            if self.step == stop_after:
                break
        progress.close()
        self.run_folder.close()
        return self.best_summary

    def _follow_budget(self, probe: dict[str, float], deadline: float) -> None:
        """Fit the schedule to the time budget at the speed measured since ``SPEED_PROBE_STEPS[0]`` (validation
        included): first at ``SPEED_PROBE_STEPS[1]``, then again at every checkpoint (within ``config.steps``);
        ended at once when the budget runs out. The main process decides; DDP processes follow."""
        now = time.monotonic()
        if self.step == SPEED_PROBE_STEPS[0]:
            probe["start"], probe["step"] = now, self.step
        measured = self.step == SPEED_PROBE_STEPS[1] or (self.step % self.config.eval_every == 0 and "start" in probe)
        if measured and self.step > probe.get("step", self.step):
            seconds_per_step = (now - probe["start"]) / (self.step - probe["step"])
            remaining = max(0, (self.total_steps - self.step) // self.config.eval_every)
            budget = deadline - now - FINAL_RESERVE_S * (1 + remaining / 4)
            self.total_steps = min(self.config.steps, self.step + max(1, int(budget / seconds_per_step)))
        if now > deadline - FINAL_RESERVE_S:
            self.total_steps = min(self.total_steps, self.step)
        if self.process.world > 1:
            agreed = torch.tensor([self.total_steps], device=self.process.device)
            dist.broadcast(agreed, src=0)
            self.total_steps = int(agreed.item())

    def _checkpoint(self) -> None:
        """Validate (main process), export when better, save the resumable state; all processes wait."""
        if self.process.main:
            summary = self.validate()
            flat = {f"{family}.{name}": value for family, values in summary.items() for name, value in values.items()}
            self.run_folder.log(self.step, "val", flat)
            family, name = self.config.select_metric.split(".", 1)
            score = summary.get(family, {}).get(name, math.inf)
            if score < self.best or not self.run_folder.model_path.exists():
                self.best, self.best_summary = score, summary
                self.export(summary)
            self.run_folder.save_state(self._state())
        if self.process.world > 1:
            dist.barrier()

    def export(self, summary: dict[str, dict[str, float]]) -> Path:
        """Write the EMA weights as ``RUN/model.safetensors`` (float16) with the data summary, recipe,
        compute and ``summary`` in its metadata."""
        manifests = [dataset.manifest for dataset in self.train_sets]
        manifest = manifests[0]
        compute = self.lineage + [{
            "stage": self.config.stage, "steps": self.step, "hours": round(self.elapsed_seconds() / 3600.0, 3),
            "samples_seen": self.step * self.config.batch_size, "processes": self.process.world,
            "device": torch.cuda.get_device_name() if self.process.device.type == "cuda" else platform.processor() or "cpu",
        }]
        training_data = {
            "datasets": [{"counts": m["counts"], "image_size": m["image_size"], "seq_len": m["seq_len"],
                          "terms": sorted({r["provenance"].get("terms", "") for r in m["samples"]} - {""})}
                         for m in manifests],
            "recipe": to_dict(self.config), "compute": compute, "metrics": summary, "step": self.step,
        }
        metadata = CheckpointMetadata(model_config=self.model.config, trained=True, training_data=training_data,
                                      canonical_space_id=manifest["canonical_space"]["id"],
                                      canonical_space_version=manifest["canonical_space"]["version"])
        self.run_folder.write_metrics(self.step, summary)
        return save_checkpoint(self.run_folder.model_path, self.ema.module, metadata, dtype=torch.float16)


def _single_threaded(_: int) -> None:
    """Data-loader worker set-up: OpenCV single-threaded (the workers themselves are the parallelism)."""
    cv2.setNumThreads(1)


def _window(name: str, value: torch.Tensor, first: int, length: int) -> torch.Tensor:
    """Frames ``[first, first + length)`` of one batch entry (frame axis 1, or 2 for tracks)."""
    if name in ("tracks", "track_visible"):
        return value[:, :, first:first + length]
    if name in ("track_canonical", "track_query_frame", "index", "camera_known"):
        return value
    return value[:, first:first + length]
