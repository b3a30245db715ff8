"""``TrackState`` -> ``faceanything_ros/CanonicalTrackArray`` and ``visualization_msgs/MarkerArray``."""
from __future__ import annotations

from typing import Any

import numpy as np

from faceanything_ros.export.colorize import track_colors
from faceanything_ros.tracking.tracks import TrackState

from .images import Types

TRACK_MARKER_NAMESPACE = "faceanything_tracks"


def track_confidence(distance: np.ndarray, max_distance: float) -> np.ndarray:
    """``(Q,)`` match quality ``clip(1 - distance / max_distance, 0, 1)``; 0 where ``distance`` is NaN."""
    confidence = 1.0 - np.asarray(distance, dtype=np.float64) / max_distance
    return np.nan_to_num(np.clip(confidence, 0.0, 1.0), nan=0.0).astype(np.float32)


def track_array(types: Types, header: Any, state: TrackState, max_distance: float,
                face_ids: np.ndarray | None = None, canonical_space: str = "") -> Any:
    """``TrackState`` of ``Q`` tracks -> ``CanonicalTrackArray`` (one ``CanonicalTrack`` per query, id order).

    u, v in pixels and position in metres (optical frame) are NaN where the state has none;
    ``confidence`` is ``track_confidence(distance, max_distance)`` (the tracker's ``max_distance``);
    ``face_ids``: ``(Q,)`` id of the face each track lies on, 0 = none (None: all 0);
    ``canonical_space``: the canonical space id.
    """
    face_ids = np.zeros(len(state), np.uint32) if face_ids is None else face_ids
    point, track = types["geometry_msgs/msg/Point"], types["faceanything_ros/msg/CanonicalTrack"]
    columns = zip(state.ids.tolist(), state.pixels.tolist(), state.points.tolist(), state.canonical.tolist(),
                  track_confidence(state.distance, max_distance).tolist(), state.visible.tolist(),
                  np.asarray(face_ids).tolist())  # Python values at once: no per-element numpy scalars
    tracks = [
        track(id=track_id, u=u, v=v, position=point(x=x, y=y, z=z), canonical=point(x=cu, y=cv, z=cw),
              confidence=confidence, visible=visible, face_id=face_id)
        for track_id, (u, v), (x, y, z), (cu, cv, cw), confidence, visible, face_id in columns
    ]
    return types["faceanything_ros/msg/CanonicalTrackArray"](header=header, canonical_space=canonical_space,
                                                             tracks=tracks)


def track_array_to_arrays(msg: Any) -> dict[str, np.ndarray]:
    """``CanonicalTrackArray`` -> ``ids`` (Q,) int64, ``pixels`` (Q, 2) float32 (u, v), ``points`` (Q, 3)
    float32 metres, ``canonical`` (Q, 3) float32, ``confidence`` (Q,) float32, ``visible`` (Q,) bool,
    ``face_ids`` (Q,) uint32."""
    tracks = list(msg.tracks)
    return {
        "ids": np.array([t.id for t in tracks], dtype=np.int64),
        "pixels": np.array([[t.u, t.v] for t in tracks], dtype=np.float32).reshape(-1, 2),
        "points": np.array([[t.position.x, t.position.y, t.position.z] for t in tracks], np.float32).reshape(-1, 3),
        "canonical": np.array([[t.canonical.x, t.canonical.y, t.canonical.z] for t in tracks],
                              np.float32).reshape(-1, 3),
        "confidence": np.array([t.confidence for t in tracks], dtype=np.float32),
        "visible": np.array([t.visible for t in tracks], dtype=bool),
        "face_ids": np.array([t.face_id for t in tracks], dtype=np.uint32),
    }


def track_markers(types: Types, header: Any, state: TrackState, diameter_m: float = 0.004) -> Any:
    """Visible tracks with a 3D position -> ``MarkerArray`` ``[DELETEALL, SPHERE_LIST]`` for rviz.

    The DELETEALL marker first clears the previous frame's markers in every namespace, so no
    lifetime is needed; then one SPHERE_LIST (namespace ``TRACK_MARKER_NAMESPACE``, id 0) holds a
    sphere of ``diameter_m`` metres per visible track at its position (optical frame of
    ``header.frame_id``), coloured by id with ``export.colorize.track_colors``. With no such
    track the array holds only the DELETEALL marker.
    """
    marker_type = types["visualization_msgs/msg/Marker"]
    shown = state.visible & np.all(np.isfinite(state.points), axis=1)
    markers = [_marker(types, header, marker_type.DELETEALL, marker_type.SPHERE_LIST, 0.0, [], [])]
    if shown.any():
        point, color = types["geometry_msgs/msg/Point"], types["std_msgs/msg/ColorRGBA"]
        positions = [point(x=x, y=y, z=z) for x, y, z in state.points[shown].astype(np.float64).tolist()]
        colors = [color(r=r, g=g, b=b, a=1.0) for r, g, b in (track_colors(state.ids[shown]) / 255.0).tolist()]
        markers.append(_marker(types, header, marker_type.ADD, marker_type.SPHERE_LIST, diameter_m, positions, colors))
    return types["visualization_msgs/msg/MarkerArray"](markers=markers)


def _marker(types: Types, header: Any, action: int, kind: int, diameter_m: float, points: list, colors: list) -> Any:
    """One ``visualization_msgs/Marker`` with identity pose and every field given explicitly."""
    marker_type = types["visualization_msgs/msg/Marker"]
    point = types["geometry_msgs/msg/Point"]
    values = dict(
        header=header, ns=TRACK_MARKER_NAMESPACE, id=0, type=kind, action=action,
        pose=types["geometry_msgs/msg/Pose"](position=point(x=0.0, y=0.0, z=0.0),
                                             orientation=types["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0)),
        scale=types["geometry_msgs/msg/Vector3"](x=diameter_m, y=diameter_m, z=diameter_m),
        color=types["std_msgs/msg/ColorRGBA"](r=1.0, g=1.0, b=1.0, a=1.0),
        lifetime=types["builtin_interfaces/msg/Duration"](sec=0, nanosec=0),
        frame_locked=False, points=points, colors=colors, text="", mesh_resource="",
        mesh_use_embedded_materials=False,
    )
    if "texture" in _field_names(marker_type):  # added in Iron (absent in Humble)
        values.update(
            texture_resource="", uv_coordinates=[],
            texture=types["sensor_msgs/msg/CompressedImage"](header=header, format="", data=np.zeros(0, np.uint8)),
            mesh_file=types["visualization_msgs/msg/MeshFile"](filename="", data=np.zeros(0, np.uint8)),
        )
    return marker_type(**values)


def _field_names(message_type: type) -> set[str]:
    """Field names of a rclpy (``get_fields_and_field_types``) or rosbags (dataclass) message class."""
    if hasattr(message_type, "get_fields_and_field_types"):
        return set(message_type.get_fields_and_field_types())
    return set(message_type.__dataclass_fields__)
