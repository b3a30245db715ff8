"""A ``rosbags`` typestore (ROS 2 Jazzy) with this package's messages, for reading/writing bags without ROS.

``msg/*.msg`` at the repository root is the one source of the message definitions: the ament
build generates them for rclpy and installs them to ``share/faceanything_ros/msg``; setup.py
installs them to the same place (``<prefix>/share/faceanything_ros/msg``); here they are parsed
again for rosbags. ``msg_directory()`` finds them in a source checkout (editable install), a pip
install and a colcon install alike.
"""
from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path

from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

PACKAGE = "faceanything_ros"
MESSAGES = ("CanonicalTrack", "CanonicalTrackArray", "Face", "FaceArray")


def msg_directory(package_dir: Path | None = None) -> Path:
    """The folder holding ``CanonicalTrack.msg`` etc.; ``FileNotFoundError`` listing where it looked.

    Looks beside the package folder ``package_dir`` (default: this package; a source checkout),
    then in ``share/faceanything_ros/msg`` under the install prefix the package lies in
    (``<prefix>/lib/pythonX.Y/site-packages/faceanything_ros``: colcon and pip), then under
    ``sys.prefix``.
    """
    package_dir = Path(package_dir) if package_dir is not None else Path(__file__).resolve().parents[1]
    candidates = [package_dir.parent / "msg"]
    if len(package_dir.parents) > 3:
        candidates.append(package_dir.parents[3] / "share" / PACKAGE / "msg")
    candidates.append(Path(sys.prefix) / "share" / PACKAGE / "msg")
    for candidate in candidates:
        if all((candidate / f"{name}.msg").is_file() for name in MESSAGES):
            return candidate
    raise FileNotFoundError(
        f"{PACKAGE} message definitions {[f'{name}.msg' for name in MESSAGES]} not found; looked in "
        f"{[str(candidate) for candidate in candidates]}"
    )


@lru_cache(maxsize=1)
def typestore() -> Typestore:
    """The ROS 2 Jazzy typestore plus ``faceanything_ros/msg/*`` (built once, then shared)."""
    store = get_typestore(Stores.ROS2_JAZZY)
    directory = msg_directory()
    types = {}
    for name in MESSAGES:
        types.update(get_types_from_msg((directory / f"{name}.msg").read_text(), f"{PACKAGE}/msg/{name}"))
    store.register(types)
    return store
