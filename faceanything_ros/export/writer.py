"""Everything ``faceanything reconstruct`` writes for a sequence, in one place, off the caller's thread.

Layout of the output folder::

    depth/000000.png        16-bit depth, millimetres (0 = no face)
    maps/000000.npz         float maps of the faces' region (see export.depth.save_reconstruction_npz)
    canonical/000000.png    canonical map as colour
    clouds/000000.ply       point cloud every ``ply_every`` frames, every ``point_stride``-th pixel row and column
    side_by_side.mp4        input | depth | canonical | tracks
    tracks.npz              canonical tracks (see export.tracks.save_tracks)

``SequenceWriter.write_frame`` hands the frame to a writer thread through a bounded queue
(``queue_size`` frames), so encoding and disk time overlap the next frames' reconstruction, and a
caller faster than the disk waits instead of piling frames up in memory. An error of the writer
thread is raised by the next ``write_frame`` or by ``close``.
"""
from __future__ import annotations

import queue
import threading
from pathlib import Path

import cv2
import numpy as np

from ..reconstruction import Reconstruction
from ..tracking import Tracks, TrackState
from .colorize import colorize_canonical, colorize_depth, colorize_region
from .depth import depth_to_millimetres, save_millimetres_png, save_reconstruction_npz
from .ply import write_ply
from .tracks import save_tracks
from .video import SideBySideVideo, side_by_side

DEFAULT_QUEUE_SIZE = 8  # frames waiting for the writer thread at most


class SequenceWriter:
    """Writes per-frame files as frames arrive (on its own thread), and the sequence files on ``close``.

    The frame, reconstruction and track state handed to ``write_frame`` must not change afterwards
    (reconstructions are read-only; the tracker returns a new state per frame).
    """

    def __init__(self, out_dir: str | Path, fps: float, ply_every: int = 10, point_stride: int = 1,
                 queue_size: int = DEFAULT_QUEUE_SIZE):
        if ply_every < 0:
            raise ValueError(f"ply_every must be >= 0 (0 = no clouds), got {ply_every}")
        if point_stride < 1:
            raise ValueError(f"point_stride must be >= 1, got {point_stride}")
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        self.out_dir = Path(out_dir)
        self.ply_every = ply_every
        self.point_stride = point_stride
        for name in ("depth", "maps", "canonical") + (("clouds",) if ply_every else ()):
            (self.out_dir / name).mkdir(parents=True, exist_ok=True)
        self.video = SideBySideVideo(self.out_dir / "side_by_side.mp4", fps)
        self._queue: queue.Queue[tuple[np.ndarray, Reconstruction, TrackState | None] | None] = \
            queue.Queue(maxsize=queue_size)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="faceanything_writer", daemon=True)
        self._thread.start()

    def write_frame(self, frame: np.ndarray, reconstruction: Reconstruction, tracks: TrackState | None) -> None:
        """Queue one frame's depth PNG, maps, canonical PNG, cloud (every Nth) and video strip; waits while
        ``queue_size`` frames are queued. Raises the writer thread's error, if it had one."""
        self._raise_error()
        self._queue.put((frame, reconstruction, tracks))

    def close(self, tracks: Tracks | None) -> None:
        """Write the queued frames, finish the video and write ``tracks.npz`` when ``tracks`` is given."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self.video.close()
        self._raise_error()
        if tracks is not None:
            save_tracks(self.out_dir / "tracks.npz", tracks)

    def _raise_error(self) -> None:
        if self._error is not None:
            raise OSError(f"writing {self.out_dir} failed: {self._error}") from self._error

    def _run(self) -> None:
        """Writer thread: write queued frames until ``None``; after an error, keep draining without writing."""
        while (item := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._write(*item)
                except Exception as error:  # surfaced to the caller by write_frame / close
                    self._error = error

    def _write(self, frame: np.ndarray, reconstruction: Reconstruction, tracks: TrackState | None) -> None:
        """Write one frame's files; maps are converted and coloured in the faces' region only."""
        stem = f"{reconstruction.frame_index:06d}"
        save_millimetres_png(self.out_dir / "depth" / f"{stem}.png",
                             colorize_region(depth_to_millimetres, reconstruction, "depth"))
        save_reconstruction_npz(self.out_dir / "maps" / f"{stem}.npz", reconstruction)
        canonical = colorize_region(colorize_canonical, reconstruction, "canonical")
        if not cv2.imwrite(str(self.out_dir / "canonical" / f"{stem}.png"), cv2.cvtColor(canonical, cv2.COLOR_RGB2BGR)):
            raise OSError(f"could not write {self.out_dir / 'canonical' / stem}.png")
        if self.ply_every and reconstruction.frame_index % self.ply_every == 0 and reconstruction.found:
            write_ply(self.out_dir / "clouds" / f"{stem}.ply", reconstruction.point_cloud(self.point_stride))
        depth = colorize_region(colorize_depth, reconstruction, "depth")
        self.video.write(side_by_side(frame, depth, canonical, tracks))
