"""The Fast DDS profile for camera-sized messages (``config/fastdds_large_data.xml``) and how a process is given it.

Fast DDS's shared-memory segment is 0.5 MiB by default: a larger best-effort message (a 640x480
rgb8 image is 0.9 MiB) then goes over UDP in fragments, and most are lost at camera rates. The
writer's segment is what counts, so every process that publishes images needs the profile. Fast DDS
reads it from an environment variable when the process creates its participant: Fast DDS 2
(ROS 2 Jazzy) reads ``FASTRTPS_DEFAULT_PROFILES_FILE``, Fast DDS 3 (Kilted) ``FASTDDS_DEFAULT_PROFILES_FILE``.
"""
from __future__ import annotations

from pathlib import Path

PROFILE_VARIABLES = ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE")
PROFILE_NAME = "fastdds_large_data.xml"


def profile_environment(environment: dict[str, str], profile: str) -> dict[str, str]:
    """A copy of ``environment`` with ``profile`` as the Fast DDS profile of both Fast DDS versions
    ("" = none: Fast DDS's defaults)."""
    result = {key: value for key, value in environment.items() if key not in PROFILE_VARIABLES}
    if profile:
        result.update(dict.fromkeys(PROFILE_VARIABLES, profile))
    return result


def installed_profile() -> str:
    """Path of ``config/fastdds_large_data.xml`` in the package's share folder (a sourced colcon install)."""
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    try:
        share = Path(get_package_share_directory("faceanything_ros"))
    except PackageNotFoundError as error:
        raise RuntimeError("faceanything_ros is not in AMENT_PREFIX_PATH: source the colcon install "
                           "(install/setup.bash) to run the node") from error
    profile = share / "config" / PROFILE_NAME
    if not profile.is_file():
        raise FileNotFoundError(f"the Fast DDS profile {profile} is missing from the install")
    return str(profile)
