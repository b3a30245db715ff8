"""Frame sources: a video file, a folder of images or a single image, read as RGB frames.

``open_frames(path)`` picks the source from the path and returns a ``FrameSource``; iterating it
yields ``Frame(index, rgb, timestamp_s)`` with ``rgb`` a ``(H, W, 3)`` uint8 RGB array (OpenCV's
BGR converted). An image that does not decode raises ``ValueError`` naming the file (nothing is
skipped); a video that stops decoding before its declared length logs a warning and ends there.
"""
from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from faceanything_ros.io.validation import validate_rgb

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class Frame:
    """One decoded frame.

    ``index``: position in the source (0-based, counts skipped frames, so ``stride=2`` gives
    0, 2, 4, ...); ``rgb``: ``(H, W, 3)`` uint8 RGB; ``timestamp_s``: ``index / fps`` seconds
    from the first frame, or ``0.0`` when the source has no frame rate (``fps is None``).
    """

    index: int
    rgb: np.ndarray
    timestamp_s: float


class FrameSource:
    """Iterable, re-iterable sequence of ``Frame`` from one video, image folder or image.

    Attributes: ``name`` (file or folder name), ``kind`` (``"video"``, ``"folder"`` or
    ``"image"``), ``fps`` (frames per second of a video, the ``fps`` given to ``open_frames`` for
    images, else ``None``), ``len()`` (number of frames iteration yields after ``stride`` and
    ``max_frames``). For videos the count comes from the container (``CAP_PROP_FRAME_COUNT``,
    exact for the usual mp4/mkv files) and is not verified by decoding the whole file; if decoding
    ends early, iteration stops there and logs a warning. Use as a context manager (or call
    ``close``) to release an open video capture.
    """

    def __init__(
        self,
        path: Path,
        kind: str,
        image_files: list[Path],
        source_length: int,
        fps: float | None,
        max_frames: int | None,
        stride: int,
    ) -> None:
        self.path = path
        self.name = path.name
        self.kind = kind
        self.fps = fps
        self._image_files = image_files
        self._source_length = source_length
        self._max_frames = max_frames
        self._stride = stride
        self._capture: cv2.VideoCapture | None = None

    def __len__(self) -> int:
        count = math.ceil(self._source_length / self._stride)
        return count if self._max_frames is None else min(count, self._max_frames)

    def __iter__(self) -> Iterator[Frame]:
        indices = range(0, len(self) * self._stride, self._stride)
        if self.kind == "video":
            yield from self._iter_video(indices)
        else:
            for index in indices:
                yield self._frame(index, read_image(self._image_files[index]))

    def _iter_video(self, indices: range) -> Iterator[Frame]:
        self.close()
        self._capture = capture = cv2.VideoCapture(str(self.path))
        position = 0
        try:
            for index in indices:
                while position < index and capture.grab():
                    position += 1
                ok, bgr = capture.read() if position == index else (False, None)
                if not ok:
                    _LOG.warning("%s: decoding stopped at frame %d of %d declared", self.path, index, self._source_length)
                    return
                position += 1
                yield self._frame(index, validate_rgb(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), name=f"{self.path} frame {index}"))
        finally:
            self.close()

    def _frame(self, index: int, rgb: np.ndarray) -> Frame:
        return Frame(index=index, rgb=rgb, timestamp_s=index / self.fps if self.fps else 0.0)

    def close(self) -> None:
        """Release the video capture, if one is open (safe to call repeatedly)."""
        if self._capture is not None:
            self._capture.release()
            self._capture = None

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FrameSource(kind={self.kind!r}, name={self.name!r}, frames={len(self)}, fps={self.fps})"


def open_frames(
    path: str | Path, max_frames: int | None = None, stride: int = 1, fps: float | None = None
) -> FrameSource:
    """Open a video file, an image folder or a single image as a ``FrameSource``.

    ``path``: a video (``VIDEO_EXTENSIONS``), a folder (its ``IMAGE_EXTENSIONS`` files in natural
    name order, so ``f2.png`` precedes ``f10.png``; other files are ignored) or an image.
    ``max_frames``: yield at most this many frames (``None``: all). ``stride``: keep every
    ``stride``-th frame. ``fps``: frame rate of an image folder/image (sets ``timestamp_s``);
    a video's rate always comes from the file, so passing ``fps`` with a video is an error.

    Raises ``FileNotFoundError`` for a missing path and ``ValueError`` naming the file for an
    unsupported extension, a folder without images, or a video or single image that cannot be
    opened or decoded. A folder's images are decoded during iteration; one that fails raises
    ``ValueError`` naming it (it is never skipped).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"frame source not found: {path}")
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be >= 1 or None, got {max_frames}")
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number or None, got {fps}")
    suffix = path.suffix.lower()
    if path.is_dir():
        files = sorted(
            (p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS),
            key=_natural_key,
        )
        if not files:
            raise ValueError(f"folder {path} contains no images; expected files ending in {', '.join(IMAGE_EXTENSIONS)}")
        return FrameSource(path, "folder", files, len(files), fps, max_frames, stride)
    if suffix in IMAGE_EXTENSIONS:
        read_image(path)
        return FrameSource(path, "image", [path], 1, fps, max_frames, stride)
    if suffix in VIDEO_EXTENSIONS:
        if fps is not None:
            raise ValueError(f"fps={fps} given for video {path}; a video's frame rate is read from the file")
        length, video_fps = _probe_video(path)
        return FrameSource(path, "video", [], length, video_fps, max_frames, stride)
    raise ValueError(
        f"unsupported file type {path.suffix!r} for {path}; expected a folder, a video "
        f"({', '.join(VIDEO_EXTENSIONS)}) or an image ({', '.join(IMAGE_EXTENSIONS)})"
    )


def read_image(path: str | Path) -> np.ndarray:
    """Decode one image file into a ``(H, W, 3)`` uint8 RGB array (alpha dropped, EXIF-rotated).

    Raises ``FileNotFoundError`` if it is missing and ``ValueError`` naming it if it cannot be
    decoded or fails ``validate_rgb`` (e.g. too small).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot decode image {path} (corrupt or not an image)")
    return validate_rgb(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), name=str(path))


def _probe_video(path: Path) -> tuple[int, float]:
    """Declared frame count and fps of a video, after checking that its first frame decodes."""
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise ValueError(f"cannot open video {path} (corrupt, empty or unsupported codec)")
        length = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = float(capture.get(cv2.CAP_PROP_FPS))
        ok, _ = capture.read()
        if not ok or length <= 0:
            raise ValueError(f"video {path} has no decodable frames (declared frame count {length})")
        if not (math.isfinite(fps) and fps > 0):
            raise ValueError(f"video {path} declares an invalid frame rate {fps}")
        return length, fps
    finally:
        capture.release()


def _natural_key(path: Path) -> list[int | str]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]
