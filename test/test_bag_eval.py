"""video-to-bag and bag-eval: direct-mode round trips through sqlite3 and MCAP bags, accuracy, bad input;
``--through-node`` against the real node."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import face_video
from ros_workspace import (
    build_environment, requires_ros_build_tools, run_checked, sourced_command,
)
from faceanything_ros.cli import main
from faceanything_ros.config import NodeConfig, save_yaml
from faceanything_ros.io.frames import open_frames
from faceanything_ros.ros.bag import BagError, BagReader, BagWriter
from faceanything_ros.ros.bag_accuracy import DepthAccuracy
from faceanything_ros.ros.bag_eval import evaluate_bag
from faceanything_ros.ros.bag_video import DEFAULT_START_NS, video_to_bag
from faceanything_ros.ros.conversions import (
    array_to_image, camera_info, depth_image, depth_image_to_metres, make_header, rgb_to_image, stamp_to_ns,
    track_array_to_arrays,
)
from faceanything_ros.ros.message_types import typestore
from faceanything_ros.ros.outputs import OUTPUT_TYPES, output_topic

VIDEO = "liveportrait_d18_man_frontal_mouth.mp4"
FRAMES = 3
TYPES = typestore().types


def node_config(checkpoint) -> NodeConfig:
    return NodeConfig(model=str(checkpoint), engine="torch", mask_threshold=0.0, num_tracks=32)


def mesh_config() -> NodeConfig:
    """The face-mesh method: real canonical maps, so the canonical template tracks are found and visible."""
    return NodeConfig(method="mesh", mask_threshold=0.0, num_tracks=32)


def read_topic(bag, topic):
    """``[(bag timestamp, message)]`` of one topic."""
    with BagReader(bag) as reader:
        return [(t, reader.deserialize(raw, c.msgtype)) for c, t, raw in reader.messages([topic])]


@pytest.mark.parametrize("storage, encoding", [("sqlite3", "rgb8"), ("mcap", "jpeg")])
def test_video_to_bag_to_bag_eval_round_trip(tmp_path, tiny_checkpoint, storage, encoding):
    bag, out = tmp_path / "in", tmp_path / "out"
    topic = "/camera/image" + ("/compressed" if encoding == "jpeg" else "")
    assert main(["video-to-bag", str(face_video(VIDEO)), "-o", str(bag), "--topic", topic, "--encoding", encoding,
                 "--camera-info-topic", "/camera/camera_info", "--intrinsics", "500", "500", "239.5", "239.5",
                 "--storage", storage, "--max-frames", str(FRAMES)]) == 0
    with BagReader(bag) as reader:
        assert reader.storage == storage
        assert reader.topics == {topic: f"sensor_msgs/msg/{'CompressedImage' if encoding == 'jpeg' else 'Image'}",
                                 "/camera/camera_info": "sensor_msgs/msg/CameraInfo"}
    stamps = [stamp_to_ns(m.header.stamp) for _, m in read_topic(bag, topic)]
    with open_frames(face_video(VIDEO), max_frames=FRAMES) as frames:
        assert stamps == [DEFAULT_START_NS + round(i / frames.fps * 1e9) for i in range(FRAMES)]

    config_path = tmp_path / "node.yaml"
    save_yaml(node_config(tiny_checkpoint), config_path)
    assert main(["bag-eval", str(bag), "--image-topic", topic, "--camera-info-topic", "/camera/camera_info",
                 "-o", str(out), "--config", str(config_path), "--report", str(tmp_path / "report.json")]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert (report["frames_in"], report["frames_out"], report["dropped"], report["errors"]) == (FRAMES, FRAMES, 0, 0)
    assert report["intrinsics"] == {"given": FRAMES}
    assert report["latency"]["p50_ms"] <= report["latency"]["p95_ms"] <= report["latency"]["p99_ms"]
    assert report["throughput_hz"] > 0 and report["frames_with_face"] == FRAMES
    for key in OUTPUT_TYPES:
        assert report["output_messages"][output_topic(key)] == FRAMES
    with BagReader(out) as reader:
        assert reader.storage == storage
        assert reader.topics[output_topic("tracks")] == "faceanything_ros/msg/CanonicalTrackArray"
        assert reader.topics["/diagnostics"] == "diagnostic_msgs/msg/DiagnosticArray"
    depths = read_topic(out, output_topic("depth/image"))
    assert [stamp_to_ns(m.header.stamp) for _, m in depths] == stamps  # input stamps preserved
    assert [t for t, _ in depths] == stamps
    depth = depth_image_to_metres(depths[0][1])
    assert depth.shape == (480, 480) and np.isfinite(depth).any()
    infos = read_topic(out, output_topic("depth/camera_info"))
    assert [stamp_to_ns(m.header.stamp) for _, m in infos] == stamps  # the depth pair shares its stamps
    np.testing.assert_array_equal(np.asarray(infos[0][1].k), [500, 0, 239.5, 0, 500, 239.5, 0, 0, 1])
    tracks = track_array_to_arrays(read_topic(out, output_topic("tracks"))[-1][1])
    assert len(tracks["ids"]) > 0


def test_bag_eval_method_mesh_round_trip_needs_no_model(tmp_path):
    bag, out = tmp_path / "in", tmp_path / "out"
    assert main(["video-to-bag", str(face_video(VIDEO)), "-o", str(bag), "--topic", "/image",
                 "--camera-info-topic", "/camera_info", "--intrinsics", "500", "500", "239.5", "239.5",
                 "--max-frames", str(FRAMES)]) == 0
    assert main(["bag-eval", str(bag), "--image-topic", "/image", "--camera-info-topic", "/camera_info",
                 "--method", "mesh", "-o", str(out), "--report", str(tmp_path / "report.json")]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["method"] == "mesh" and report["frames_out"] == report["frames_with_face"] == FRAMES
    assert report["intrinsics"] == {"given": FRAMES} and report["errors"] == 0
    for key in OUTPUT_TYPES:
        assert report["output_messages"][output_topic(key)] == FRAMES
    faces = read_topic(out, output_topic("faces"))
    assert [[face.id for face in message.faces] for _, message in faces] == [[1]] * FRAMES
    for (_, message), (_, transforms) in zip(faces, read_topic(out, "/tf")):
        (transform,) = transforms.transforms
        assert transform.child_frame_id == "face_1"
        assert transform.header.frame_id == message.header.frame_id
        assert transform.transform.translation.z == pytest.approx(message.faces[0].pose.position.z)
        assert 0.1 < message.faces[0].pose.position.z < 2.0  # metres in front of the camera


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, tiny_checkpoint):
    """A 3-frame bag and the output bag of its evaluation."""
    folder = tmp_path_factory.mktemp("evaluated")
    video_to_bag(face_video(VIDEO), folder / "in", max_frames=FRAMES)
    evaluate_bag(folder / "in", folder / "out", "/image", mesh_config())
    return folder


def test_accuracy_against_known_perturbed_ground_truth(tmp_path, tiny_checkpoint, evaluated):
    scale, shift = 1.1, np.array([3.0, 4.0])  # depth x 1.1, tracks moved by 5 px
    images = read_topic(evaluated / "out", "/image")
    depths = read_topic(evaluated / "out", output_topic("depth/image"))
    tracks = read_topic(evaluated / "out", output_topic("tracks"))
    with BagWriter(tmp_path / "truth", "mcap") as writer:
        for (t, image), (_, depth), (_, track) in zip(images, depths, tracks):
            writer.write("/image", "sensor_msgs/msg/Image", t, image)
            truth = depth_image_to_metres(depth) * np.float32(scale)
            writer.write("/truth/depth", "sensor_msgs/msg/Image", t, depth_image(TYPES, depth.header, truth))
            for item in track.tracks:
                item.u, item.v = item.u + shift[0], item.v + shift[1]
            writer.write("/truth/tracks", "faceanything_ros/msg/CanonicalTrackArray", t, track)
    report = evaluate_bag(tmp_path / "truth", tmp_path / "out", "/image", mesh_config(),
                          depth_topic="/truth/depth", tracks_topic="/truth/tracks")
    predicted = np.concatenate([depth_image_to_metres(m).ravel() for _, m in depths]).astype(np.float64)
    predicted = predicted[np.isfinite(predicted)]
    depth_accuracy = report["accuracy"]["depth"]
    assert depth_accuracy["frames"] == FRAMES and depth_accuracy["pixels"] == predicted.size
    assert depth_accuracy["abs_rel"] == pytest.approx(0.1 / 1.1, rel=1e-5)
    assert depth_accuracy["rmse_m"] == pytest.approx(0.1 * np.sqrt(np.mean(predicted ** 2)), rel=1e-5)
    assert depth_accuracy["delta_1_25"] == 1.0
    visible = sum(int(track_array_to_arrays(m)["visible"].sum()) for _, m in tracks)
    assert visible > 0
    track_accuracy = report["accuracy"]["tracks"]
    assert (track_accuracy["frames"], track_accuracy["matched"], track_accuracy["unmatched"]) == (FRAMES, visible, 0)
    assert track_accuracy["mean_error_px"] == pytest.approx(5.0, abs=1e-4)
    assert report["accuracy"]["truth_unmatched"] == 0


def test_depth_accuracy_of_16uc1_millimetres():
    accuracy = DepthAccuracy()
    truth = depth_image_to_metres(array_to_image(TYPES, make_header(TYPES, 0, ""),
                                                 np.array([[1000, 2000, 0]], np.uint16), "16UC1"))
    accuracy.add(np.array([[1.5, 2.0, 3.0]], np.float32), truth)  # errors 0.5 and 0 m; the 0 mm pixel is none
    summary = accuracy.summary()
    assert summary["pixels"] == 2
    assert summary["abs_rel"] == pytest.approx(0.25)
    assert summary["rmse_m"] == pytest.approx(np.sqrt(0.125))
    assert summary["delta_1_25"] == 0.5  # 1.5 / 1.0 is not < 1.25


def test_bad_frames_are_counted_and_processing_continues(tmp_path, tiny_checkpoint, evaluated):
    (t0, good), (t1, second) = read_topic(evaluated / "out", "/image")[:2]
    header = good.header
    with BagWriter(tmp_path / "mixed") as writer:
        writer.write("/info", "sensor_msgs/msg/CameraInfo", t0,
                     camera_info(TYPES, header, np.diag([300.0, 300.0, 1.0]), 640, 480))  # wrong size
        writer.write("/image", "sensor_msgs/msg/Image", t0, good)
        bad = rgb_to_image(TYPES, header, np.zeros((40, 40, 3), np.uint8))
        bad.step = 100  # but the data holds 120-byte rows
        writer.write("/image", "sensor_msgs/msg/Image", t0 + 1, bad)
        bad = rgb_to_image(TYPES, header, np.zeros((40, 40, 3), np.uint8))
        bad.encoding = "yuv422"
        writer.write("/image", "sensor_msgs/msg/Image", t0 + 2, bad)
        writer.write_raw("/image", "sensor_msgs/msg/Image", t0 + 3, b"\x00\x01\x00\x00\x07")
        writer.write("/image", "sensor_msgs/msg/Image", t1, second)
    report = evaluate_bag(tmp_path / "mixed", tmp_path / "out", "/image", node_config(tiny_checkpoint),
                          camera_info_topic="/info")
    assert (report["frames_in"], report["frames_out"], report["dropped"]) == (5, 2, 0)
    assert report["errors_by_kind"] == {"camera_info_size": 2, "bad_step": 1, "unknown_encoding": 1,
                                        "undeserializable": 1}
    assert report["intrinsics"] == {"estimated": 2}
    assert report["output_messages"][output_topic("depth/image")] == 2
    assert report["output_messages"]["/image"] == 5  # the input is copied as recorded


def test_unknown_topic_lists_the_bag_topics(tmp_path, tiny_checkpoint, evaluated):
    with pytest.raises(BagError, match=r"has no topic '/camera/rgb'.*/image \(sensor_msgs/msg/Image\)"):
        evaluate_bag(evaluated / "in", tmp_path / "out", "/camera/rgb", node_config(tiny_checkpoint))
    with pytest.raises(BagError, match="expected one of"):
        evaluate_bag(evaluated / "in", tmp_path / "out", "/image", node_config(tiny_checkpoint),
                     camera_info_topic="/image")
    assert not (tmp_path / "out").exists()


def test_corrupt_missing_and_existing_bags(tmp_path, tiny_checkpoint, evaluated):
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "metadata.yaml").write_text("rosbag2_bagfile_information: [this is not a bag\n")
    with pytest.raises(BagError, match=str(corrupt)):
        BagReader(corrupt)
    junk = tmp_path / "junk.db3"
    junk.write_bytes(b"SQLite format 3\x00" + bytes(200))
    with pytest.raises(BagError, match="junk.db3"):
        BagReader(junk)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        BagReader(tmp_path / "nowhere")
    with pytest.raises(BagError, match="exists"):
        BagWriter(evaluated / "out")
    assert main(["bag-eval", str(corrupt), "--image-topic", "/image", "-o", str(tmp_path / "o"),
                 "--model", str(tiny_checkpoint)]) == 2
    assert main(["bag-eval", str(evaluated / "in"), "--image-topic", "/image", "-o", str(tmp_path / "o"),
                 "--model", str(tiny_checkpoint), "--fastdds-profile", ""]) == 2  # DDS options need --through-node
    assert not (tmp_path / "o").exists()


@requires_ros_build_tools
@pytest.mark.slow
def test_bag_eval_through_the_real_node(tmp_path, built_workspace, tiny_checkpoint):
    """The bag played at its rate to the node (own process, colcon install) over DDS; its outputs recorded."""
    workspace = built_workspace
    env = build_environment(tmp_path)
    frames = 4
    video_to_bag(face_video(VIDEO), tmp_path / "in", camera_info_topic="/camera_info", max_frames=frames)
    command = ('exec python -m faceanything_ros.cli bag-eval "$0" --image-topic /image --camera-info-topic '
               '/camera_info -o "$1" --model "$2" --engine torch --through-node --storage mcap --report "$3"')
    run_checked([*sourced_command(workspace, command), str(tmp_path / "in"), str(tmp_path / "out"),
                 str(tiny_checkpoint), str(tmp_path / "report.json")], tmp_path, env, 400)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["mode"] == "through_node" and report["frames_in"] == frames
    # both processes on the installed large-data profile: no image lost in transport (a 512x512 image
    # is larger than Fast DDS's default 0.5 MiB shared-memory segment)
    share = workspace / "install" / "faceanything_ros" / "share" / "faceanything_ros"
    assert Path(report["fastdds_profile"]).resolve() == (share / "config" / "fastdds_large_data.xml").resolve()
    assert report["not_received_by_node"] == 0
    assert report["frames_out"] >= 1  # the first image always reaches the idle node
    assert report["frames_out"] + report["dropped"] + report["errors"] == frames
    assert report["latency"]["p50_ms"] > 0 and report["node_diagnostics"]["frames_out"] == report["frames_out"]
    input_stamps = {stamp_to_ns(m.header.stamp) for _, m in read_topic(tmp_path / "in", "/image")}
    with BagReader(tmp_path / "out") as reader:
        assert reader.storage == "mcap"
        assert set(reader.topics) >= {output_topic(key) for key in OUTPUT_TYPES} | {"/image", "/diagnostics"}
    for key in ("depth/image", "tracks", "depth/camera_info"):
        stamps = [stamp_to_ns(m.header.stamp) for _, m in read_topic(tmp_path / "out", output_topic(key))]
        assert len(stamps) == report["frames_out"] and set(stamps) <= input_stamps


@pytest.mark.parametrize("image_topic, camera_matrix", [("/camera/image_rect", "auto"), ("/camera/image_raw", "auto"),
                                                         ("/camera/image_raw", "P")])
def test_calibration_p_for_rectified_and_k_for_raw_images(tmp_path, image_topic, camera_matrix):
    """A calibration whose P (rectified) differs from its K (raw, with distortion): an image_rect topic
    (or camera_matrix P) is reconstructed with P, an image_raw one with K, its distortion reported ignored."""
    k = np.array([[560.0, 0.0, 241.0], [0.0, 562.0, 236.0], [0.0, 0.0, 1.0]])
    p = np.array([[520.0, 0.0, 236.0, 0.0], [0.0, 520.0, 242.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
    d = [-0.21, 0.05, 0.001, -0.0005, 0.0]
    with open_frames(face_video(VIDEO), max_frames=1) as frames:
        rgb = next(iter(frames)).rgb
    header = make_header(TYPES, DEFAULT_START_NS, "cam")
    info = camera_info(TYPES, header, k, rgb.shape[1], rgb.shape[0])
    info.p, info.d = p.reshape(-1), np.array(d)
    with BagWriter(tmp_path / "in") as writer:
        writer.write("/camera/camera_info", "sensor_msgs/msg/CameraInfo", DEFAULT_START_NS, info)
        writer.write(image_topic, "sensor_msgs/msg/Image", DEFAULT_START_NS, rgb_to_image(TYPES, header, rgb))
    report = evaluate_bag(tmp_path / "in", tmp_path / "out", image_topic,
                          NodeConfig(method="mesh", camera_matrix=camera_matrix),
                          camera_info_topic="/camera/camera_info")
    rectified = "image_rect" in image_topic or camera_matrix == "P"
    used = p[:, :3] if rectified else k
    assert report["frames_with_face"] == 1
    assert report["intrinsics"] == ({"given": 1} if rectified else {"given": 1, "distortion_ignored": 1})
    assert ("K from P" in report["intrinsics_note"]) is rectified
    assert ("distortion [-0.21, 0.05, 0.001, -0.0005, 0.0] ignored" in report["intrinsics_note"]) is not rectified
    (_, cloud), = read_topic(tmp_path / "out", output_topic("points"))
    points = np.frombuffer(bytes(cloud.data), np.float32).reshape(-1, cloud.point_step // 4)[:, :3].astype(np.float64)
    depth = depth_image_to_metres(read_topic(tmp_path / "out", output_topic("depth/image"))[0][1])
    pixels = points @ used.T
    columns, rows = np.round(pixels[:, :2] / pixels[:, 2:]).T.astype(int)
    np.testing.assert_allclose(pixels[:, 0] / pixels[:, 2], columns, atol=1e-3)  # each point on its pixel's ray
    np.testing.assert_allclose(depth[rows, columns], points[:, 2], rtol=1e-5)
    (_, republished), = read_topic(tmp_path / "out", output_topic("depth/camera_info"))
    np.testing.assert_array_equal(np.asarray(republished.d), d)  # the calibration as given
