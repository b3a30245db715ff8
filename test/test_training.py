"""The training system on a small real dataset (shared faces re-rendered at 32 px): a short run
lowers the loss, a resumed run continues exactly, two gloo DDP processes match one process with the
same global batch, and bad input gets clear errors."""
from __future__ import annotations

import csv
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from faceanything_ros.config import ModelConfig, load_yaml, save_yaml
from faceanything_ros.model.checkpoint import read_checkpoint_metadata
from faceanything_ros.model.net import FaceAnythingNet
from training import train_cli
from training.config import OptimConfig, TrainConfig
from training.losses import LossWeights
from training.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]


def small_config(**overrides) -> TrainConfig:
    base = TrainConfig(stage=2, model_size="tiny", image_size=32, batch_size=4, seq_lens=(1, 2), steps=30,
                       eval_every=10, log_every=1, val_samples=4, select_metric="canonical.median_mm", workers=0,
                       seed=5, precision="fp32", losses=LossWeights(tracks=1.0),
                       optim=OptimConfig(lr=1e-3, warmup_steps=2, ema_decay=0.9))
    return dataclasses.replace(base, **overrides)


def train_losses(run: Path) -> dict[int, float]:
    """``step -> total loss`` from the run's ``train.csv``."""
    with (run / "train.csv").open(newline="") as handle:
        return {int(row["step"]): float(row["total"]) for row in csv.DictReader(handle)}


def test_a_short_run_lowers_the_loss_and_exports_a_trained_checkpoint(small_dataset, tmp_path):
    torch.set_num_threads(1)
    summary = Trainer(small_config(), small_dataset, tmp_path / "run").run()
    losses = train_losses(tmp_path / "run")
    assert sorted(losses) == list(range(1, 31))
    first, last = sum(losses[s] for s in range(1, 6)) / 5, sum(losses[s] for s in range(26, 31)) / 5
    assert last < 0.8 * first
    metadata = read_checkpoint_metadata(tmp_path / "run" / "model.safetensors")
    assert metadata.trained and metadata.input_resolution == (32, 32)
    assert metadata.training_data["recipe"]["stage"] == 2
    assert metadata.training_data["compute"][-1]["steps"] in (10, 20, 30)
    assert {"depth", "canonical", "mask", "tracking"} <= set(summary)
    weights = load_file(str(tmp_path / "run" / "model.safetensors"))
    assert all(t.dtype == torch.float16 for t in weights.values())


def test_a_resumed_run_continues_exactly(small_dataset, tmp_path):
    torch.set_num_threads(1)
    config = small_config(steps=12, eval_every=6)
    Trainer(config, small_dataset, tmp_path / "straight").run()
    Trainer(config, small_dataset, tmp_path / "resumed").run(stop_after=5)
    assert max(train_losses(tmp_path / "resumed")) == 5
    Trainer(config, small_dataset, tmp_path / "resumed", resume=True).run()
    straight, resumed = train_losses(tmp_path / "straight"), train_losses(tmp_path / "resumed")
    assert sorted(resumed) == list(range(1, 13))
    for step in range(6, 13):
        assert resumed[step] == pytest.approx(straight[step], rel=1e-5, abs=1e-6)
    a = torch.load(tmp_path / "straight" / "state.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "resumed" / "state.pt", weights_only=True)["model"]
    assert all(torch.allclose(a[name], b[name], atol=1e-6) for name in a)


def test_seed_option_draws_another_stream_and_is_kept_for_resume(small_dataset, tmp_path, caplog):
    torch.set_num_threads(1)
    config_path = tmp_path / "c.yaml"
    save_yaml(small_config(steps=3, eval_every=3), config_path)
    common = [str(config_path), "--data", str(small_dataset), "--device", "cpu", "--threads", "1"]
    assert train_cli.main([*common, "--out", str(tmp_path / "own")]) == 0
    assert train_cli.main([*common, "--out", str(tmp_path / "other"), "--seed", "9", "--stop-after", "2"]) == 0
    assert load_yaml(TrainConfig, tmp_path / "other" / "config.yaml").seed == 9
    own, other = train_losses(tmp_path / "own"), train_losses(tmp_path / "other")
    assert own[1] != pytest.approx(other[1], rel=1e-4)
    assert train_cli.main([*common, "--out", str(tmp_path / "other"), "--resume"]) == 2
    assert "differs from the given config" in caplog.text
    assert train_cli.main([*common, "--out", str(tmp_path / "other"), "--resume", "--seed", "9"]) == 0
    assert sorted(train_losses(tmp_path / "other")) == [1, 2, 3]


def test_two_gloo_processes_match_one_process_with_the_same_global_batch(small_dataset, tmp_path):
    config_path = tmp_path / "ddp.yaml"
    save_yaml(small_config(steps=4, eval_every=4), config_path)
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29617",
               "-m", "training.train_cli", str(config_path), "--data", str(small_dataset), "--out", str(tmp_path / "two"),
               "--device", "cpu", "--threads", "1"]
    result = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert train_cli.main([str(config_path), "--data", str(small_dataset), "--out", str(tmp_path / "one"),
                           "--device", "cpu", "--threads", "1"]) == 0
    two = torch.load(tmp_path / "two" / "state.pt", weights_only=True)["model"]
    one = torch.load(tmp_path / "one" / "state.pt", weights_only=True)["model"]
    torch.manual_seed(5)  # the config's seed: the trainer's initial weights
    initial = FaceAnythingNet(ModelConfig.preset("tiny", image_size=32)).state_dict()

    def relative(a, b):
        return max(float((a[name] - b[name]).abs().max() / (a[name].abs().max() + 1e-8)) for name in a)

    # the all-reduce sums in another order; Adam's normalised steps turn that into 1e-4 to a few 1e-3
    # (largest where a gradient is near zero and its sign is decided by rounding), while 4 steps move
    # the weights by far more
    assert relative(one, two) < 5e-3
    assert relative(one, initial) > 10 * relative(one, two)


