"""Test helpers: colcon-build this repository in a throw-away workspace and run code from it.

The generated message types (``faceanything_ros.msg``) exist only in a colcon install, not in
the editable pip install the tests otherwise import, so every ROS test that needs them works through a built
workspace: it copies the repository's sources to ``WS/src/faceanything_ros``, runs ``colcon
build`` and runs Python (the node, a test client) in subprocesses after ``source
install/setup.bash``. That also proves the installed package, not the source tree, works. Tests
that only run the installed package share one build per session (``conftest.built_workspace``).

The PyPI ROS wheels have no ``tf2_msgs``; every ROS install does. The workspace therefore gets the
standard ``tf2_msgs/TFMessage`` definition as a package of its own (``TF2_MSGS``), so the node
publishes TF there as on a robot; the package's own build never holds it, so it can never shadow
a robot's real tf2_msgs.

DDS traffic stays on this machine: ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` and a
``ROS_DOMAIN_ID`` derived from the test process id, so parallel test runs do not hear each other
(in-process rclpy tests pass the same to ``rclpy.init``).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from faceanything_ros.ros.transport import PROFILE_NAME, profile_environment

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

requires_ros_build_tools = pytest.mark.skipif(
    ROS_BUILD_TOOLS is None,
    reason="ROS 2 build tools absent: needs `colcon` on PATH and ament_cmake beside it "
    "(install them with scripts/install_ros.sh VENV and run pytest from VENV)",
)


def ros_domain_id() -> int:
    """A DDS domain id (1..100) for this test process, so parallel test runs stay apart."""
    return 1 + os.getpid() % 100


def build_environment(tmp_path: Path) -> dict[str, str]:
    """Environment for colcon and for the built package: the ROS prefix first, DDS kept on loopback,
    and the package's Fast DDS profile for camera-sized messages, as the launch file gives the node
    (without it, reliable images over 0.5 MiB travel as UDP fragments and may arrive seconds late).

    PYTHONPATH is dropped so that imports can only resolve to the workspace's install/ tree.
    """
    colcon, ament_prefix = ROS_BUILD_TOOLS
    env = profile_environment({k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "AMENT_PREFIX_PATH")},
                              str(REPO_ROOT / "config" / PROFILE_NAME))
    tool_dirs = [str(colcon.parent), str(ament_prefix / "bin")]
    env["PATH"] = os.pathsep.join([*tool_dirs, env.get("PATH", "")])
    env["AMENT_PREFIX_PATH"] = str(ament_prefix)
    env["CMAKE_PREFIX_PATH"] = str(ament_prefix)
    env["COLCON_HOME"] = str(tmp_path / "colcon_home")
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env["ROS_DOMAIN_ID"] = str(ros_domain_id())
    env["PYTHONUNBUFFERED"] = "1"
    return env


TF2_MSGS = {
    # the message of ros2/geometry2's tf2_msgs, unchanged
    "msg/TFMessage.msg": "geometry_msgs/TransformStamped[] transforms\n",
    "package.xml": """<?xml version="1.0"?>
<package format="3">
  <name>tf2_msgs</name>
  <version>0.36.0</version>
  <description>tf2_msgs/TFMessage only, for the faceanything_ros tests</description>
  <maintainer email="maintainers@faceanything-ros.invalid">faceanything_ros maintainers</maintainer>
  <license>BSD-3-Clause</license>
  <buildtool_depend>ament_cmake</buildtool_depend>
  <buildtool_depend>rosidl_default_generators</buildtool_depend>
  <depend>geometry_msgs</depend>
  <exec_depend>rosidl_default_runtime</exec_depend>
  <member_of_group>rosidl_interface_packages</member_of_group>
  <export><build_type>ament_cmake</build_type></export>
</package>
""",
    "CMakeLists.txt": """cmake_minimum_required(VERSION 3.20)
project(tf2_msgs NONE)
enable_language(C CXX)
find_package(ament_cmake REQUIRED)
find_package(rosidl_default_generators REQUIRED)
find_package(geometry_msgs REQUIRED)
rosidl_generate_interfaces(${PROJECT_NAME} "msg/TFMessage.msg" DEPENDENCIES geometry_msgs)
ament_export_dependencies(rosidl_default_runtime)
ament_package()
""",
}


def copy_repository(workspace: Path) -> Path:
    """Copy the repository's sources to ``workspace/src/faceanything_ros`` and the test-only ``tf2_msgs``
    package (``TF2_MSGS``) beside it; return the package's directory."""
    package_dir = workspace / "src" / PACKAGE
    shutil.copytree(REPO_ROOT, package_dir, ignore=NOT_SOURCES, symlinks=True)
    for relative, text in TF2_MSGS.items():
        path = workspace / "src" / "tf2_msgs" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
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


def sourced_command(workspace: Path, command: str) -> list[str]:
    """``bash -c`` argv that runs shell ``command`` after sourcing ``workspace/install/setup.bash``.

    Extra arguments appended to the returned list reach ``command`` as ``$0``, ``$1``, ...
    """
    setup = workspace / "install" / "setup.bash"
    return ["bash", "-c", f'source "{setup}" && {command}']


def python_in_workspace(workspace: Path, code: str, cwd: Path, env: dict[str, str]) -> str:
    """Run ``python -c code`` after sourcing the workspace's install/setup.bash; return stdout."""
    return run_checked([*sourced_command(workspace, 'exec python -c "$0"'), code], cwd, env, 120)
