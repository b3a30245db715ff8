"""Replay a rosbag2 through the faceanything node and record everything it publishes.

    ros2 launch faceanything_ros bag_replay.launch.py bag:=in_bag output:=out_bag \
        image:=/camera/color/image_raw camera_info:=/camera/color/camera_info model:=/path/model.safetensors

Includes faceanything.launch.py (lifecycle node, configured and activated, without rviz); the
bag starts playing once the node is active, so no frame reaches a node that is still loading
its model. The output bag holds the node's topics plus the input topics (for side-by-side
viewing). ``faceanything bag-eval`` does the same offline, without ROS, and adds a JSON report.
"""
from launch import LaunchDescription
from launch.actions import (
    DeclareLaunchArgument, ExecuteProcess, IncludeLaunchDescription, RegisterEventHandler,
)
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.event_handlers import OnStateTransition
from launch_ros.substitutions import FindPackageShare

OUTPUTS = ("depth/image", "depth/camera_info", "points", "canonical", "canonical/camera_info", "tracks",
           "track_markers", "faces", "tf")
GLOBAL_OUTPUTS = {"tf": "/tf"}


def generate_launch_description() -> LaunchDescription:
    """Launch arguments, the node (included), ``ros2 bag record`` and, once active, ``ros2 bag play``."""
    image = LaunchConfiguration("image")
    camera_info = LaunchConfiguration("camera_info")
    arguments = [
        DeclareLaunchArgument("bag", description="input bag (folder or file)"),
        DeclareLaunchArgument("output", description="output bag folder (must not exist)"),
        DeclareLaunchArgument("image", default_value="/camera/color/image_raw",
                              description="image topic in the input bag"),
        DeclareLaunchArgument("camera_info", default_value="/camera/color/camera_info",
                              description="camera_info topic in the input bag"),
        DeclareLaunchArgument("method", default_value="auto",
                              description="model | mesh | auto (the given or bundled model, else mesh)"),
        DeclareLaunchArgument("model", default_value="", description="checkpoint path; empty = bundled"),
        DeclareLaunchArgument("engine", default_value="auto",
                              description="auto | tensorrt | compile | torch | onnx"),
        DeclareLaunchArgument("rate", default_value="1.0", description="bag playback rate factor"),
    ]
    node = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(
            PathJoinSubstitution([FindPackageShare("faceanything_ros"), "launch", "faceanything.launch.py"])),
        launch_arguments={
            "image": image, "camera_info": camera_info, "method": LaunchConfiguration("method"),
            "model": LaunchConfiguration("model"),
            "engine": LaunchConfiguration("engine"), "use_rviz": "false", "namespace": "",
        }.items(),
    )
    record = ExecuteProcess(
        cmd=["ros2", "bag", "record", "-o", LaunchConfiguration("output"),
             image, camera_info, "/diagnostics",
             *[GLOBAL_OUTPUTS.get(topic, f"/faceanything/{topic}") for topic in OUTPUTS]],
        output="screen",
    )
    play_when_active = RegisterEventHandler(OnStateTransition(
        start_state="activating",
        goal_state="active",
        entities=[ExecuteProcess(
            cmd=["ros2", "bag", "play", LaunchConfiguration("bag"), "--rate", LaunchConfiguration("rate")],
            output="screen",
        )],
    ))
    return LaunchDescription([*arguments, play_when_active, record, node])
