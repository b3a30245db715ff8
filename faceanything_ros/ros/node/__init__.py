"""The rclpy side of the package (the only code importing rclpy).

``lifecycle`` (the node), ``parameters`` (``NodeConfig`` as ROS parameters), ``publishers``
(outputs built and published only when subscribed), ``message_types`` (the rclpy classes of
the subscriptions, publishers and diagnostics), ``run`` (entry points) and ``bag_replay``
(``bag-eval --through-node``).
"""
from faceanything_ros.ros.node.lifecycle import FaceAnythingNode
from faceanything_ros.ros.node.run import lifecycle_main, main, module_main

__all__ = ["FaceAnythingNode", "lifecycle_main", "main", "module_main"]
