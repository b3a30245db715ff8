"""The faceanything node in a real ROS 2 graph (rclpy + Fast DDS on loopback).

The node needs the generated ``faceanything_ros.msg``, which only a colcon install has, so the
module uses the session's colcon build of the repository (the ``built_workspace`` fixture)
and runs everything from that install in subprocesses: the node through its installed executables
(``lib/faceanything_ros/faceanything_lifecycle_node``, what ``ros2 run`` starts) or
``python -m faceanything_ros.ros.node``, and ``ros_node_client.py``, which publishes frames of a
shared face video (+ CameraInfo) and records what the node publishes. The assertions are here.
The managed node runs the bundled model and the plain node an untrained tiny checkpoint, both with
mask threshold 0, so a detected face gives non-empty outputs (the bundled model's canonical maps
also make the canonical template tracks visible); geometry is checked for consistency
(reprojection, headers, K), not accuracy.
"""
from __future__ import annotations

import ast
import dataclasses
import json
import os
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import face_video
from ros_workspace import (
    REPO_ROOT, build_environment, requires_ros_build_tools, sourced_command,
)

from faceanything_ros.config import NODE_RANGES, NodeConfig
from faceanything_ros.model.bundled import bundled_checkpoint
from faceanything_ros.ros.outputs import OUTPUT_TYPES
from faceanything_ros.ros.transport import PROFILE_VARIABLES

pytestmark = [pytest.mark.slow, requires_ros_build_tools]

VIDEO = "liveportrait_d18_man_frontal_mouth.mp4"
CLIENT = Path(__file__).with_name("ros_node_client.py")
POINT_FIELDS = ["x", "y", "z", "rgb", "canonical_u", "canonical_v", "canonical_w", "confidence"]
FRAME_ID = "camera_color_optical_frame"
NUM_TRACKS = 64


@dataclasses.dataclass
class NodeRun:
    """What one node + client run left: the client's record and arrays, the node's exit and log."""

    record: dict
    arrays: dict[str, np.ndarray]
    node_returncode: int
    node_log: str


@pytest.fixture(scope="module")
def ros_install(tmp_path_factory, built_workspace) -> tuple[Path, dict[str, str]]:
    """A colcon install of this repository and the environment to run it in (DDS on loopback)."""
    root = tmp_path_factory.mktemp("ros_node")
    env = build_environment(root)
    env["FACEANYTHING_ENGINE_CACHE"] = str(root / "engine_cache")
    return built_workspace, env


