"""Tracker results: one frame (``TrackState``) and a whole sequence (``Tracks``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass
class TrackState:
    """Where every current query is in one frame (``Q`` queries, in id order).

    ids: ``(Q,)`` int64 track ids (canonical template queries: the template point index, the same
        facial point for every face; ``(face, id)`` identifies a track).
    face: ``(Q,)`` int64 id of the tracked face each track belongs to.
    pixels: ``(Q, 2)`` float32 ``(u, v)`` location in the frame's pixel grid; NaN when no searchable
        face pixel is within the tracker's search bound (twice ``max_distance``) in canonical space. An invisible query
        within it keeps its best match.
    points: ``(Q, 3)`` float32 metres, camera optical frame; NaN without depth/intrinsics.
    canonical: ``(Q, 3)`` float32 query canonical coordinate, ``[-1, 1]^3``.
    distance: ``(Q,)`` float32 canonical-space distance of the nearest match; NaN without match.
    visible: ``(Q,)`` bool, match found within the tracker's ``max_distance``.
    """

    ids: np.ndarray
    face: np.ndarray
    pixels: np.ndarray
    points: np.ndarray
    canonical: np.ndarray
    distance: np.ndarray
    visible: np.ndarray

    @classmethod
    def concatenate(cls, states: Sequence["TrackState"]) -> "TrackState":
        """The tracks of several states (e.g. one per face) as one state, in the given order."""
        if not states:
            return cls(ids=np.zeros(0, np.int64), face=np.zeros(0, np.int64), pixels=np.zeros((0, 2), np.float32),
                       points=np.zeros((0, 3), np.float32), canonical=np.zeros((0, 3), np.float32),
                       distance=np.zeros(0, np.float32), visible=np.zeros(0, bool))
        return cls(**{name: np.concatenate([getattr(state, name) for state in states])
                      for name in cls.__dataclass_fields__})

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class Tracks:
    """A tracked sequence of ``T`` frames and ``Q`` tracks (columns ordered by face, then id).

    ids: ``(Q,)`` int64. face: ``(Q,)`` int64 face of each track. canonical: ``(Q, 3)`` float32
    canonical coordinate of each track. query_frame: ``(Q,)`` int64 index of the first frame
    holding each track. pixels: ``(T, Q, 2)`` float32 ``(u, v)``. points: ``(T, Q, 3)`` float32 metres, optical frame.
    distance: ``(T, Q)`` float32 canonical distance. visible: ``(T, Q)`` bool.
    Entries of frames before a track's query frame are NaN (``visible`` False).
    """

    ids: np.ndarray
    face: np.ndarray
    canonical: np.ndarray
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
        """Stack per-frame states by ``(face, id)``; tracks missing from a frame are padded with NaN / False."""
        keyed = [_key(s.face, s.ids) for s in states]
        keys, first = np.unique(np.concatenate([np.zeros(0, np.int64), *keyed]), return_index=True)
        canonical = np.concatenate([np.zeros((0, 3), np.float32), *(s.canonical for s in states)])[first]
        shape = (len(states), len(keys))
        tracks = cls(
            ids=keys & ID_MASK,
            face=keys >> FACE_SHIFT,
            canonical=canonical.astype(np.float32),
            query_frame=np.full(len(keys), -1, np.int64),
            pixels=np.full((*shape, 2), np.nan, np.float32),
            points=np.full((*shape, 3), np.nan, np.float32),
            distance=np.full(shape, np.nan, np.float32),
            visible=np.zeros(shape, bool),
        )
        for frame_index, (state, state_keys) in enumerate(zip(states, keyed)):
            columns = np.searchsorted(keys, state_keys)
            tracks.pixels[frame_index, columns] = state.pixels
            tracks.points[frame_index, columns] = state.points
            tracks.distance[frame_index, columns] = state.distance
            tracks.visible[frame_index, columns] = state.visible
            new = tracks.query_frame[columns] < 0
            tracks.query_frame[columns[new]] = frame_index
        return tracks


FACE_SHIFT = 32  # (face, id) packed as face << 32 | id; ids and faces are non-negative and below 2^31
ID_MASK = (1 << FACE_SHIFT) - 1


def _key(face: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """``(Q,)`` int64 sortable key of each ``(face, id)``."""
    return (np.asarray(face, np.int64) << FACE_SHIFT) | np.asarray(ids, np.int64)
