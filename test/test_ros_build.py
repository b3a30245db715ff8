"""colcon builds this repository as a ROS 2 ament_cmake package (CMakeLists.txt + package.xml).

Runs only where the ROS 2 Jazzy wheels and colcon are installed (``scripts/install_ros.sh VENV``,
then ``VENV/bin/python -m pytest test/test_ros_build.py``); elsewhere every test is skipped.
Each test builds a copy of the repository in a fresh workspace under ``tmp_path`` and checks the
installed result from outside the source tree. The pub/sub check runs rclpy in a subprocess, so
this test process never imports rclpy.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "faceanything_ros"
# VCS data, build outputs and caches (as in .gitignore): not part of the package sources.
NOT_SOURCES = shutil.ignore_patterns(
    ".git", "build", "install", "log", "out", "__pycache__", "*.egg-info", ".pytest_cache",
    ".venv", ".whl", ".gl",
)


def find_ros_build_tools() -> tuple[Path, Path] | None:
    """Return ``(colcon executable, prefix holding ament_cmake)``, or None if either is absent.

    colcon is looked up in this interpreter's ``bin`` (a venv made by scripts/install_ros.sh, used
    without activation), then on PATH. The ROS wheels install into the venv prefix, so ament_cmake
    is looked for there, beside colcon, then in AMENT_PREFIX_PATH (a system ROS install).
    """
    search_path = f"{Path(sys.prefix) / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    colcon = shutil.which("colcon", path=search_path)
    if colcon is None:
        return None
    candidates = [Path(sys.prefix), Path(colcon).resolve().parent.parent]
    candidates += [Path(p) for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    for prefix in candidates:
        if (prefix / "share" / "ament_cmake" / "cmake" / "ament_cmakeConfig.cmake").is_file():
            return Path(colcon), prefix
    return None


ROS_BUILD_TOOLS = find_ros_build_tools()

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        ROS_BUILD_TOOLS is None,
        reason="ROS 2 build tools absent: needs `colcon` on PATH and ament_cmake beside it "
        "(install them with scripts/install_ros.sh VENV and run pytest from VENV)",
    ),
]

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


def build_environment(tmp_path: Path) -> dict[str, str]:
    """Environment for colcon and for the built package: the ROS prefix first, DDS kept on loopback.

    PYTHONPATH is dropped so that imports can only resolve to the workspace's install/ tree.
    """
    colcon, ament_prefix = ROS_BUILD_TOOLS
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "AMENT_PREFIX_PATH")}
    tool_dirs = [str(colcon.parent), str(ament_prefix / "bin")]
    env["PATH"] = os.pathsep.join([*tool_dirs, env.get("PATH", "")])
    env["AMENT_PREFIX_PATH"] = str(ament_prefix)
    env["CMAKE_PREFIX_PATH"] = str(ament_prefix)
    env["COLCON_HOME"] = str(tmp_path / "colcon_home")
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env["ROS_DOMAIN_ID"] = str(1 + os.getpid() % 100)  # parallel test runs do not hear each other
    return env


def copy_repository(workspace: Path) -> Path:
    """Copy the repository's sources to ``workspace/src/faceanything_ros``; return that directory."""
    package_dir = workspace / "src" / PACKAGE
    shutil.copytree(REPO_ROOT, package_dir, ignore=NOT_SOURCES, symlinks=True)
    return package_dir


def run_checked(command: list[str], cwd: Path, env: dict[str, str], timeout_s: float) -> str:
    """Run ``command``; return its stdout, or fail the test with the tail of its output."""
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout_s, check=False
    )
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(command[:3])} exited {result.returncode}\n"
            f"stdout tail:\n{result.stdout[-4000:]}\nstderr tail:\n{result.stderr[-4000:]}"
        )
    return result.stdout


def colcon_build(workspace: Path, env: dict[str, str]) -> Path:
    """Build ``workspace`` with colcon and return the package's install prefix."""
    run_checked(["colcon", "build", "--event-handlers", "console_cohesion+"], workspace, env, 600)
    return workspace / "install" / PACKAGE


def python_in_workspace(workspace: Path, code: str, cwd: Path, env: dict[str, str]) -> str:
    """Run ``python -c code`` after sourcing the workspace's install/setup.bash; return stdout."""
    setup = workspace / "install" / "setup.bash"
    return run_checked(
        ["bash", "-c", f'source "{setup}" && exec python -c "$0"', code], cwd, env, 120
    )


def test_repository_builds_and_imports_from_install_tree(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    copy_repository(workspace)
    env = build_environment(tmp_path)

    install_prefix = colcon_build(workspace, env)

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
