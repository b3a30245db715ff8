"""The ``faceanything`` command on a real face video, end to end."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from conftest import face_video
from faceanything_ros.cli import main
from faceanything_ros.config import DetectorConfig, PredictorConfig, save_yaml
from faceanything_ros.export.depth import load_depth_png, load_reconstruction_npz
from faceanything_ros.export.ply import read_ply


def test_reconstruct_writes_every_output(tiny_checkpoint, tmp_path):
    video = face_video("liveportrait_d18_man_frontal_mouth.mp4")  # 480 x 480, 30 fps
    config = tmp_path / "predictor.yaml"
    # The untrained network's mask is arbitrary: threshold 0 makes the whole crop "face" so that
    # clouds and tracks are non-empty and their files can be checked.
    # One pass (flip_average off): the untrained network's depth is rough enough that its mirror average turns
    # some seeded tracks away by the facing and depth-step checks; the bundled model's demo runs flip-averaged.
    save_yaml(PredictorConfig(detector=DetectorConfig(crop_scale=1.5), mask_threshold=0.0, flip_average=False), config)
    out = tmp_path / "out"
    torch.set_num_threads(2)
    code = main(["reconstruct", str(video), "-o", str(out), "--model", str(tiny_checkpoint), "--config", str(config),
                 "--max-frames", "5", "--window", "2", "--ply-every", "2", "--num-tracks", "50",
                 "--track-queries", "pixels"])
    assert code == 0
    assert torch.get_num_threads() == 1  # --cpu-threads 1, as the node: the writer and tracker keep a core
    stems = [f"{i:06d}" for i in range(5)]
    assert sorted(p.stem for p in (out / "depth").glob("*.png")) == stems
    assert sorted(p.stem for p in (out / "clouds").glob("*.ply")) == ["000000", "000002", "000004"]
    depth = load_depth_png(out / "depth" / "000003.png")
    maps = load_reconstruction_npz(out / "maps" / "000003.npz")
    assert depth.shape == (480, 480) and maps["canonical"].shape == (480, 480, 3)
    np.testing.assert_allclose(depth, maps["depth"], atol=5e-4, equal_nan=True)  # millimetre rounding
    assert np.isfinite(depth).sum() == maps["mask"].sum() > 0
    canonical_png = cv2.imread(str(out / "canonical" / "000003.png"))
    assert canonical_png.shape == (480, 480, 3)
    vertices = read_ply(out / "clouds" / "000002.ply")
    assert len(vertices) == load_reconstruction_npz(out / "maps" / "000002.npz")["mask"].sum()
    tracks = np.load(out / "tracks.npz")
    assert tracks["pixels"].shape[:1] == (5,) and 25 <= tracks["ids"].size <= 100
    assert tracks["visible"][0].all()  # seeded on frame 0, each query finds itself
    video_out = cv2.VideoCapture(str(out / "side_by_side.mp4"))
    assert int(video_out.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    assert int(video_out.get(cv2.CAP_PROP_FRAME_WIDTH)) == 4 * 360  # four square panels, 360 px high
    video_out.release()


def test_reconstruct_without_model_or_bundled_weights_says_so(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr("faceanything_ros.model.bundled.BUNDLED_CHECKPOINT", tmp_path / "absent.safetensors")
    video = face_video("liveportrait_d18_man_frontal_mouth.mp4")
    assert main(["reconstruct", str(video), "-o", str(tmp_path / "out")]) == 2
    assert "no trained model is bundled" in caplog.text


def test_reconstruct_missing_input_is_named(tiny_checkpoint, tmp_path, caplog):
    assert main(["reconstruct", str(tmp_path / "nope.mp4"), "-o", str(tmp_path / "o"),
                 "--model", str(tiny_checkpoint)]) == 2
    assert "nope.mp4" in caplog.text


def test_info_and_init_model(tmp_path, capsys):
    path = tmp_path / "m.safetensors"
    assert main(["init-model", "--size", "tiny", "-o", str(path)]) == 0
    assert main(["info", "--model", str(path)]) == 0
    printed = capsys.readouterr().out
    assert "faceanything_ros 0.1.0" in printed and "size tiny, input 224 px, UNTRAINED" in printed
    assert "engines: torch (available)" in printed
    assert main(["info"]) == 0
    assert "size tiny, input 128 px, trained" in capsys.readouterr().out  # the bundled model


@pytest.mark.parametrize("argument", ["--window", "--stride", "--num-tracks"])
def test_reconstruct_rejects_non_positive_counts(tiny_checkpoint, tmp_path, argument, caplog):
    video = face_video("liveportrait_d18_man_frontal_mouth.mp4")
    assert main(["reconstruct", str(video), "-o", str(tmp_path / "o"), "--model", str(tiny_checkpoint),
                 argument, "0"]) == 2
    assert "must be >= 1" in caplog.text


def test_reconstruct_rejects_negative_cpu_threads(tiny_checkpoint, tmp_path, caplog):
    video = face_video("liveportrait_d18_man_frontal_mouth.mp4")
    assert main(["reconstruct", str(video), "-o", str(tmp_path / "o"), "--model", str(tiny_checkpoint),
                 "--cpu-threads", "-1"]) == 2
    assert "--cpu-threads must be >= 0" in caplog.text


def test_strided_windows_keep_the_source_frame_numbers(tmp_path):
    video = face_video("liveportrait_d18_man_frontal_mouth.mp4")
    out = tmp_path / "out"
    assert main(["reconstruct", str(video), "-o", str(out), "--method", "mesh", "--max-frames", "4", "--stride", "3",
                 "--window", "2", "--ply-every", "0"]) == 0
    assert sorted(p.stem for p in (out / "depth").glob("*.png")) == ["000000", "000003", "000006", "000009"]
    assert [int(np.load(out / "maps" / f"{i:06d}.npz")["frame_index"]) for i in (3, 9)] == [3, 9]