def run_node_with_client(ros_install, tiny_checkpoint: Path, tmp_path: Path, node_command: str,
                         scenario: str, parameters: dict[str, str]) -> NodeRun:
    """Start the node (``node_command`` + ``--ros-args``), run the client scenario, stop the node with SIGINT."""
    workspace, env = ros_install
    video = face_video(VIDEO)
    # names unique to this test process: concurrent runs that share a DDS domain do not hear each other
    node_name, camera = f"faceanything_{os.getpid()}", f"/camera_{os.getpid()}"
    env = {**env, "FACEANYTHING_TEST_NODE": f"/{node_name}", "FACEANYTHING_TEST_CAMERA": camera}
    model = [] if tiny_checkpoint is None else ["-p", f"model:={tiny_checkpoint}", "-p", "mask_threshold:=0.0"]
    ros_args = ["--ros-args", "-r", f"__node:={node_name}", *model, "-p", f"num_tracks:={NUM_TRACKS}",
                "-r", f"image:={camera}/image",
                "-r", f"image/compressed:={camera}/image/compressed", "-r", f"camera_info:={camera}/camera_info"]
    for name, value in parameters.items():
        ros_args += ["-p", f"{name}:={value}"]
    node_log = tmp_path / "node.log"
    with node_log.open("w") as log:
        node = subprocess.Popen([*sourced_command(workspace, f'exec {node_command} "$@"'), "node", *ros_args],
                                cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            client = subprocess.run(
                [*sourced_command(workspace, 'exec python "$@"'), "client", str(CLIENT), scenario,
                 str(tmp_path / "out"), str(video)],
                cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240, check=False)
        finally:
            node.send_signal(signal.SIGINT)
            try:
                returncode = node.wait(timeout=30)
            except subprocess.TimeoutExpired:
                node.kill()
                returncode = node.wait()
    assert client.returncode == 0, (f"client failed:\n{client.stdout[-3000:]}\n{client.stderr[-3000:]}\n"
                                    f"node log (exit {returncode}):\n{node_log.read_text()[-3000:]}")
    with np.load(tmp_path / "out" / "arrays.npz") as arrays:
        loaded = {key: arrays[key] for key in arrays.files}
    return NodeRun(json.loads((tmp_path / "out" / "record.json").read_text()), loaded, returncode,
                   node_log.read_text())


@pytest.fixture(scope="module")
def lifecycle_run(ros_install, tmp_path_factory) -> NodeRun:
    """The managed node (installed executable, bundled model), driven through ros_node_client's ``lifecycle`` scenario."""
    return run_node_with_client(
        ros_install, bundled_checkpoint(), tmp_path_factory.mktemp("lifecycle"),
        str(ros_install[0] / "install" / "faceanything_ros" / "lib" / "faceanything_ros" / "faceanything_lifecycle_node"),
        "lifecycle", {"engine": "torch", "qos_reliability": "reliable", "qos_depth": "5", "canonical_region": "image",
                      "max_points": "0"})


def frame_arrays(run: NodeRun, label: str) -> dict[str, np.ndarray]:
    prefix = f"{label}/"
    return {key[len(prefix):]: value for key, value in run.arrays.items() if key.startswith(prefix)}


def test_lifecycle_transitions_and_clean_shutdown(lifecycle_run: NodeRun) -> None:
    record = lifecycle_run.record
    assert record["states"] == ["unconfigured", "inactive", "active", "inactive", "unconfigured", "active"]
    for step in ("configure_ok", "activate_ok", "deactivate_ok", "cleanup_ok", "reconfigure_ok", "reactivate_ok"):
        assert record[step], step
    assert record["outputs_while_inactive"] == 0
    assert record["outputs_after_reactivate"]
    assert lifecycle_run.node_returncode == 0, lifecycle_run.node_log[-3000:]
    assert "Traceback" not in lifecycle_run.node_log
    assert "outputs are published as CDR bytes" in lifecycle_run.node_log  # none from rclpy message objects
    assert "freed buffers kept mapped for the next frames" in lifecycle_run.node_log  # glibc here (stream.allocator)


def test_parameters_are_declared_with_descriptors_and_ranges(lifecycle_run: NodeRun) -> None:
    descriptors = lifecycle_run.record["descriptors"]
    assert descriptors["mask_threshold"]["float_range"] == [list(NODE_RANGES["mask_threshold"])]
    assert descriptors["max_rate_hz"]["float_range"] == [list(NODE_RANGES["max_rate_hz"])]
    assert descriptors["window"]["int_range"] == [[*NODE_RANGES["window"], 1]]
    assert descriptors["point_stride"]["int_range"] == [[*NODE_RANGES["point_stride"], 1]]
    assert "tensorrt" in descriptors["engine"]["constraints"]
    assert not any(d["read_only"] for d in descriptors.values())  # cleanup + configure applies new values
    assert "next configure" in descriptors["model"]["constraints"]
    assert "next frame" in descriptors["max_rate_hz"]["constraints"]
    assert all(d["description"] for d in descriptors.values())
    assert lifecycle_run.record["parameter_values"] == [0.0, NUM_TRACKS]


def test_face_frames_give_consistent_outputs_with_stamps_and_camera_info(lifecycle_run: NodeRun) -> None:
    record = lifecycle_run.record
    assert record["lockstep_ok"] == [True] * 4
    for label, k_sent in record["k_sent"].items():
        stamp = record["frames"][label]["stamp"]
        headers = record["frames"][label]["headers"]
        assert set(headers) >= {"depth/image", "depth/camera_info", "canonical", "points", "tracks",
                                "track_markers", "faces"}
        assert all(header[:2] == [stamp, FRAME_ID] for header in headers.values())
        assert headers["depth/image"][2] == "32FC1" and headers["canonical"][2] == "32FC3"
        out = frame_arrays(lifecycle_run, label)
        k = np.array(k_sent)
        np.testing.assert_array_equal(out["depth/camera_info/k"], k)  # the CameraInfo of this very stamp
        np.testing.assert_array_equal(out["depth/camera_info/d"], np.zeros(5))  # the calibration's, as sent
        depth = out["depth/image/pixels"][..., 0]
        assert depth.shape == (480, 480) and tuple(out["depth/camera_info/size"]) == (480, 480)
        face = np.isfinite(depth)
        assert 0.05 < face.mean() < 0.99, "depth is NaN outside the face crop and finite on the face"
        assert face[240, 240] and not face[0, 0]  # the face is in the middle of this video
        assert np.all(depth[face] > 0)
        canonical = out["canonical/pixels"]
        np.testing.assert_array_equal(np.isfinite(canonical).all(axis=2), face)
        assert np.all(np.abs(canonical[face]) <= 1.0)

        # points: the eight float32 fields, one per face pixel, each projecting onto its depth pixel
        assert [key[len("points/field_"):] for key in out if key.startswith("points/field_")] == POINT_FIELDS
        assert list(out["points/datatypes"]) == [7] * 8
        x, y, z = out["points/field_x"], out["points/field_y"], out["points/field_z"]
        assert len(z) == face.sum()
        u = k[0, 0] * x / z + k[0, 2]
        v = k[1, 1] * y / z + k[1, 2]
        columns, rows = np.round(u).astype(int), np.round(v).astype(int)
        np.testing.assert_allclose(u, columns, atol=2e-3)
        np.testing.assert_allclose(v, rows, atol=2e-3)
        np.testing.assert_allclose(depth[rows, columns], z, rtol=1e-6)
        canonical_u = out["points/field_canonical_u"]
        np.testing.assert_allclose(canonical_u, canonical[rows, columns, 0], rtol=1e-6)

        # tracks and their markers
        ids, uv, xyz, visible = out["tracks/ids"], out["tracks/uv"], out["tracks/xyz"], out["tracks/visible"]
        assert len(ids) == NUM_TRACKS and len(set(ids.tolist())) == NUM_TRACKS
        assert visible.any()
        shown = visible & np.isfinite(xyz).all(axis=1)
        np.testing.assert_allclose(k[0, 0] * xyz[shown, 0] / xyz[shown, 2] + k[0, 2], uv[shown, 0], atol=0.05)
        np.testing.assert_allclose(k[1, 1] * xyz[shown, 1] / xyz[shown, 2] + k[1, 2], uv[shown, 1], atol=0.05)
        assert list(out["track_markers/actions"]) == [3, 0, 0]  # DELETEALL, then ADD tracks and the face label
        assert list(out["track_markers/types"]) == [7, 7, 9]  # SPHERE_LIST, SPHERE_LIST, TEXT_VIEW_FACING
        assert list(out["track_markers/counts"]) == [0, shown.sum(), 0]
        np.testing.assert_allclose(out["track_markers/xyz"], xyz[shown], rtol=1e-6)
    diagnostics = record["diagnostics_lockstep"]
    assert diagnostics["frames_in"] == diagnostics["frames_out"] == "4"
    assert diagnostics["dropped"] == diagnostics["errors"] == "0"
    assert diagnostics["engine"].startswith("torch on cpu")
    assert diagnostics["intrinsics"] == "given: raw image without distortion: K"  # the CameraInfo's K, no D
    assert int(diagnostics["gc.frozen_objects"]) > 10_000  # the configured model and graphs: out of the collector's way
    assert int(diagnostics["gc.gen0.calls"]) > 0 and float(diagnostics["gc.gen0.max_pause_ms"]) > 0  # frames' garbage


def test_bad_frames_are_counted_and_the_node_keeps_publishing(lifecycle_run: NodeRun) -> None:
    record = lifecycle_run.record
    diagnostics = record["diagnostics_bad"]
    for kind in ("unknown_encoding", "bad_step", "zero_size"):
        assert diagnostics.get(f"errors_by_kind.{kind}") == "1", (kind, diagnostics)
    # at least the image of its stamp; a later image whose own CameraInfo is still in flight
    # falls back to the latest info of its frame_id, which may be this one too
    camera_info_size = int(diagnostics.get("errors_by_kind.camera_info_size", 0))
    assert camera_info_size >= 1
    assert int(diagnostics["errors"]) == 3 + camera_info_size
    assert record["diagnostics_lockstep"]["level"] == 0  # OK; WARN only in a period with bad input
    assert record["bad_size_info_ok"] and record["no_face_ok"] and record["after_bad_ok"]
    # the 320x240 CameraInfo was refused: K was estimated for the 480x480 image instead
    wrong = frame_arrays(lifecycle_run, "wrong_info")
    assert tuple(wrong["depth/camera_info/size"]) == (480, 480)
    assert wrong["depth/camera_info/k"][0, 2] != 159.5 and wrong["depth/camera_info/k"][0, 0] > 0
    # a frame without a face still publishes: all-NaN depth, empty cloud, no visible track
    blank = frame_arrays(lifecycle_run, "no_face")
    assert np.isnan(blank["depth/image/pixels"]).all() and np.isnan(blank["canonical/pixels"]).all()
    assert blank["faces/ids"].shape == (0,)
    assert blank["points/field_x"].shape == (0,)
    assert not blank["tracks/visible"].any()
    assert list(blank["track_markers/actions"]) == [3]
    assert diagnostics["frames_without_face"] == "1"
    for kind in ("unknown_encoding", "bad_step", "zero_size", "camera_info_size"):
        assert lifecycle_run.node_log.count(f"{kind}:") == 1, kind  # logged once per kind


def test_burst_faster_than_the_model_drops_frames_and_keeps_latency_bounded(lifecycle_run: NodeRun) -> None:
    record = lifecycle_run.record
    before, after = record["diagnostics_bad"], record["diagnostics_burst"]
    delta = {key: int(after[key]) - int(before[key]) for key in ("frames_in", "frames_out", "dropped", "errors")}
    burst = record["burst"]
    assert 0 < delta["frames_out"] < delta["frames_in"] <= burst["sent"]
    assert delta["errors"] == 0
    # the client waited for an idle node: every frame received is accounted for, and every
    # processed frame's depth image reached the subscriber (one latency each)
    assert delta["dropped"] + delta["frames_out"] == delta["frames_in"]
    assert len(burst["latencies_s"]) == delta["frames_out"]
    # no queue: a frame waits at most for the one being processed, so latency stays near one
    # processing time however long the burst is (the lock-step round trip is one processing time)
    # (a queue of the 40 burst frames would take ~40 processing times; the bound allows ~3 plus
    # slack for a loaded machine)
    processing_s = float(np.max(record["lockstep_round_trips_s"][1:]))  # the first one warms up
    assert max(burst["latencies_s"]) < 3.0 * processing_s + 1.0, (burst["latencies_s"], processing_s)


def test_plain_node_module_entry_point_reads_compressed_images(ros_install, tiny_checkpoint, tmp_path) -> None:
    run = run_node_with_client(ros_install, tiny_checkpoint, tmp_path, "python -m faceanything_ros.ros.node",
                               "plain", {"input": "compressed", "point_stride": "2", "max_points": "0", "engine": "torch"})
    assert run.record["warmup_attempts"] is not None  # the node answered a frame within 6 tries
    assert run.record["lockstep_ok"] == [True, True]
    assert run.node_returncode == 0 and "Traceback" not in run.node_log
    out = frame_arrays(run, "jpeg1")
    k = out["depth/camera_info/k"]
    assert k[0, 0] > 0 and k[1, 1] > 0  # estimated from the predicted rays: no CameraInfo was sent
    assert out["depth/camera_info/d"].shape == (0,)  # an estimate: no distortion coefficients at all
    assert run.record["diagnostics"]["intrinsics"].startswith("estimated from the faces' rays")
    depth = out["depth/image/pixels"][..., 0]
    x, y, z = out["points/field_x"], out["points/field_y"], out["points/field_z"]
    columns = np.round(k[0, 0] * x / z + k[0, 2]).astype(int)
    rows = np.round(k[1, 1] * y / z + k[1, 2]).astype(int)
    assert np.all(columns % 2 == 0) and np.all(rows % 2 == 0)  # point_stride 2
    assert len(z) == np.isfinite(depth[::2, ::2]).sum()
    assert run.record["diagnostics"]["input"] == "compressed"


def test_installed_executables_and_share_files(ros_install) -> None:
    workspace, _ = ros_install
    prefix = workspace / "install" / "faceanything_ros"
    for executable in ("faceanything_node", "faceanything_lifecycle_node"):
        assert (prefix / "lib" / "faceanything_ros" / executable).stat().st_mode & 0o111
    share = prefix / "share" / "faceanything_ros"
    for relative in ("launch/faceanything.launch.py", "launch/bag_replay.launch.py", "rviz/faceanything.rviz",
                     "config/faceanything.yaml"):
        assert (share / relative).is_file(), relative


def test_parameters_file_sets_every_node_config_field_to_its_default() -> None:
    import yaml

    parameters = yaml.safe_load((REPO_ROOT / "config" / "faceanything.yaml").read_text())["/**"]["ros__parameters"]
    assert parameters == dataclasses.asdict(NodeConfig())


def launch_calls(path: Path) -> dict[str, list[ast.Call]]:
    """Calls in a launch file, by called name (``LifecycleNode``, ``DeclareLaunchArgument``, ...)."""
    calls: dict[str, list[ast.Call]] = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            calls.setdefault(name, []).append(node)
    return calls


def keyword(call: ast.Call, name: str) -> ast.expr:
    return next(k.value for k in call.keywords if k.arg == name)


def test_launch_file_arguments_remappings_and_lifecycle_events() -> None:
    calls = launch_calls(REPO_ROOT / "launch" / "faceanything.launch.py")
    arguments = [ast.literal_eval(call.args[0]) for call in calls["DeclareLaunchArgument"]]
    assert set(arguments) >= {"image", "camera_info", "method", "model", "engine", "use_rviz", "namespace"}
    (node,) = calls["LifecycleNode"]
    assert ast.literal_eval(keyword(node, "executable")) == "faceanything_lifecycle_node"
    assert ast.literal_eval(keyword(node, "name")) == "faceanything"
    remapped = [ast.literal_eval(pair.elts[0]) for pair in keyword(node, "remappings").elts]
    assert remapped == ["image", "image/compressed", "camera_info"]
    transitions = [ast.unparse(keyword(call, "transition_id")) for call in calls["ChangeState"]]
    assert transitions == ["Transition.TRANSITION_CONFIGURE", "Transition.TRANSITION_ACTIVATE"]
    (handler,) = calls["OnStateTransition"]
    assert ast.literal_eval(keyword(handler, "goal_state")) == "inactive"
    used = {ast.literal_eval(call.args[0]) for call in calls["LaunchConfiguration"]}
    assert set(arguments) - {"params_file"} <= used | {"params_file"}
    environments = calls["SetEnvironmentVariable"]  # the Fast DDS profile for camera-sized messages
    assert {ast.literal_eval(environment.args[0]) for environment in environments} == set(PROFILE_VARIABLES)
    profiles = {ast.unparse(environment.args[1]) for environment in environments}
    assert profiles == {"LaunchConfiguration('fastdds_profile')"}


def test_the_fast_dds_profile_holds_camera_images_in_shared_memory() -> None:
    """Fast DDS sends a best-effort message larger than its shared-memory segment (0.5 MiB by default)
    over UDP fragments, and loses most at camera rates: the shipped profile's segment holds one
    1280x720 frame's rgb8 input, 32FC1 depth and whole-image 32FC3 canonical map at once."""
    from xml.etree import ElementTree

    namespace = {"p": "http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles"}
    root = ElementTree.parse(REPO_ROOT / "config" / "fastdds_large_data.xml").getroot()
    (descriptor,) = root.findall("p:transport_descriptors/p:transport_descriptor", namespace)
    assert descriptor.findtext("p:type", namespaces=namespace) == "SHM"
    assert int(descriptor.findtext("p:segment_size", namespaces=namespace)) >= 1280 * 720 * (3 + 4 + 12)
    (participant,) = root.findall("p:participant", namespace)
    assert participant.get("is_default_profile") == "true"
    transport = participant.findtext("p:rtps/p:userTransports/p:transport_id", namespaces=namespace)
    assert transport == descriptor.findtext("p:transport_id", namespaces=namespace)


def test_bag_replay_launch_plays_runs_and_records() -> None:
    path = REPO_ROOT / "launch" / "bag_replay.launch.py"
    calls = launch_calls(path)
    arguments = {ast.literal_eval(call.args[0]) for call in calls["DeclareLaunchArgument"]}
    assert arguments >= {"bag", "output", "image", "camera_info", "method", "model", "engine"}
    commands = [ast.unparse(keyword(call, "cmd")) for call in calls["ExecuteProcess"]]
    assert any("'bag', 'record'" in command for command in commands)
    assert any("'bag', 'play'" in command for command in commands)
    assert "faceanything.launch.py" in path.read_text()
    (handler,) = calls["OnStateTransition"]
    assert ast.literal_eval(keyword(handler, "goal_state")) == "active"
    # the launch file restates the node's outputs (it imports no package code): they must agree
    (outputs,) = [node.value for node in ast.parse(path.read_text()).body
                  if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "OUTPUTS"]
    assert ast.literal_eval(outputs) == tuple(OUTPUT_TYPES)


@pytest.fixture(scope="module")
def mesh_run(ros_install, tmp_path_factory) -> NodeRun:
    """The managed node with the face-mesh method and no model; double parameters given as integers."""
    return run_node_with_client(
        ros_install, None, tmp_path_factory.mktemp("mesh"),
        str(ros_install[0] / "install" / "faceanything_ros" / "lib" / "faceanything_ros" / "faceanything_lifecycle_node"),
        "mesh", {"method": "mesh", "max_rate_hz": "30", "expected_rate_hz": "0", "qos_reliability": "reliable",
                 "qos_depth": "5"})


def test_mesh_method_without_a_model_publishes_every_output(mesh_run: NodeRun) -> None:
    record = mesh_run.record
    # method model with a missing model: configure fails and says why; then the mesh method needs none
    assert record["set_model_ok"] == [True, True] and record["configure_without_model_ok"] is False
    assert "configure failed" in mesh_run.node_log and "faceanything_model.safetensors" in mesh_run.node_log
    assert record["set_mesh_ok"] == [True, True] and record["configure_ok"] and record["activate_ok"]
    assert record["lockstep_ok"] == [True] * 3
    for i, k_sent in enumerate(record["k_sent"]):
        headers = record["frames"][f"mesh{i}"]["headers"]
        assert set(headers) == set(OUTPUT_TYPES)
        assert all(header[:2] == headers["depth/image"][:2] for header in headers.values())  # identical stamps
        assert headers["depth/image"][1] == FRAME_ID and headers["depth/image"][2] == "32FC1"
        out = frame_arrays(mesh_run, f"mesh{i}")
        np.testing.assert_array_equal(out["depth/camera_info/k"], np.array(k_sent))
        assert list(out["faces/ids"]) == [1] and out["faces/pose_valid"].all()  # one face, the same id every frame
        face = np.isfinite(out["depth/image/pixels"][..., 0])
        assert out["faces/num_pixels"][0] == face.sum()
        # by default ~/canonical is the faces' bounding box, placed by the roi of ~/canonical/camera_info
        x, y, width, height = out["canonical/camera_info/roi"]
        rows, columns = np.nonzero(face)
        assert (x, y, width, height) == (columns.min(), rows.min(), np.ptp(columns) + 1, np.ptp(rows) + 1)
        assert out["canonical/pixels"].shape[:2] == (height, width)
        np.testing.assert_array_equal(np.isfinite(out["canonical/pixels"]).all(axis=2), face[y:y + height, x:x + width])
        assert 0 < len(out["points/field_z"]) <= 20_000  # max_points
        centroid = np.stack([out["points/field_x"], out["points/field_y"], out["points/field_z"]], axis=1).mean(axis=0)
        origin = out["faces/xyz"][0]
        assert np.linalg.norm(origin - centroid) < 0.02  # metres
        np.testing.assert_allclose(np.linalg.norm(out["faces/quaternion"][0]), 1.0, atol=1e-6)
        assert list(out["tf/children"]) == ["face_1"] and list(out["tf/parents"]) == [FRAME_ID]
        np.testing.assert_allclose(out["tf/xyz"][0], origin)
        assert set(out["tracks/face_ids"][out["tracks/visible"]]) == {1}
    diagnostics = record["diagnostics_all"]
    assert diagnostics["method"] == "mesh" and diagnostics["engine"] == "none" and diagnostics["tf"] == "on"
    assert diagnostics["level"] == 0 and diagnostics["errors"] == "0"
    for stage in ("convert", "mesh", "reconstruct", "tracking", "message_build", "publish"):  # stage times
        assert int(diagnostics[f"stages.{stage}.calls"]) >= 1 and float(diagnostics[f"stages.{stage}.p99_ms"]) > 0
    assert mesh_run.node_returncode == 0
    # the only traceback is the cause logged with the failed configure
    assert mesh_run.node_log.count("Traceback") == mesh_run.node_log.count("configure failed")


def test_no_cloud_is_built_without_a_points_subscriber(mesh_run: NodeRun) -> None:
    record = mesh_run.record
    assert record["no_points_ok"] == [True, True]
    assert record["points_for_unsubscribed"] == 0
    before, after = record["diagnostics_all"], record["diagnostics_no_points"]
    assert int(after["skipped.points"]) - int(before.get("skipped.points", 0)) >= 2
    assert "skipped.depth/image" not in after  # subscribed outputs are built


def test_deactivate_during_processing_and_reconfigure_with_new_values(mesh_run: NodeRun) -> None:
    record = mesh_run.record
    assert record["deactivate_ok"] and record["deactivate_s"] < 5.0
    assert record["outputs_after_deactivate"] == 0 and record["state_after_deactivate"] == "inactive"
    assert record["cleanup_ok"] and record["set_new_values_ok"] == [True] * 5
    assert record["reconfigure_ok"] and record["reactivate_ok"] and record["after_reconfigure_ok"] == [True]
    headers = record["frames"]["reconfigured0"]["headers"]
    assert {header[1] for header in headers.values()} == {"head_camera"}  # the frame_id override
    assert headers["depth/image"][2] == "16UC1"
    before, after = frame_arrays(mesh_run, "mesh0"), frame_arrays(mesh_run, "reconfigured0")
    metres = before["depth/image/pixels"][..., 0]
    millimetres = after["depth/image/pixels"][..., 0].astype(np.float64)
    face = np.isfinite(metres)
    np.testing.assert_array_equal(millimetres > 0, face)
    np.testing.assert_allclose(millimetres[face], metres[face] * 1000.0, atol=1.0)
    # canonical_region image: the whole image at canonical_scale 0.5, its roi the image
    height, width = millimetres.shape
    assert tuple(after["canonical/camera_info/roi"]) == (0, 0, width, height)
    assert after["canonical/pixels"].shape[:2] == (round(height / 2), round(width / 2))
    np.testing.assert_array_equal(after["canonical/camera_info/k"], after["depth/camera_info/k"])
    assert len(after["tracks/ids"]) < len(before["tracks/ids"])  # num_tracks 16 instead of 64