def test_bad_input_gets_clear_errors(small_dataset, tmp_path, caplog):
    config_path = tmp_path / "c.yaml"
    save_yaml(small_config(), config_path)
    assert train_cli.main([str(config_path), "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "r")]) == 2
    assert "no dataset manifest" in caplog.text
    broken = tmp_path / "broken.yaml"
    broken.write_text("stage: 3\n")
    assert train_cli.main([str(broken), "--data", str(small_dataset), "--out", str(tmp_path / "r")]) == 2
    assert "stage must be 1 or 2" in caplog.text
    typo = tmp_path / "typo.yaml"
    typo.write_text("batchsize: 4\n")
    assert train_cli.main([str(typo), "--data", str(small_dataset), "--out", str(tmp_path / "r")]) == 2
    assert "unknown TrainConfig keys" in caplog.text
    assert train_cli.main([str(config_path), "--data", str(small_dataset), "--out", str(tmp_path / "r"), "--resume"]) == 2
    assert "cannot resume" in caplog.text
    wrong_size = tmp_path / "size.yaml"
    save_yaml(small_config(image_size=64), wrong_size)
    assert train_cli.main([str(wrong_size), "--data", str(small_dataset), "--out", str(tmp_path / "r")]) == 2
    assert "images are 32 px but the config trains at 64 px" in caplog.text
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "manifest.json").write_text("{not json")
    assert train_cli.main([str(config_path), "--data", str(corrupt), "--out", str(tmp_path / "r")]) == 2
    assert "corrupt dataset manifest" in caplog.text


def test_batches_never_mix_datasets_and_resume_mid_stream():
    from training.batches import StepBatches

    full = list(StepBatches([10, 30], 4, 0, 1, seed=2, start_step=0, end_step=40))
    assert all(len({key[0] for key in batch}) == 1 for batch in full)
    drawn = [batch[0][0] for batch in full]
    assert 0 < drawn.count(0) < drawn.count(1)  # drawn in proportion to size
    assert list(StepBatches([10, 30], 4, 0, 1, seed=2, start_step=17, end_step=40)) == full[17:]
    halves = [list(StepBatches([10, 30], 4, rank, 2, seed=2, start_step=0, end_step=40)) for rank in (0, 1)]
    assert [a + b for a, b in zip(*halves)] == full
    for dataset, length in ((0, 10), (1, 30)):  # an epoch visits every sample once
        keys = [key for batch in full for key in batch if key[0] == dataset and key[1] == 0]
        assert sorted(k[2] for k in keys) == list(range(length))
