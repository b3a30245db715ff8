"""NodeConfig, FrameProcessor (the node's and bag-eval's shared processing) and ProcessingStats."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from conftest import face_video
from faceanything_ros.config import NODE_CHOICES, NODE_RANGES, NodeConfig, from_dict, load_yaml, save_yaml, to_dict
from faceanything_ros.geometry.camera import intrinsics_matrix
from faceanything_ros.io.frames import open_frames
from faceanything_ros.model.bundled import bundled_checkpoint
from faceanything_ros.predictor import Predictor
from faceanything_ros.ros.processing import FrameProcessor
from faceanything_ros.ros.stats import ProcessingStats

VIDEO = "liveportrait_d18_man_frontal_mouth.mp4"


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    with open_frames(face_video(VIDEO), max_frames=4) as source:
        return [frame.rgb for frame in source]


def config(checkpoint, **overrides) -> NodeConfig:
    """Untrained model: mask threshold 0 so every crop pixel is face and tracks exist."""
    return NodeConfig(**{"model": str(checkpoint), "engine": "torch", "mask_threshold": 0.0, "num_tracks": 32,
                         **overrides})


def run(cfg: NodeConfig, frames: list[np.ndarray], intrinsics=None):
    with FrameProcessor(cfg) as processor:
        return [processor.process(rgb, 1_000 + i, "cam", intrinsics) for i, rgb in enumerate(frames)]


def test_node_config_maps_onto_predictor_and_tracker():
    cfg = NodeConfig(num_tracks=50, track_max_distance=0.1, track_min_confidence=2.0, mask_threshold=0.3,
                     min_depth_confidence=1.5, face_min_confidence=0.7, max_faces=2)
    predictor, tracker = cfg.predictor_config(), cfg.tracker_config()
    assert (predictor.mask_threshold, predictor.min_depth_confidence) == (0.3, 1.5)
    assert (predictor.detector.min_confidence, predictor.detector.max_faces) == (0.7, 2)
    assert (tracker.num_tracks, tracker.max_distance, tracker.min_confidence) == (50, 0.1, 2.0)
    assert set(NODE_RANGES) | set(NODE_CHOICES) <= {f.name for f in dataclasses.fields(NodeConfig)}


def test_node_config_yaml_round_trip(tmp_path):
    cfg = NodeConfig(model="m.safetensors", window=3, reseed="every_n", reseed_every_n=5, input="compressed")
    save_yaml(cfg, tmp_path / "node.yaml")
    assert load_yaml(NodeConfig, tmp_path / "node.yaml") == cfg
    assert from_dict(NodeConfig, to_dict(cfg)) == cfg


@pytest.mark.parametrize("overrides, message", [
    ({"window": 0}, "window = 0 is outside its range"),
    ({"max_rate_hz": -1.0}, "max_rate_hz"),
    ({"reseed_min_visible": 1.5}, "reseed_min_visible"),
    ({"point_stride": 2.0}, "point_stride must be an integer"),
    ({"mask_threshold": True}, "mask_threshold must be a number"),
    ({"engine": "cuda"}, "choose one of"),
    ({"reseed": "sometimes"}, "reseed"),
    ({"input": "theora"}, "input"),
    ({"qos_reliability": "maybe"}, "qos_reliability"),
    ({"reseed": "every_n"}, "reseed_every_n >= 1"),
])
def test_node_config_rejects_bad_values(overrides, message):
    with pytest.raises(ValueError, match=message):
        NodeConfig(**overrides)


def test_processor_on_a_real_face_video(tiny_checkpoint, frames):
    results = run(config(tiny_checkpoint), frames[:2])
    height, width = frames[0].shape[:2]
    for i, result in enumerate(results):
        assert (result.stamp_ns, result.frame_id) == (1_000 + i, "cam")
        assert result.reconstruction.found and result.reconstruction.depth.shape == (height, width)
        assert result.intrinsics_estimated and result.reconstruction.intrinsics_source == "rays"
        assert result.intrinsics.shape == (3, 3) and result.latency_s > 0
        assert len(result.tracks) > 0 and result.tracks.pixels.shape == (len(result.tracks), 2)
        visible = result.tracks.visible
        assert np.all(np.isfinite(result.tracks.points[visible]))
    np.testing.assert_array_equal(results[0].tracks.ids, results[1].tracks.ids)  # seeded once, kept


def test_given_intrinsics_are_used(tiny_checkpoint, frames):
    k = intrinsics_matrix(400.0, 400.0, 239.5, 239.5)
    (result,) = run(config(tiny_checkpoint), frames[:1], intrinsics=k)
    assert not result.intrinsics_estimated and result.reconstruction.intrinsics_source == "given"
    np.testing.assert_array_equal(result.intrinsics, k)


def test_window_keeps_previous_frames_as_context(tiny_checkpoint, frames):
    single = run(config(tiny_checkpoint), frames[:2])
    windowed = run(config(tiny_checkpoint, window=2), frames[:2])
    # the first frame has no context yet: identical; the second is predicted jointly with the first
    np.testing.assert_array_equal(single[0].reconstruction.depth, windowed[0].reconstruction.depth)
    assert not np.array_equal(single[1].reconstruction.depth, windowed[1].reconstruction.depth, equal_nan=True)
    assert windowed[1].reconstruction.frame_index == 1
    # the context frame's detection is kept and it is not pasted back again: same as the whole window at once
    cfg = config(tiny_checkpoint, window=2)
    with Predictor(tiny_checkpoint, config=cfg.predictor_config(), engine=cfg.engine) as predictor:
        joint = predictor.predict(np.stack(frames[:2]))[1]
    np.testing.assert_array_equal(joint.depth, windowed[1].reconstruction.depth)
    np.testing.assert_array_equal(joint.canonical, windowed[1].reconstruction.canonical)


def test_reseed_never_replaces_template_tracks(tiny_checkpoint, frames):
    # canonical template tracks are found again when their point reappears: no policy replaces them
    policies = [dict(reseed="never"), dict(reseed="on_loss", reseed_min_visible=1.0),
                dict(reseed="every_n", reseed_every_n=1)]
    for policy in policies:
        for result in run(config(tiny_checkpoint, track_max_distance=1e-6, **policy), frames[:3]):
            first_face = result.tracks.face == result.tracks.face[0]
            np.testing.assert_array_equal(result.tracks.ids[first_face], np.arange(32), err_msg=str(policy))


def test_processor_errors(tiny_checkpoint, frames):
    with pytest.raises(ValueError, match="engine"):
        FrameProcessor(config(tiny_checkpoint, engine="tensorrt"))  # no CUDA here
    if bundled_checkpoint() is None:
        with pytest.raises(FileNotFoundError, match="no trained model is bundled"):
            FrameProcessor(NodeConfig())
    with FrameProcessor(config(tiny_checkpoint)) as processor:
        with pytest.raises(ValueError):
            processor.process(np.zeros((8, 8, 3), np.uint8), 0, "cam")  # below the minimum image size
        assert len(processor.process(frames[0], 1, "cam").tracks) > 0  # still usable afterwards


def test_processing_stats_numbers():
    now = [10.0]
    stats = ProcessingStats(clock=lambda: now[0])
    for latency in (0.01, 0.02, 0.03, 0.04):
        stats.record_input()
        now[0] += 0.5
        stats.record_output(latency)
    stats.record_input()
    stats.record_drop()
    assert stats.record_error("bad_step") is True
    assert stats.record_error("bad_step") is False
    summary = stats.summary()
    assert (summary["frames_in"], summary["frames_out"], summary["dropped"], summary["errors"]) == (5, 4, 1, 2)
    assert summary["errors_by_kind"] == {"bad_step": 2}
    assert summary["throughput_hz"] == pytest.approx(4 / 2.0)
    assert summary["latency"]["p50_ms"] == pytest.approx(25.0)
    assert summary["latency"]["p99_ms"] == pytest.approx(39.7)  # numpy linear interpolation of 10..40 ms
    assert np.isnan(ProcessingStats().latency_percentiles_ms()["p95_ms"])
