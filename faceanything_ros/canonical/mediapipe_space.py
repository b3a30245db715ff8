"""The shipped canonical space: mediapipe's 478-point face mesh on a mean metric face (``data/facemesh478_v1.npz``).

The file is written by ``training/canonical_template.py`` (mean of many FaceMesh detections,
similarity-Procrustes aligned, scaled to a 63 mm mean inter-pupil distance) and holds:
``triangles`` (852, 3) int32 (``canonical.topology``; the 10 iris points have none),
``template`` (478, 3) float64 metres, template frame (x towards the subject's left = image right
in a frontal view, y down, z from the face into the head, origin at the template's mean point),
``center`` (3,) float64 metres and ``mm_per_unit`` float (normalisation: the centre of the
template's bounding box and half its largest side, so the template spans ``[-1, 1]`` on that
axis), ``id`` and ``version`` strings, and the provenance ``num_faces`` / ``sources_sha256``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from faceanything_ros.canonical.space import MEDIAPIPE_SPACE_ID, CanonicalSpace
from faceanything_ros.io.face_mesh import NUM_LANDMARKS

SPACE_VERSION = "1"
TEMPLATE_FILE = Path(__file__).parent / "data" / f"facemesh478_v{SPACE_VERSION}.npz"
IRIS_CENTERS = (468, 473)  # iris centre landmarks (refine_landmarks=True) of the two eyes
NOSE_TIP = 1  # landmark at the tip of the nose
INTER_PUPIL_DISTANCE_M = 0.063  # metric scale of the template: mean adult inter-pupil distance


class MediaPipeFaceSpace(CanonicalSpace):
    """``CanonicalSpace`` of the 478-landmark mediapipe face mesh, loaded from ``path`` (the shipped file by default)."""

    def __init__(self, path: str | Path = TEMPLATE_FILE) -> None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"canonical space file not found: {path}")
        with np.load(path) as data:
            self.id = str(data["id"])
            self.version = str(data["version"])
            self.topology = data["triangles"].astype(np.int32)
            self.template = data["template"].astype(np.float64)
            self.center = data["center"].astype(np.float64)
            self.mm_per_unit = float(data["mm_per_unit"])
            self.num_faces = int(data["num_faces"])
            self.sources_sha256 = str(data["sources_sha256"])
        if self.id != MEDIAPIPE_SPACE_ID or self.template.shape != (NUM_LANDMARKS, 3) or self.topology.ndim != 2:
            raise ValueError(f"{path} is not a {MEDIAPIPE_SPACE_ID} space file (id {self.id!r}, "
                             f"template {self.template.shape}, triangles {self.topology.shape})")


def normalisation(template: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre ``(3,)`` metres and ``mm_per_unit`` mapping ``(V, 3)`` metric ``template`` into ``[-1, 1]^3``.

    The centre is the bounding-box centre and one unit is half the largest bounding-box side, so
    the normalised template touches +-1 on its largest axis.
    """
    low, high = template.min(axis=0), template.max(axis=0)
    return (low + high) / 2.0, float((high - low).max() / 2.0 * 1000.0)


def save_space_file(path: str | Path, template: np.ndarray, triangles: np.ndarray, num_faces: int,
                    sources_sha256: str) -> None:
    """Write a space file (format in the module docstring) for a ``(478, 3)`` metric template."""
    center, mm_per_unit = normalisation(template)
    np.savez_compressed(Path(path), id=np.array(MEDIAPIPE_SPACE_ID), version=np.array(SPACE_VERSION),
                        triangles=triangles.astype(np.int32), template=template.astype(np.float64), center=center,
                        mm_per_unit=np.float64(mm_per_unit), num_faces=np.int64(num_faces),
                        sources_sha256=np.array(sources_sha256))
