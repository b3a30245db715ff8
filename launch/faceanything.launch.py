"""Run the faceanything lifecycle node (configured, then activated, by this launch file) and rviz.

    ros2 launch faceanything_ros faceanything.launch.py \
        image:=/camera/color/image_raw camera_info:=/camera/color/camera_info model:=/path/model.safetensors

The node's outputs are ``<namespace>/faceanything/{depth/image,depth/camera_info,points,canonical,
canonical/camera_info,tracks,track_markers,faces}``, face frames on ``/tf`` and ``/diagnostics``.
``method`` auto runs the given or bundled model, else the face-mesh method (no model needed). Every other node
parameter comes from ``params_file``. ``fastdds_profile`` (default ``config/fastdds_large_data.xml``)
becomes the node's Fast DDS profile: a shared-memory segment large enough for camera images, without
which most best-effort images over 0.5 MiB are lost between processes (the camera driver needs it too).
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, RegisterEventHandler, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from launch_ros.substitutions import FindPackageShare
from lifecycle_msgs.msg import Transition

SHARE = FindPackageShare("faceanything_ros")


def generate_launch_description() -> LaunchDescription:
    """Launch arguments, the lifecycle node, its configure/activate transitions and rviz."""
    arguments = [
        DeclareLaunchArgument("image", default_value="/camera/color/image_raw",
                              description="input image topic (sensor_msgs/Image; + /compressed)"),
        DeclareLaunchArgument("camera_info", default_value="/camera/color/camera_info",
                              description="input camera_info topic (optional; K used when present)"),
        DeclareLaunchArgument("method", default_value="auto",
                              description="model | mesh | auto (the given or bundled model, else mesh)"),
        DeclareLaunchArgument("model", default_value="", description="checkpoint path; empty = bundled"),
        DeclareLaunchArgument("engine", default_value="auto",
                              description="auto | tensorrt | compile | torch | onnx"),
        DeclareLaunchArgument("use_rviz", default_value="true", description="start rviz2"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the node"),
        DeclareLaunchArgument("params_file",
                              default_value=PathJoinSubstitution([SHARE, "config", "faceanything.yaml"]),
                              description="node parameters file"),
        DeclareLaunchArgument("fastdds_profile",
                              default_value=PathJoinSubstitution([SHARE, "config", "fastdds_large_data.xml"]),
                              description="Fast DDS profile of the node (FASTRTPS_ / FASTDDS_DEFAULT_PROFILES_FILE)"),
    ]
    # Fast DDS 2 (Jazzy) and 3 (Kilted) read the profile from differently named variables
    fastdds_profile = [SetEnvironmentVariable("FASTRTPS_DEFAULT_PROFILES_FILE", LaunchConfiguration("fastdds_profile")),
                       SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE", LaunchConfiguration("fastdds_profile"))]
    image = LaunchConfiguration("image")
    node = LifecycleNode(
        package="faceanything_ros",
        executable="faceanything_lifecycle_node",
        name="faceanything",
        namespace=LaunchConfiguration("namespace"),
        parameters=[LaunchConfiguration("params_file"),
                    {"method": LaunchConfiguration("method"), "model": LaunchConfiguration("model"),
                     "engine": LaunchConfiguration("engine")}],
        remappings=[
            ("image", image),
            ("image/compressed", [image, "/compressed"]),
            ("camera_info", LaunchConfiguration("camera_info")),
        ],
        output="screen",
    )
    configure = EmitEvent(event=ChangeState(
        lifecycle_node_matcher=matches_action(node), transition_id=Transition.TRANSITION_CONFIGURE))
    activate_when_inactive = RegisterEventHandler(OnStateTransition(
        target_lifecycle_node=node,
        start_state="configuring",
        goal_state="inactive",
        entities=[EmitEvent(event=ChangeState(
            lifecycle_node_matcher=matches_action(node), transition_id=Transition.TRANSITION_ACTIVATE))],
    ))
    rviz = Node(
        package="rviz2",
        executable="rviz2",
        arguments=["-d", PathJoinSubstitution([SHARE, "rviz", "faceanything.rviz"])],
        condition=IfCondition(LaunchConfiguration("use_rviz")),
        output="screen",
    )
    return LaunchDescription([*arguments, *fastdds_profile, activate_when_inactive, node, configure, rviz])
