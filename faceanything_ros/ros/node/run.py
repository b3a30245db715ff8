"""Entry points of the node: ``faceanything_node`` (configures and activates itself),
``faceanything_lifecycle_node`` (a lifecycle manager drives it) and ``python -m faceanything_ros.ros.node``,
all taking ``--ros-args``. The generated messages (``faceanything_ros.msg``) come from the
package's colcon build.
"""
from __future__ import annotations

import argparse
import sys

import rclpy
from rclpy._rclpy_pybind11 import RCLError
from rclpy.executors import ExternalShutdownException
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.utilities import remove_ros_args

from faceanything_ros.ros.node.lifecycle import FaceAnythingNode


def main(args: list[str] | None = None) -> int:
    """``faceanything_node``: run the node, configuring and activating it at start-up."""
    return run(args, activate=True)


def lifecycle_main(args: list[str] | None = None) -> int:
    """``faceanything_lifecycle_node``: run the node unconfigured; a lifecycle manager drives it."""
    return run(args, activate=False)


def run(args: list[str] | None, activate: bool) -> int:
    """Spin a ``FaceAnythingNode`` until Ctrl-C or ROS shutdown; exit status 0, or 1 when it cannot start."""
    rclpy.init(args=args)
    node = None
    try:
        node = FaceAnythingNode()
        if activate and not (node.trigger_configure() == TransitionCallbackReturn.SUCCESS
                             and node.trigger_activate() == TransitionCallbackReturn.SUCCESS):
            node.get_logger().fatal("could not configure and activate; see the errors above")
            return 1
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RCLError:
        if rclpy.ok():
            raise
        # a callback (e.g. the diagnostics timer) ran while Ctrl-C shut the context down: a clean exit
    finally:
        if node is not None:
            node.release()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


def module_main(argv: list[str] | None = None) -> int:
    """``python -m faceanything_ros.ros.node [--lifecycle] --ros-args ...``."""
    argv = sys.argv if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m faceanything_ros.ros.node",
                                     description="the faceanything ROS 2 node")
    parser.add_argument("--lifecycle", action="store_true",
                        help="start unconfigured (a lifecycle manager configures and activates it)")
    options = parser.parse_args(remove_ros_args(argv)[1:])
    return run(argv, activate=not options.lifecycle)
