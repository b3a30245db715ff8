"""Scoring a method on real videos without ground truth: agreement with the face mesh, jitter, speed.

Every face-mesh landmark has a canonical coordinate (the canonical template's vertex), so a
method's canonical map locates each landmark in a frame (``locate_canonical_points``): a dense
track per landmark. Agreement is the normalised mean error (NME) of those tracks against the face
mesh's own landmarks, as a percentage of the inter-ocular (iris-centre) distance; jitter is the
median second difference of the tracks over consecutive frames (pixels); mask agreement is the
IoU of the method's face mask with the face mesh's rendered face surface (spill onto hair, neck
or background lowers it); speed is the method's frames per second (reconstruction only). The face-mesh method is scored by the same code.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from faceanything_ros.canonical.mediapipe_space import IRIS_CENTERS
from faceanything_ros.eval.tracking import locate_canonical_points


@dataclass
class VideoScore:
    """Per-frame figures of one method on one video (NaN where a frame has no face)."""

    nme_pct: list[float] = field(default_factory=list)  # mean landmark error / inter-ocular distance, %
    mask_iou: list[float] = field(default_factory=list)  # face mask IoU with the face mesh's surface
    tracks: list[np.ndarray] = field(default_factory=list)  # (478, 2) landmark-track pixels per frame
    seconds: float = 0.0  # time spent reconstructing
    frames: int = 0
    faces: int = 0  # frames where the method returned a face

    def summary(self) -> dict[str, float]:
        """``nme_median_pct``, ``mask_iou_median``, ``jitter_px``, ``face_rate``, ``fps`` and ``frames``."""
        tracks = np.stack(self.tracks) if self.tracks else np.zeros((0, 0, 2))
        second = np.linalg.norm(tracks[2:] - 2 * tracks[1:-1] + tracks[:-2], axis=-1) if len(tracks) > 2 else np.zeros(0)
        second = second[np.isfinite(second)]
        return {
            "nme_median_pct": _nan_median(self.nme_pct),
            "mask_iou_median": _nan_median(self.mask_iou),
            "jitter_px": float(np.median(second)) if second.size else float("nan"),
            "face_rate": self.faces / max(self.frames, 1),
            "fps": self.frames / max(self.seconds, 1e-9),
            "frames": float(self.frames),
        }


def score_frame(score: VideoScore, reconstruction, label, template: np.ndarray) -> None:
    """Add one frame: the method's ``Reconstruction``, the face mesh's ``MeshLabel`` of the same face
    (None when the face mesh found none; the frame then has no NME and no mask agreement) and the
    ``(478, 3)`` canonical template."""
    score.frames += 1
    score.faces += bool(reconstruction.found)
    if reconstruction.found:
        canonical = np.nan_to_num(reconstruction.canonical)
        pixels, _ = locate_canonical_points(canonical, reconstruction.mask, template)
    else:
        pixels = np.full((len(template), 2), np.nan)
    score.tracks.append(pixels)
    if label is None:
        score.nme_pct.append(float("nan"))
        score.mask_iou.append(float("nan"))
        return
    landmarks_px = label.landmarks_px
    inter_ocular = float(np.linalg.norm(landmarks_px[IRIS_CENTERS[0]] - landmarks_px[IRIS_CENTERS[1]]))
    error = np.linalg.norm(pixels - landmarks_px, axis=-1)
    score.nme_pct.append(float(100.0 * np.mean(error) / inter_ocular) if np.isfinite(error).all() else float("nan"))
    surface = label.render(*reconstruction.mask.shape).mask
    union = np.count_nonzero(surface | reconstruction.mask)
    score.mask_iou.append(np.count_nonzero(surface & reconstruction.mask) / union if union else float("nan"))


def timed(score: VideoScore, predict, *args):
    """``predict(*args)``, its duration added to ``score.seconds``."""
    started = time.perf_counter()
    result = predict(*args)
    score.seconds += time.perf_counter() - started
    return result


def _nan_median(values: list[float]) -> float:
    """Median of the finite ``values``; NaN when there is none."""
    array = np.asarray(values, dtype=np.float64)
    return float(np.nanmedian(array)) if np.isfinite(array).any() else float("nan")
