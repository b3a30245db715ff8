"""Tracker results: one frame (``TrackState``) and a whole sequence (``Tracks``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass
class TrackState:
    """Where every current query is in one frame (``Q`` queries, in id order).

    ids: ``(Q,)`` int64 track ids.
    pixels: ``(Q, 2)`` float32 ``(u, v)`` location in the frame's pixel grid; NaN when the frame
        has no searchable face pixel. Kept (best match) for invisible queries.
    points: ``(Q, 3)`` float32 metres, camera optical frame; NaN without depth/intrinsics.
    canonical: ``(Q, 3)`` float32 query canonical coordinate, ``[-1, 1]^3``.
    distance: ``(Q,)`` float32 canonical-space distance of the nearest match; NaN without match.
    visible: ``(Q,)`` bool, match found within the tracker's ``max_distance``.
    """

    ids: np.ndarray
    pixels: np.ndarray
    points: np.ndarray
    canonical: np.ndarray
    distance: np.ndarray
    visible: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class Tracks:
    """A tracked sequence of ``T`` frames and ``Q`` tracks (columns in id order).

    ids: ``(Q,)`` int64. query_frame: ``(Q,)`` int64 index of the first frame holding each track.
    pixels: ``(T, Q, 2)`` float32 ``(u, v)``. points: ``(T, Q, 3)`` float32 metres, optical frame.
    distance: ``(T, Q)`` float32 canonical distance. visible: ``(T, Q)`` bool.
    Entries of frames before a track's query frame are NaN (``visible`` False).
    """

    ids: np.ndarray
    query_frame: np.ndarray
    pixels: np.ndarray
    points: np.ndarray
    distance: np.ndarray
    visible: np.ndarray

    @property
    def num_frames(self) -> int:
        """``T``."""
        return self.visible.shape[0]

    @property
    def num_tracks(self) -> int:
        """``Q``."""
        return len(self.ids)

    @classmethod
    def from_states(cls, states: Sequence[TrackState]) -> "Tracks":
        """Stack per-frame states; tracks missing from a frame are padded with NaN / False."""
        ids = np.unique(np.concatenate([np.zeros(0, np.int64), *(np.asarray(s.ids, np.int64) for s in states)]))
        shape = (len(states), len(ids))
        tracks = cls(
            ids=ids,
            query_frame=np.full(len(ids), -1, np.int64),
            pixels=np.full((*shape, 2), np.nan, np.float32),
            points=np.full((*shape, 3), np.nan, np.float32),
            distance=np.full(shape, np.nan, np.float32),
            visible=np.zeros(shape, bool),
        )
        for frame_index, state in enumerate(states):
            columns = np.searchsorted(ids, state.ids)
            tracks.pixels[frame_index, columns] = state.pixels
            tracks.points[frame_index, columns] = state.points
            tracks.distance[frame_index, columns] = state.distance
            tracks.visible[frame_index, columns] = state.visible
            new = tracks.query_frame[columns] < 0
            tracks.query_frame[columns[new]] = frame_index
        return tracks
