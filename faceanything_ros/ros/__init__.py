"""ROS 2 side of the package.

``conversions`` (numpy <-> ROS messages, duck-typed over rclpy and rosbags classes), ``outputs``
(the node's topics and messages), ``message_types`` (a rosbags typestore with our messages) and
``bag*`` (offline replay, bag-eval) are ROS-free; only ``node/`` imports rclpy. The per-frame
stream logic they serve lives in ``faceanything_ros.stream``.
"""
