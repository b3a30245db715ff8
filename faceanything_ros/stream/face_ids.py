"""Stable face ids across the frames of a stream: box overlap plus canonical consistency.

A face of the new frame keeps the id of a face of the recent frames when their boxes overlap
(intersection over union >= ``MIN_BOX_IOU``) and the mean canonical coordinate of their visible
pixels agrees (within ``MAX_CANONICAL_SHIFT`` canonical units: the same part of a face is seen,
not a face that turned away or another face taking the box); pairs are assigned by the Hungarian
method on the overlap. A face not seen for ``MAX_MISSED_FRAMES`` frames is forgotten; new faces
get the next id (1, 2, ...; 0 means "no face" in messages).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from faceanything_ros.reconstruction import FaceReconstruction

MIN_BOX_IOU = 0.3
MAX_CANONICAL_SHIFT = 0.3  # canonical units ([-1, 1] spans the template's largest side)
MAX_MISSED_FRAMES = 5


@dataclass
class _KnownFace:
    id: int
    box: np.ndarray  # (4,) x0, y0, x1, y1 pixels
    canonical_mean: np.ndarray | None  # (3,) mean canonical coordinate of the face's points, or None
    missed: int = 0


def box_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """``(A, B)`` intersection over union of ``(A, 4)`` and ``(B, 4)`` ``x0, y0, x1, y1`` boxes (pixels)."""
    a, b = np.asarray(boxes_a, np.float64)[:, None], np.asarray(boxes_b, np.float64)[None]
    width = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0.0, None)
    height = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0.0, None)
    intersection = width * height
    area = lambda box: (box[..., 2] - box[..., 0]) * (box[..., 3] - box[..., 1])  # noqa: E731
    return intersection / np.maximum(area(a) + area(b) - intersection, 1e-9)


class FaceIdentities:
    """Assigns each face of each frame its stream-wide id (module docstring); ``reset`` forgets all."""

    def __init__(self) -> None:
        self._known: list[_KnownFace] = []
        self._next_id = 1

    def reset(self) -> None:
        """Forget every face; ids continue from the last one (an id is never reused)."""
        self._known = []

    def assign(self, faces: list[FaceReconstruction]) -> list[int]:
        """The id of each of ``faces`` (one frame's), in order."""
        boxes = np.array([[f.face.x0, f.face.y0, f.face.x1, f.face.y1] for f in faces]).reshape(-1, 4)
        means = [_canonical_mean(face) for face in faces]
        ids = [0] * len(faces)
        taken: set[int] = set()
        if self._known and faces:
            overlap = box_iou(np.stack([known.box for known in self._known]), boxes)
            allowed = overlap >= MIN_BOX_IOU
            for k, known in enumerate(self._known):
                for j, mean in enumerate(means):
                    if known.canonical_mean is not None and mean is not None:
                        allowed[k, j] &= np.linalg.norm(known.canonical_mean - mean) <= MAX_CANONICAL_SHIFT
            rows, columns = linear_sum_assignment(np.where(allowed, -overlap, 1.0))
            for k, j in zip(rows, columns):
                if allowed[k, j]:
                    ids[j] = self._known[k].id
                    taken.add(k)
        kept = [known for k, known in enumerate(self._known) if k not in taken and known.missed < MAX_MISSED_FRAMES]
        for known in kept:
            known.missed += 1
        for j, face_id in enumerate(ids):
            if face_id == 0:
                ids[j], self._next_id = self._next_id, self._next_id + 1
        self._known = kept + [_KnownFace(face_id, boxes[j], means[j]) for j, face_id in enumerate(ids)]
        return ids


def _canonical_mean(face: FaceReconstruction) -> np.ndarray | None:
    """``(3,)`` mean canonical coordinate of the face's cloud points, or None without any."""
    canonical = face.cloud.canonical
    if canonical is None or not len(canonical):
        return None
    return np.nanmean(canonical, axis=0)
