"""colcon builds this repository as a ROS 2 ament_cmake package (CMakeLists.txt + package.xml).

Runs only where the ROS 2 Jazzy wheels and colcon are installed (``scripts/install_ros.sh VENV``,
then ``VENV/bin/python -m pytest test/test_ros_build.py``); elsewhere every test is skipped.
The first test checks the session's shared build of the repository
(the ``built_workspace`` fixture), the second builds a copy with an extra message in a
fresh workspace under ``tmp_path``; both check the installed result from outside the source
tree. The pub/sub check runs rclpy in a subprocess, so this test process never imports rclpy.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from ros_workspace import (
    PACKAGE, build_environment, colcon_build, copy_repository, python_in_workspace, requires_ros_build_tools,
)

pytestmark = [pytest.mark.slow, requires_ros_build_tools]

# Publishes a Probe over Fast DDS and prints what the same process received, as one JSON line.
PUBSUB_SCRIPT = """
import json, time
import rclpy
from rclpy.executors import SingleThreadedExecutor
import faceanything_ros.config
from faceanything_ros.msg import Probe

rclpy.init()
node = rclpy.create_node("probe_roundtrip")
received = []
node.create_subscription(Probe, "probe", received.append, 10)
publisher = node.create_publisher(Probe, "probe", 10)
executor = SingleThreadedExecutor()
executor.add_node(node)
sent = Probe(id=4242)
sent.header.frame_id = "camera_optical_frame"
deadline = time.monotonic() + 20.0
while not received and time.monotonic() < deadline:
    publisher.publish(sent)
    executor.spin_once(timeout_sec=0.1)
print(json.dumps({
    "config_file": faceanything_ros.config.__file__,
    "fields": Probe.get_fields_and_field_types(),
    "rmw": rclpy.get_rmw_implementation_identifier(),
    "received": [[m.id, m.header.frame_id] for m in received[:1]],
}))
node.destroy_node()
rclpy.shutdown()
"""


def test_repository_builds_and_imports_from_install_tree(tmp_path: Path, built_workspace: Path) -> None:
    workspace = built_workspace
    env = build_environment(tmp_path)
    install_prefix = workspace / "install" / PACKAGE

    assert (install_prefix / "share" / PACKAGE / "package.xml").is_file()
    ament_index = install_prefix / "share" / "ament_index" / "resource_index"
    assert (ament_index / "packages" / PACKAGE).is_file()
    import_check = (
        "import faceanything_ros, faceanything_ros.config\n"
        "print(faceanything_ros.__file__)\nprint(faceanything_ros.config.__file__)"
    )
    out = python_in_workspace(workspace, import_check, tmp_path, env)
    package_file, config_file = (Path(line) for line in out.splitlines())
    site_packages = package_file.parent.parent
    assert site_packages.parent.parent.name == "lib"
    assert site_packages.parent.parent.parent == install_prefix
    assert config_file == site_packages / PACKAGE / "config.py"

    # the package's own messages are generated beside it, and the node imports from the install
    message_check = (
        "import json\n"
        "from faceanything_ros.msg import CanonicalTrack, CanonicalTrackArray\n"
        "import faceanything_ros.ros.node as node\n"
        "from faceanything_ros.ros.node.message_types import rclpy_message_types\n"
        "print(json.dumps([CanonicalTrack.get_fields_and_field_types(),\n"
        "                  CanonicalTrackArray.get_fields_and_field_types(), node.__file__,\n"
        "                  sorted(rclpy_message_types())]))"
    )
    track_fields, array_fields, node_file, message_types = json.loads(
        python_in_workspace(workspace, message_check, tmp_path, env).splitlines()[-1])
    assert track_fields == {
        "id": "uint32", "u": "float", "v": "float", "position": "geometry_msgs/Point",
        "canonical": "geometry_msgs/Point", "confidence": "float", "visible": "boolean", "face_id": "uint32",
    }
    assert array_fields == {"header": "std_msgs/Header", "canonical_space": "string",
                            "tracks": "sequence<faceanything_ros/CanonicalTrack>"}
    assert Path(node_file) == site_packages / PACKAGE / "ros" / "node" / "__init__.py"
    assert "faceanything_ros/msg/CanonicalTrackArray" in message_types
    for executable in ("faceanything_node", "faceanything_lifecycle_node"):
        wrapper = install_prefix / "lib" / PACKAGE / executable
        assert wrapper.stat().st_mode & 0o111 and "faceanything_ros.ros.node" in wrapper.read_text()


def test_generated_message_imports_beside_package_and_round_trips(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    package_dir = copy_repository(workspace)
    (package_dir / "msg").mkdir(exist_ok=True)
    (package_dir / "msg" / "Probe.msg").write_text("std_msgs/Header header\nuint32 id\n")
    env = build_environment(tmp_path)

    install_prefix = colcon_build(workspace, env)

    out = python_in_workspace(workspace, PUBSUB_SCRIPT, tmp_path, env)
    report = json.loads(out.splitlines()[-1])
    assert Path(report["config_file"]).is_relative_to(install_prefix)
    assert report["fields"] == {"header": "std_msgs/Header", "id": "uint32"}
    assert report["rmw"] == "rmw_fastrtps_cpp"
    assert report["received"] == [[4242, "camera_optical_frame"]]
