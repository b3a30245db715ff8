"""Everything ``faceanything reconstruct`` writes for a sequence, in one place.

Layout of the output folder::

    depth/000000.png        16-bit depth, millimetres (0 = no face)
    maps/000000.npz         float maps (see export.depth.save_reconstruction_npz)
    canonical/000000.png    canonical map as colour
    clouds/000000.ply       point cloud every ``ply_every`` frames
    side_by_side.mp4        input | depth | canonical | tracks
    tracks.npz              canonical tracks (see export.tracks.save_tracks)
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..reconstruction import Reconstruction
from ..tracking import Tracks, TrackState
from .colorize import colorize_canonical
from .depth import save_depth_png, save_reconstruction_npz
from .ply import write_ply
from .tracks import save_tracks
from .video import SideBySideVideo, side_by_side


class SequenceWriter:
    """Writes per-frame files as frames arrive, and the sequence files on ``close``."""

    def __init__(self, out_dir: str | Path, fps: float, ply_every: int = 10):
        if ply_every < 0:
            raise ValueError(f"ply_every must be >= 0 (0 = no clouds), got {ply_every}")
        self.out_dir = Path(out_dir)
        self.ply_every = ply_every
        for name in ("depth", "maps", "canonical") + (("clouds",) if ply_every else ()):
            (self.out_dir / name).mkdir(parents=True, exist_ok=True)
        self.video = SideBySideVideo(self.out_dir / "side_by_side.mp4", fps)

    def write_frame(self, frame: np.ndarray, reconstruction: Reconstruction, tracks: TrackState | None) -> None:
        """Write one frame's depth PNG, maps, canonical PNG, cloud (every Nth) and video strip."""
        stem = f"{reconstruction.frame_index:06d}"
        save_depth_png(self.out_dir / "depth" / f"{stem}.png", reconstruction.depth)
        save_reconstruction_npz(self.out_dir / "maps" / f"{stem}.npz", reconstruction)
        canonical = colorize_canonical(reconstruction.canonical)
        if not cv2.imwrite(str(self.out_dir / "canonical" / f"{stem}.png"), canonical[:, :, ::-1]):
            raise OSError(f"could not write {self.out_dir / 'canonical' / stem}.png")
        if self.ply_every and reconstruction.frame_index % self.ply_every == 0 and reconstruction.found:
            write_ply(self.out_dir / "clouds" / f"{stem}.ply", reconstruction.cloud)
        self.video.write(side_by_side(frame, reconstruction, tracks, canonical))

    def close(self, tracks: Tracks | None) -> None:
        """Finish the video and write ``tracks.npz`` when ``tracks`` is given (any frame was processed)."""
        self.video.close()
        if tracks is not None:
            save_tracks(self.out_dir / "tracks.npz", tracks)
