"""478 face-mesh landmarks with mediapipe's bundled legacy ``solutions.face_mesh`` (refined landmarks).

Pixel convention of ``geometry.camera`` (pixel centres at integer ``(u, v)``). mediapipe gives
each landmark a relative ``x, y`` in ``[0, 1]`` of the image width/height (0 = left/top image
edge) and a depth ``z`` relative to the face centre "at roughly the same scale as x" (a fraction
of the image width, smaller = nearer the camera). ``FaceLandmarks`` holds them in pixels:
``u = x * W - 0.5``, ``v = y * H - 0.5`` and ``relative_depth_px = z * W``.

Like ``FaceDetector``, a frame in which FaceMesh finds no face is retried once inside a
replicated border of ``PADDED_RETRY_FRACTION`` of its longer side (tight face crops are missed by
FaceMesh's internal short-range detector otherwise), and the landmarks are mapped back.

Two modes, as mediapipe's: image mode (``tracking=False``) detects the face in every image, for
unrelated images; tracking mode (``tracking=True``, a video stream) detects only when no face is
tracked and otherwise takes the region of the previous frame's landmarks, re-detecting as soon
as the landmarks lose the face (mediapipe's ``min_tracking_confidence``). The padded retry then
runs on a separate image-mode graph, so the padded image never enters the tracked stream.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from faceanything_ros.io.face_detector import import_mediapipe_solution
from faceanything_ros.io.validation import validate_rgb
from faceanything_ros.stages import timed

NUM_LANDMARKS = 478  # 468 surface points + 10 iris points (refine_landmarks=True)
PADDED_RETRY_FRACTION = 0.5  # border per side / longer image side for the retry when nothing is found


@dataclass(frozen=True)
class FaceLandmarks:
    """One face's mesh landmarks in image pixels.

    ``pixels``: (478, 2) float64 ``(u, v)``; ``relative_depth_px``: (478,) float64 depth of each
    landmark relative to the face centre, in pixels of the same scale as ``u`` (positive = farther
    from the camera). Landmarks may lie outside the image for a face cut by the border.
    """

    pixels: np.ndarray
    relative_depth_px: np.ndarray

    @property
    def area(self) -> float:
        """Area of the landmarks' bounding box, square pixels (used to rank faces)."""
        extent = self.pixels.max(axis=0) - self.pixels.min(axis=0)
        return float(extent[0] * extent[1])


class FaceMesh:
    """mediapipe FaceMesh (``refine_landmarks=True``) on RGB images, in image or tracking mode (module docstring).

    ``min_confidence`` is the detection score threshold and, in tracking mode, the landmark
    confidence below which the face counts as lost. Not thread-safe; release with ``close()`` or a
    ``with`` block.
    """

    def __init__(self, max_faces: int = 1, min_confidence: float = 0.5, tracking: bool = False) -> None:
        if max_faces < 1:
            raise ValueError(f"max_faces must be >= 1, got {max_faces}")
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence}")
        self.max_faces = max_faces
        self.min_confidence = min_confidence
        self.tracking = tracking
        self._mesh: Any = self._graph(static_image_mode=not tracking)
        self._image_mode_mesh: Any = None if tracking else self._mesh  # the padded retry's graph, made when needed

    @timed("mesh")
    def landmarks(self, rgb: np.ndarray) -> list[FaceLandmarks]:
        """Faces in one ``(H, W, 3)`` uint8 RGB image, largest landmark box first; ``[]`` when there is none."""
        if self._mesh is None:
            raise RuntimeError("FaceMesh.landmarks called after close()")
        rgb = validate_rgb(rgb)
        faces = self._process(self._mesh, rgb, 0)
        if not faces:
            if self._image_mode_mesh is None:
                self._image_mode_mesh = self._graph(static_image_mode=True)
            pad = round(PADDED_RETRY_FRACTION * max(rgb.shape[:2]))
            faces = self._process(self._image_mode_mesh,
                                  cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REPLICATE), pad)
        return sorted(faces, key=lambda face: face.area, reverse=True)[: self.max_faces]

    def _graph(self, static_image_mode: bool) -> Any:
        """A mediapipe FaceMesh graph with this object's settings."""
        face_mesh = import_mediapipe_solution("face_mesh", "the face mesh")
        return face_mesh.FaceMesh(static_image_mode=static_image_mode, max_num_faces=self.max_faces,
                                  refine_landmarks=True, min_detection_confidence=self.min_confidence,
                                  min_tracking_confidence=self.min_confidence)

    @staticmethod
    def _process(graph: Any, image: np.ndarray, pad: int) -> list[FaceLandmarks]:
        """Landmarks that ``graph`` finds in ``image`` (the input padded by ``pad`` px per side), in input pixels."""
        result = graph.process(np.ascontiguousarray(image))
        height, width = image.shape[:2]
        faces = []
        for face in result.multi_face_landmarks or []:
            xyz = np.array([[p.x, p.y, p.z] for p in face.landmark], dtype=np.float64)
            if len(xyz) != NUM_LANDMARKS:
                raise RuntimeError(f"mediapipe FaceMesh returned {len(xyz)} landmarks, expected {NUM_LANDMARKS}")
            pixels = xyz[:, :2] * [width, height] - 0.5 - pad
            faces.append(FaceLandmarks(pixels=pixels, relative_depth_px=xyz[:, 2] * width))
        return faces

    def reset(self) -> None:
        """Forget the tracked faces: the next image is a new stream's first (tracking mode)."""
        if self._mesh is not None:
            self._mesh.reset()

    def close(self) -> None:
        """Release the mediapipe graph (safe to call repeatedly)."""
        for graph in {id(g): g for g in (self._mesh, self._image_mode_mesh) if g is not None}.values():
            graph.close()
        self._mesh = self._image_mode_mesh = None

    def __enter__(self) -> "FaceMesh":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
