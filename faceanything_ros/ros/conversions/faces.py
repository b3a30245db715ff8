"""Faces of a processed frame -> ``faceanything_ros/FaceArray``, ``tf2_msgs/TFMessage`` and rviz label markers.

ROS-free and duck-typed like the other conversions. A face's pose is the face frame in the
image's optical frame (``stream.head_pose``: REP 103, x forward out of the face, y to the
subject's left, z up); on ``/tf`` it is the transform from ``header.frame_id`` to ``face_<id>``.
"""
from __future__ import annotations

from typing import Any, Sequence

from faceanything_ros.stream.processing import FaceResult

from .images import Types
from .tracks import _marker

FACE_MARKER_NAMESPACE = "faceanything_faces"
FACE_LABEL_HEIGHT_M = 0.03  # text height of the face labels in rviz


def face_frame_id(face_id: int) -> str:
    """TF child frame of face ``face_id``: ``face_<id>``."""
    return f"face_{face_id}"


def _pose(types: Types, face: FaceResult) -> Any:
    """``geometry_msgs/Pose`` of ``face.pose`` (identity when the face has none)."""
    point, quaternion = types["geometry_msgs/msg/Point"], types["geometry_msgs/msg/Quaternion"]
    if face.pose is None:
        return types["geometry_msgs/msg/Pose"](position=point(x=0.0, y=0.0, z=0.0),
                                               orientation=quaternion(x=0.0, y=0.0, z=0.0, w=1.0))
    (x, y, z), (qx, qy, qz, qw) = face.pose.translation, face.pose.quaternion_xyzw()
    return types["geometry_msgs/msg/Pose"](position=point(x=float(x), y=float(y), z=float(z)),
                                           orientation=quaternion(x=float(qx), y=float(qy), z=float(qz), w=float(qw)))


def face_array(types: Types, header: Any, faces: Sequence[FaceResult], canonical_space: str) -> Any:
    """``FaceArray`` of one image's ``faces`` (id, box pixels, score, pose, pose rms metres, pixel count)."""
    face_type = types["faceanything_ros/msg/Face"]
    messages = [face_type(
        id=int(face.id), x_min=float(face.box.x0), y_min=float(face.box.y0), x_max=float(face.box.x1),
        y_max=float(face.box.y1), score=float(face.score), pose_valid=face.pose is not None, pose=_pose(types, face),
        pose_rms=float(face.pose.rms_m) if face.pose is not None else float("nan"), num_pixels=int(face.num_pixels),
    ) for face in faces]
    return types["faceanything_ros/msg/FaceArray"](header=header, canonical_space=canonical_space, faces=messages)


def face_transforms(types: Types, header: Any, faces: Sequence[FaceResult]) -> Any:
    """``tf2_msgs/TFMessage``: ``header.frame_id`` -> ``face_<id>`` for each face with a pose."""
    vector, stamped = types["geometry_msgs/msg/Vector3"], types["geometry_msgs/msg/TransformStamped"]
    transforms = []
    for face in faces:
        if face.pose is None:
            continue
        pose = _pose(types, face)
        transform = types["geometry_msgs/msg/Transform"](
            translation=vector(x=pose.position.x, y=pose.position.y, z=pose.position.z), rotation=pose.orientation)
        transforms.append(stamped(header=header, child_frame_id=face_frame_id(face.id), transform=transform))
    return types["tf2_msgs/msg/TFMessage"](transforms=transforms)


def face_label_markers(types: Types, header: Any, faces: Sequence[FaceResult]) -> list[Any]:
    """One ``TEXT_VIEW_FACING`` marker ``"face <id>"`` per face with a pose, at its origin (marker id = face id)."""
    marker_type = types["visualization_msgs/msg/Marker"]
    markers = []
    for face in faces:
        if face.pose is None:
            continue
        marker = _marker(types, header, marker_type.ADD, marker_type.TEXT_VIEW_FACING, FACE_LABEL_HEIGHT_M, [], [])
        marker.ns, marker.id, marker.text, marker.pose = FACE_MARKER_NAMESPACE, int(face.id), f"face {face.id}", \
            _pose(types, face)
        markers.append(marker)
    return markers
