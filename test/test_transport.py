"""The Fast DDS profile's environment (no ROS needed)."""
from __future__ import annotations

from faceanything_ros.ros.transport import PROFILE_VARIABLES, profile_environment


def test_both_fast_dds_versions_are_given_the_profile_and_an_empty_one_removes_it() -> None:
    before = {"PATH": "/bin", "FASTRTPS_DEFAULT_PROFILES_FILE": "/old.xml"}
    given = profile_environment(before, "/profile.xml")
    assert given == {"PATH": "/bin", **dict.fromkeys(PROFILE_VARIABLES, "/profile.xml")}
    assert set(PROFILE_VARIABLES) == {"FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE"}
    assert profile_environment(given, "") == {"PATH": "/bin"}
    assert before["FASTRTPS_DEFAULT_PROFILES_FILE"] == "/old.xml"  # a copy is returned
