"""scripts/device_session.sh train, as the GPU machine runs it (no mediapipe, rclpy or rosbags), on the CPU at a tiny scale."""
from __future__ import annotations

import os
import subprocess
import sys

from conftest import REPO
from faceanything_ros.model.checkpoint import load_checkpoint

TINY_RUN = """stage: 2
model_size: tiny
image_size: 128
batch_size: 2
seq_lens: [1, 2]
steps: 2
eval_every: 2
log_every: 1
val_samples: 4
select_metric: canonical.median_mm
workers: 0
precision: bf16
"""


def _session(tmp_path, pack, **environment) -> subprocess.CompletedProcess:
    blocked = tmp_path / "blocked"
    for module in ("mediapipe", "rclpy", "rosbags"):  # what the GPU machine lacks
        (blocked / module).mkdir(parents=True)
        (blocked / module / "__init__.py").write_text(f"raise ImportError('{module} is not on this machine')\n")
    env = {**os.environ, "OUT": str(tmp_path / "out"), "WORK": str(tmp_path / "work"), "PACK": str(pack),
           "PYTHON": sys.executable, "DEVICE": "cpu", "WORKERS": "1", "PYTHONPATH": str(blocked), **environment}
    return subprocess.run(["bash", "scripts/device_session.sh", "train"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)


def test_device_training_session_renders_the_pack_and_exports_a_model(source_pack, tmp_path):
    config = tmp_path / "tiny_run.yaml"
    config.write_text(TINY_RUN)
    done = _session(tmp_path, source_pack, SCALE="0.03", TRAIN_CONFIG=str(config))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = tmp_path / "out"
    log = (out / "session.log").read_text()
    for name, count, frames in (("single128", 720, 1), ("seq128", 180, 4), ("real128", 240, 1), ("realseq128", 90, 4)):
        assert f"rendered {name}: {count} samples of {frames} frame(s)" in log
    assert {"model.safetensors", "metrics.json", "config.yaml", "val.csv", "session.log"} <= {p.name for p in out.iterdir()}
    model, metadata = load_checkpoint(out / "model.safetensors")  # fine-tuned from the bundled weights
    assert metadata.trained and metadata.input_resolution == (128, 128) and model.config.size == "tiny"


def test_device_training_session_without_a_pack_says_so(tmp_path):
    done = _session(tmp_path, tmp_path / "no_pack")
    assert done.returncode == 2 and "no pack at" in done.stdout


def test_device_training_session_keeps_inside_its_time(source_pack, tmp_path):
    """Rendering that leaves under half a minute of SESSION_MINUTES ends the command before training starts."""
    done = _session(tmp_path, source_pack, SCALE="0.001", SESSION_MINUTES="1")
    assert done.returncode == 3 and "no training" in done.stdout
    assert "rendered realseq128: 16 samples" in done.stdout and not (tmp_path / "work" / "run").exists()
