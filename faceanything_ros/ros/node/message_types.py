"""The rclpy message classes of the node's subscriptions, publishers and diagnostics, by ROS type name."""
from __future__ import annotations

from faceanything_ros.ros.outputs import TF_TYPE


def rclpy_message_types() -> dict[str, type]:
    """ROS type name (``"sensor_msgs/msg/Image"``) -> rclpy message class.

    ``tf2_msgs/msg/TFMessage`` is there only when tf2_msgs is installed (every ROS install has it;
    the PyPI wheels do not). Raises ``ImportError`` with the fix when ``faceanything_ros.msg`` is
    missing (a pip install: the messages are generated only by the package's colcon build).
    """
    from builtin_interfaces.msg import Duration, Time
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
    from geometry_msgs.msg import Point, Pose, Quaternion, Transform, TransformStamped, Vector3
    from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2, PointField, RegionOfInterest
    from std_msgs.msg import ColorRGBA, Header
    import visualization_msgs.msg as visualization
    try:
        from faceanything_ros.msg import CanonicalTrack, CanonicalTrackArray, Face, FaceArray
    except ImportError as error:
        raise ImportError(
            "faceanything_ros.msg is missing: the node needs the package built by colcon "
            "(`colcon build` in a workspace holding this repository, then `source install/setup.bash`)"
        ) from error
    classes = [
        Duration, Time, DiagnosticArray, DiagnosticStatus, KeyValue, Point, Pose, Quaternion, Transform,
        TransformStamped, Vector3, CameraInfo, CompressedImage, Image, PointCloud2, PointField, RegionOfInterest,
        ColorRGBA, Header, visualization.Marker, visualization.MarkerArray, CanonicalTrack, CanonicalTrackArray,
        Face, FaceArray,
    ]
    if hasattr(visualization, "MeshFile"):  # Iron and later
        classes.append(visualization.MeshFile)
    types = {f"{cls.__module__.split('.')[0]}/msg/{cls.__name__}": cls for cls in classes}
    try:
        from tf2_msgs.msg import TFMessage
    except ImportError:
        return types
    types[TF_TYPE] = TFMessage
    return types
