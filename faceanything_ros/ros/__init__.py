"""ROS 2 side of the package.

``conversions`` (numpy <-> ROS messages, duck-typed over rclpy and rosbags classes),
``processing`` (the per-frame work shared by the node and bag-eval), ``stats`` (counters and
latency percentiles), ``bounded`` (size-capped stores), ``message_types`` (a rosbags typestore
with our messages) and ``bag*`` (offline replay) are ROS-free; only ``node*.py`` imports rclpy.
"""
