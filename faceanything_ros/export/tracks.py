"""Canonical tracks on disk: ``tracks.npz``."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..tracking import Tracks


def save_tracks(path: str | Path, tracks: Tracks) -> None:
    """Write tracks as ``.npz``.

    Keys: ``ids`` (Q,) int64 track ids (canonical template queries: id k is the same facial point
    in every file), ``face`` (Q,) int64 id of each track's face (``(face, id)`` identifies a track),
    ``canonical`` (Q, 3) float32 each track's canonical coordinate in [-1, 1], ``query_frame`` (Q,)
    int frame each track starts in, ``pixels`` (T, Q, 2) float32 (u, v) image pixels, ``points``
    (T, Q, 3) float32 metres in the camera optical frame, ``visible`` (T, Q) bool, ``distance`` (T, Q) float32 canonical-space
    match distance. Entries before a track's query frame are NaN / False.
    """
    np.savez_compressed(path, ids=tracks.ids, face=tracks.face, canonical=tracks.canonical,
                        query_frame=tracks.query_frame, pixels=tracks.pixels, points=tracks.points,
                        visible=tracks.visible, distance=tracks.distance)
