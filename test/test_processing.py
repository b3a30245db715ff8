"""NodeConfig, FrameProcessor (the node's and bag-eval's shared processing), its method, face ids, head poses,
the outputs built from it, and ProcessingStats."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from conftest import face_video
from faceanything_ros.config import NODE_CHOICES, NODE_RANGES, NodeConfig, from_dict, load_yaml, save_yaml, to_dict
from faceanything_ros.engines.onnx_engine import onnx_available
from faceanything_ros.geometry.camera import intrinsics_matrix
from faceanything_ros.io.frames import open_frames
from faceanything_ros.model.bundled import bundled_checkpoint
from faceanything_ros.predictor import Predictor
from faceanything_ros.stream import method as stream_method
from faceanything_ros.stream.processing import FrameProcessor
from faceanything_ros.stream.stats import ProcessingStats

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
                     min_depth_confidence=1.5, face_min_confidence=0.7, max_faces=2, face_redetect_every=7)
    predictor, tracker = cfg.predictor_config(), cfg.tracker_config()
    assert (predictor.mask_threshold, predictor.min_depth_confidence) == (0.3, 1.5)
    assert (predictor.detector.min_confidence, predictor.detector.max_faces, predictor.detector.redetect_every) == (
        0.7, 2, 7)
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
    ({"method": "magic"}, "method"),
    ({"depth_encoding": "8UC1"}, "depth_encoding"),
    ({"publish_points": 1}, "publish_points must be true or false"),
    ({"canonical_scale": 0.0}, "canonical_scale"),
    ({"cpu_threads": -1}, "cpu_threads"),
])
def test_node_config_rejects_bad_values(overrides, message):
    with pytest.raises(ValueError, match=message):
        NodeConfig(**overrides)


@pytest.mark.skipif(not onnx_available(), reason="onnxruntime / onnx not installed")
def test_cpu_threads_set_torch_and_onnx_runtime_for_the_process(tiny_checkpoint, monkeypatch):
    import onnxruntime
    import torch

    torch.set_num_threads(2)
    with FrameProcessor(config(tiny_checkpoint, engine="onnx", cpu_threads=0)):
        assert torch.get_num_threads() == 2  # 0: left as it was
    created = []
    real_session = onnxruntime.InferenceSession

    def session(path, options, **kwargs):
        created.append(options.intra_op_num_threads)
        return real_session(path, options, **kwargs)

    monkeypatch.setattr(onnxruntime, "InferenceSession", session)
    with FrameProcessor(config(tiny_checkpoint, engine="onnx", cpu_threads=1)) as processor:
        processor.warm_up()
    assert torch.get_num_threads() == 1 and created and set(created) == {1}


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
            FrameProcessor(NodeConfig(method="model"))
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


def test_method_choice_and_a_model_bundled_later(tmp_path, monkeypatch):
    monkeypatch.setattr(stream_method, "bundled_checkpoint", lambda: None)
    assert stream_method.choose_method("auto", "").method == "mesh"
    assert stream_method.choose_method("mesh", "m.safetensors").checkpoint is None
    assert stream_method.choose_method("auto", "m.safetensors").checkpoint.name == "m.safetensors"
    with pytest.raises(FileNotFoundError, match="face-mesh method") as error:
        stream_method.choose_method("model", "")
    assert "issue" not in str(error.value)
    bundled = tmp_path / "faceanything_tiny.safetensors"
    monkeypatch.setattr(stream_method, "bundled_checkpoint", lambda: bundled)
    choice = stream_method.choose_method("auto", "")
    assert (choice.method, choice.checkpoint) == ("model", bundled) and "bundled" in choice.reason


def test_mesh_method_needs_no_model_and_gives_stable_faces_with_head_poses(frames):
    cfg = NodeConfig(method="mesh", num_tracks=32)
    with FrameProcessor(cfg) as processor:
        assert processor.engine == "none"
        processor.warm_up()
        results = [processor.process(rgb, 1_000 + i, "cam") for i, rgb in enumerate(frames)]
        other_camera = processor.process(frames[0], 2_000, "other_cam")
    for result in results:
        (face,) = result.faces
        assert face.id == 1 and face.num_pixels == result.reconstruction.faces[0].num_pixels > 1000
        points = result.reconstruction.faces[0].cloud.points
        assert np.linalg.norm(face.pose.translation - points.mean(axis=0)) < 0.02  # metres
        assert face.pose.rms_m < 0.01
        rotation = face.pose.rotation
        np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-9)
        # a frontal face: x (out of the face) towards the camera, y (the subject's left) image right, z up
        assert rotation[2, 0] < -0.8 and rotation[0, 1] > 0.8 and rotation[1, 2] < -0.8
        on_face = result.tracks.visible
        assert on_face.any() and np.all(result.track_face_ids[on_face] == 1)
        assert result.canonical_space == "mediapipe-facemesh-478"
    # another camera restarts the stream's context: a new face id, whose tracks are the same
    # semantic template points (track id = facial point) again
    assert other_camera.faces[0].id == 2
    assert np.all(other_camera.track_face_ids == 2)
    np.testing.assert_array_equal(np.sort(other_camera.tracks.ids), np.sort(results[-1].tracks.ids))


def test_reconstruct_and_track_one_frame_apart_give_what_process_gives(frames):
    """The node reconstructs frame i + 1 on one thread while it tracks frame i on another: the same
    faces, ids and tracks as ``process`` frame by frame, and a camera change restarts the tracks with
    its own frame, not with the frame reconstructed before it."""
    cfg = NodeConfig(method="mesh", num_tracks=32)
    stream = [(rgb, 1_000 + i, "cam") for i, rgb in enumerate(frames)] + [(frames[0], 2_000, "other_cam")]
    with FrameProcessor(cfg) as processor:
        expected = [processor.process(*item) for item in stream]
    with FrameProcessor(cfg) as processor:
        waiting = [processor.reconstruct(*stream[0])]
        results = []
        for item in stream[1:]:
            waiting.append(processor.reconstruct(*item))  # the next frame is reconstructed first
            results.append(processor.track(waiting.pop(0)))
        results.append(processor.track(waiting.pop(0)))
    assert [result.faces[0].id for result in results] == [1] * len(frames) + [2]
    for got, want in zip(results, expected):
        assert (got.stamp_ns, got.frame_id) == (want.stamp_ns, want.frame_id)
        assert [face.id for face in got.faces] == [face.id for face in want.faces]
        np.testing.assert_array_equal(got.tracks.ids, want.tracks.ids)
        np.testing.assert_array_equal(got.track_face_ids, want.track_face_ids)
        np.testing.assert_allclose(got.tracks.pixels, want.tracks.pixels, atol=1e-3)
        assert got.tracks.visible.sum() > 16
    with FrameProcessor(cfg) as processor:
        processor.track(processor.reconstruct(*stream[0]))
        processor.reconstruct(*stream[-1])  # the other camera's first frame never reaches the tracker
        later = processor.track(processor.reconstruct(frames[1], 2_001, "other_cam"))
    assert later.faces[0].id == 2  # the tracker restarted with the other camera's next frame


def test_outputs_follow_the_switches_encoding_scale_and_frame_id(frames):
    from faceanything_ros.export.depth import millimetres_to_metres
    from faceanything_ros.ros.conversions import image_to_array
    from faceanything_ros.ros.message_types import typestore
    from faceanything_ros.ros.outputs import OUTPUT_TYPES, enabled_outputs, output_messages

    types = typestore().types
    with FrameProcessor(NodeConfig(method="mesh", num_tracks=16)) as processor:
        result = processor.process(frames[0], 1_000, "cam")
    everything = NodeConfig(method="mesh")
    assert enabled_outputs(everything, types) == list(OUTPUT_TYPES)
    assert enabled_outputs(everything, {k: v for k, v in types.items() if not k.startswith("tf2_msgs")})[-1] == "faces"
    cfg = NodeConfig(method="mesh", depth_encoding="16UC1", canonical_scale=0.5, canonical_region="image",
                     frame_id="head_camera", publish_points=False)
    keys = enabled_outputs(cfg, types)
    assert "points" not in keys
    messages = output_messages(types, result, cfg, keys)
    assert set(messages) == set(keys)
    depth = messages["depth/image"]
    assert depth.encoding == "16UC1" and depth.header.frame_id == "head_camera"
    metres = millimetres_to_metres(image_to_array(depth)[..., 0])
    face = np.isfinite(result.reconstruction.depth)
    np.testing.assert_array_equal(np.isfinite(metres), face)
    np.testing.assert_allclose(metres[face], result.reconstruction.depth[face], atol=5e-4)
    info = messages["depth/camera_info"]
    assert (info.header.stamp, info.header.frame_id) == (depth.header.stamp, depth.header.frame_id)
    np.testing.assert_array_equal(np.reshape(info.k, (3, 3)), result.intrinsics)
    height, width = frames[0].shape[:2]
    assert (messages["canonical"].height, messages["canonical"].width) == (height // 2, width // 2)
    (transform,) = messages["tf"].transforms
    assert transform.child_frame_id == "face_1" and transform.header.frame_id == "head_camera"
    (face_message,) = messages["faces"].faces
    assert face_message.pose_valid and face_message.pose.position.z == pytest.approx(transform.transform.translation.z)
    assert {t.face_id for t in messages["tracks"].tracks if t.visible} == {1}
    assert messages["tracks"].canonical_space == "mediapipe-facemesh-478"
    assert [m.text for m in messages["track_markers"].markers][-1] == "face 1"


def test_canonical_of_the_faces_only_is_placed_by_its_camera_info_roi(frames):
    """canonical_region faces: ~/canonical is the faces' bounding box of the full map, its place the
    roi of ~/canonical/camera_info; the estimated K's CameraInfos have an empty D (not a calibration)."""
    from faceanything_ros.ros.conversions import image_to_array
    from faceanything_ros.ros.message_types import typestore
    from faceanything_ros.ros.outputs import output_messages

    types = typestore().types
    keys = ["canonical", "canonical/camera_info", "depth/camera_info"]
    config = NodeConfig(method="mesh")  # canonical_region faces: the default
    with FrameProcessor(NodeConfig(method="mesh", num_tracks=16)) as processor:
        result = processor.process(frames[0], 1_000, "cam")
        blank = processor.process(np.full_like(frames[0], 128), 2_000, "cam")
    messages = output_messages(types, result, config, keys)
    roi = messages["canonical/camera_info"].roi
    canonical = image_to_array(messages["canonical"])
    full = result.reconstruction.canonical
    rows, columns = np.nonzero(result.reconstruction.mask)
    assert (roi.x_offset, roi.y_offset) == (columns.min(), rows.min())
    assert (roi.width, roi.height) == (np.ptp(columns) + 1, np.ptp(rows) + 1) == (canonical.shape[1], canonical.shape[0])
    np.testing.assert_array_equal(canonical, full[roi.y_offset:roi.y_offset + roi.height,
                                                  roi.x_offset:roi.x_offset + roi.width])
    assert np.isfinite(canonical).all(axis=2).sum() == result.reconstruction.mask.sum()  # every face pixel
    assert canonical.size < full.size / 2  # this close-up face covers a quarter of the image
    for key in ("depth/camera_info", "canonical/camera_info"):
        info = messages[key]
        assert result.reconstruction.intrinsics_estimated and len(info.d) == 0 and info.distortion_model == "plumb_bob"
        np.testing.assert_array_equal(np.reshape(info.k, (3, 3)), result.intrinsics)
    whole = output_messages(types, result, NodeConfig(method="mesh", canonical_scale=0.5, canonical_region="image"),
                            keys)
    height, width = frames[0].shape[:2]
    assert (whole["canonical"].height, whole["canonical"].width) == (height // 2, width // 2)
    assert (whole["canonical/camera_info"].roi.width, whole["canonical/camera_info"].roi.height) == (width, height)
    empty = output_messages(types, blank, config, keys)  # no face: one NaN pixel at the origin
    assert not blank.reconstruction.found and (empty["canonical"].height, empty["canonical"].width) == (1, 1)
    assert np.isnan(image_to_array(empty["canonical"])).all()
