"""The side-by-side MP4: input | depth | canonical | tracks overlay."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..tracking import TrackState
from .colorize import draw_tracks

PANEL_HEIGHT = 360  # pixels; every panel is resized to this height to keep files small
TRACK_RADIUS = 2  # pixels of a track's dot on the panel


def side_by_side(frame: np.ndarray, depth_rgb: np.ndarray, canonical_rgb: np.ndarray,
                 tracks: TrackState | None) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB frame -> ``(PANEL_HEIGHT, 4 * w, 3)`` uint8 RGB panel strip.

    depth_rgb, canonical_rgb: ``(H, W, 3)`` uint8 ``colorize_depth`` / ``colorize_canonical`` of the
    frame's maps (coloured by the caller, which writes the canonical one to a PNG too). Tracks are
    drawn on the resized input panel, at their pixels mapped to it.
    """
    height, width = frame.shape[:2]
    size = (int(round(width * PANEL_HEIGHT / height)) // 2 * 2, PANEL_HEIGHT)
    # area averaging where a panel pixel covers 2 or more image pixels across, linear (cheaper) otherwise
    interpolation = cv2.INTER_AREA if PANEL_HEIGHT * 2 <= height else cv2.INTER_LINEAR
    panels = [cv2.resize(p, size, interpolation=interpolation) for p in (frame, depth_rgb, canonical_rgb)]
    overlay = panels[0]
    if tracks is not None:  # pixel centres map as cv2.resize maps them: (x + 0.5) * scale - 0.5
        scale = np.array([size[0] / width, size[1] / height])
        overlay = draw_tracks(overlay, tracks.ids, (tracks.pixels + 0.5) * scale - 0.5, tracks.visible,
                              radius=TRACK_RADIUS)
    return np.concatenate([*panels, overlay], axis=1)


class SideBySideVideo:
    """Writes ``side_by_side`` strips to an MP4 (mp4v), opened at the first frame."""

    def __init__(self, path: str | Path, fps: float):
        self.path = Path(path)
        self.fps = fps if fps and fps > 0 else 10.0
        self._writer: cv2.VideoWriter | None = None

    def write(self, strip: np.ndarray) -> None:
        """Append one ``(h, w, 3)`` uint8 RGB strip (all strips of one video share a size)."""
        if self._writer is None:
            height, width = strip.shape[:2]
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (width, height))
            if not self._writer.isOpened():
                raise OSError(f"could not open video writer for {self.path}")
        self._writer.write(cv2.cvtColor(strip, cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        """Finish the file."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
