"""Tracks of several faces: one ``CanonicalTracker`` (own state, own ids) per face, faces matched across frames.

All faces share one canonical space, so a track searched over every face of an image would jump
to whichever person shows the nearest canonical value. Here each face of an image arrives as its
own ``TrackingFrame`` (``Reconstruction.tracking_frames``) and is matched to a face tracked
before by box overlap (IoU of the face pixels' bounding boxes) and canonical consistency (the
fraction of that face's visible tracks whose last pixel, moved with the box, still shows a
canonical value close to theirs), one-to-one (Hungarian assignment on IoU + consistency). A
matched face continues its tracks; an unmatched image face starts a new face id (never reused) with fresh tracks; a
tracked face unseen for more than ``TrackerConfig.face_max_missing`` frames is dropped.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from faceanything_ros.config import TrackerConfig
from faceanything_ros.geometry.projection import sample_nearest
from faceanything_ros.tracking.canonical_tracker import CanonicalTracker
from faceanything_ros.tracking.frame import TrackingFrame
from faceanything_ros.tracking.tracks import TrackState

CONSISTENT_DISTANCE = 0.2  # canonical distance within which a track's last pixel still shows its point
NO_FACE = TrackingFrame(np.zeros((1, 1, 3)), np.zeros((1, 1)), np.zeros((1, 1), bool))  # steps a face not seen


@dataclass
class TrackedFace:
    """One face followed over frames: its tracker, last box ``(x0, y0, x1, y1)`` pixels and frames unseen."""

    tracker: CanonicalTracker
    box: np.ndarray
    missing: int = 0
    last_state: TrackState | None = None
    last_frame: TrackingFrame | None = None


class MultiFaceTracker:
    """Per-face canonical tracking of a stream; ``step`` once per image with that image's face frames.

    config, device, backend: as ``CanonicalTracker`` (shared by every face's tracker).
    """

    def __init__(self, config: TrackerConfig | None = None, device: str | torch.device = "cpu",
                 backend: str | None = None) -> None:
        self.config = config if config is not None else TrackerConfig()
        self.device, self.backend = device, backend
        CanonicalTracker(self.config, device, backend)  # validates the settings now, not at the first face
        self._next_face = 0
        self.faces: dict[int, TrackedFace] = {}
        self.frame_faces: list[int | None] = []  # face id of each frame given to the last step (None: no face pixels)

    def reset(self) -> None:
        """Forget every face (face ids keep counting)."""
        self.faces = {}

    @property
    def num_tracks(self) -> int:
        """Tracks of all faces."""
        return sum(face.tracker.num_queries for face in self.faces.values())

    def step(self, frames: Sequence[TrackingFrame], time_s: float | None = None) -> TrackState:
        """Track every face of one image: ``frames`` holds one ``TrackingFrame`` per face (any order).

        Returns the tracks of every face currently followed (matched, new, or missing but not yet
        dropped: those all invisible), ordered by face id; ``TrackState.face`` says whose each is, and
        ``frame_faces`` the face id of each of ``frames`` (stable across the stream: box overlap plus
        canonical consistency; never reused).
        """
        given = list(frames)
        frames = [frame for frame in given if frame.searchable(self.config.min_confidence).any()]
        boxes = [face_box(frame, self.config.min_confidence) for frame in frames]
        matches = self._match(frames, boxes)
        for face_id in list(self.faces):
            if face_id not in matches.values():
                face = self.faces[face_id]
                face.missing += 1
                if face.missing > self.config.face_max_missing:
                    del self.faces[face_id]
        for index, frame in enumerate(frames):
            if index not in matches:
                matches[index] = self._new_face(frame, boxes[index])
        for index, face_id in matches.items():
            face = self.faces[face_id]
            face.box, face.missing, face.last_frame = boxes[index], 0, frames[index]
        ids = {id(frames[index]): face_id for index, face_id in matches.items()}
        self.frame_faces = [ids.get(id(frame)) for frame in given]
        for face_id, face in self.faces.items():
            face.last_state = face.tracker.step(face.last_frame if face.missing == 0 else NO_FACE, time_s)
        return TrackState.concatenate([self.faces[face_id].last_state for face_id in sorted(self.faces)])

    def replace_lost(self) -> int:
        """``CanonicalTracker.replace_lost`` for every face seen on the last step; returns the tracks added."""
        return sum(len(face.tracker.replace_lost(face.last_frame)) for face in self.faces.values()
                   if face.missing == 0 and face.last_frame is not None)

    def _new_face(self, frame: TrackingFrame, box: np.ndarray) -> int:
        face_id = self._next_face
        self._next_face += 1
        tracker = CanonicalTracker(self.config, self.device, self.backend, face=face_id)
        tracker.seed(frame)
        self.faces[face_id] = TrackedFace(tracker=tracker, box=box)
        return face_id

    def _match(self, frames: list[TrackingFrame], boxes: list[np.ndarray]) -> dict[int, int]:
        """``{frame index: face id}`` of the image faces that continue a tracked face."""
        face_ids = list(self.faces)
        if not face_ids or not frames:
            return {}
        overlap = np.array([[box_iou(self.faces[f].box, box) for box in boxes] for f in face_ids])
        consistency = np.array([[self._consistency(self.faces[f], frame, box) for frame, box in zip(frames, boxes)]
                                for f in face_ids])
        eligible = (overlap >= self.config.face_min_iou) & ~(consistency < self.config.face_min_consistency)
        score = np.where(eligible, overlap + np.nan_to_num(consistency, nan=0.0), -1.0)
        rows, cols = linear_sum_assignment(-score)
        return {int(col): face_ids[row] for row, col in zip(rows, cols) if eligible[row, col]}

    def _consistency(self, face: TrackedFace, frame: TrackingFrame, box: np.ndarray) -> float:
        """Fraction of ``face``'s visible tracks showing their canonical point in ``frame``; NaN if none visible.

        Each track's last pixel is moved with the box (``face.box`` -> ``box``: shift and scale) first.
        """
        state = face.last_state
        if state is None or not state.visible.any():
            return float("nan")
        shown = state.visible
        scale = (box[2:] - box[:2]) / np.maximum(face.box[2:] - face.box[:2], 1.0)
        moved = box[:2] + (state.pixels[shown] - face.box[:2]) * scale
        values = sample_nearest(frame.canonical, frame.to_grid(moved), frame.searchable(self.config.min_confidence))
        return float(np.mean(np.linalg.norm(values - state.canonical[shown], axis=1) <= CONSISTENT_DISTANCE))


def face_box(frame: TrackingFrame, min_confidence: float) -> np.ndarray:
    """``(4,)`` float64 ``(x0, y0, x1, y1)`` image pixel bounds of ``frame``'s searchable face pixels (all NaN
    if none)."""
    searchable = frame.searchable(min_confidence)
    rows, cols = np.flatnonzero(searchable.any(axis=1)), np.flatnonzero(searchable.any(axis=0))
    if rows.size == 0:
        return np.full(4, np.nan)
    u0, v0 = frame.origin
    return np.array([u0 + cols[0] - 0.5, v0 + rows[0] - 0.5, u0 + cols[-1] + 0.5, v0 + rows[-1] + 0.5])


def box_iou(first: np.ndarray, second: np.ndarray) -> float:
    """Intersection over union of two ``(x0, y0, x1, y1)`` boxes (0 when either is empty or NaN)."""
    width = min(first[2], second[2]) - max(first[0], second[0])
    height = min(first[3], second[3]) - max(first[1], second[1])
    intersection = max(width, 0.0) * max(height, 0.0) if np.isfinite([width, height]).all() else 0.0
    union = (first[2] - first[0]) * (first[3] - first[1]) + (second[2] - second[0]) * (second[3] - second[1])
    return float(intersection / (union - intersection)) if union - intersection > 0 else 0.0
