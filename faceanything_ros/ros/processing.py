"""One frame in, depth/canonical/cloud/tracks out: the work the ROS node and bag-eval share.

What ``faceanything bag-eval`` measures offline is exactly what the node runs on the robot,
because both call ``FrameProcessor.process`` once per image. ROS-free.

Streaming windows: with ``NodeConfig.window = T > 1`` each call runs the model on the last
``T - 1`` processed frames (context) plus the new one, jointly, and keeps only the new frame's
result; the context restarts when the image size changes. ``T = 1`` runs frame by frame.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from faceanything_ros.config import NodeConfig
from faceanything_ros.io.face_detector import FaceBox
from faceanything_ros.model.bundled import checkpoint_or_bundled
from faceanything_ros.predictor import Predictor
from faceanything_ros.reconstruction import Reconstruction
from faceanything_ros.tracking import MultiFaceTracker, TrackingFrame
from faceanything_ros.tracking.tracks import TrackState


@dataclass
class ProcessedFrame:
    """The results of one image, stamped like the image.

    stamp_ns: the input's stamp, integer nanoseconds. frame_id: the input's optical frame.
    reconstruction: depth (H, W) metres, canonical (H, W, 3), cloud, ... of the image.
    tracks: every current track of every face in this image (``TrackState``, ``Q`` tracks; ``face`` says whose).
    latency_s: seconds ``process`` took.
    """

    stamp_ns: int
    frame_id: str
    reconstruction: Reconstruction
    tracks: TrackState
    latency_s: float

    @property
    def intrinsics(self) -> np.ndarray:
        """(3, 3) float64 K used, pixels: the given one, else the one solved from the predicted rays."""
        return self.reconstruction.intrinsics

    @property
    def intrinsics_estimated(self) -> bool:
        """True when no K was given (it was solved from the predicted rays)."""
        return self.reconstruction.intrinsics_source != "given"


class FrameProcessor:
    """Builds the predictor (model, engine, device) and the per-face canonical tracker once; ``process`` per image.

    Each face gets its tracks when it first appears (``MultiFaceTracker``). Re-seeding
    (``NodeConfig.reseed``) replaces only lost pixel-query tracks, never every id at once
    (canonical template tracks are never replaced: they are found again when their point
    reappears): ``never`` keeps them, ``on_loss`` replaces the tracks that were invisible on the
    previous frame when fewer than ``reseed_min_visible`` of all tracks were visible there,
    ``every_n`` does so every ``reseed_every_n`` processed frames; the new tracks, seeded on the
    previous frame's faces, are reported from this frame on. Raises ``FileNotFoundError`` (no model)
    or ``ValueError`` (e.g. ``EngineUnavailableError``: the engine cannot run on this machine).
    """

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.predictor = Predictor(checkpoint_or_bundled(config.model), device=config.device,
                                   config=config.predictor_config(), engine=config.engine)
        self.tracker = MultiFaceTracker(config.tracker_config(), device=config.device)
        # the window's earlier frames with the faces found in them (detected once, when they were new)
        self._context: deque[tuple[np.ndarray, list[FaceBox]]] = deque(maxlen=config.window - 1)
        self._frames_processed = 0
        self._frames_since_seed = 0
        self._visible_fraction = 1.0

    def close(self) -> None:
        """Release the predictor (face detector); the processor cannot be used afterwards."""
        self.predictor.close()

    def __enter__(self) -> "FrameProcessor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def process(self, rgb: np.ndarray, stamp_ns: int, frame_id: str,
                intrinsics: np.ndarray | None = None) -> ProcessedFrame:
        """Reconstruct and track one ``(H, W, 3)`` uint8 RGB image.

        intrinsics: ``(3, 3)`` K in pixels (e.g. from CameraInfo), used for the whole window; None
        solves K from the predicted rays. Raises ``ValueError``/``TypeError`` for an invalid image
        or K (nothing is changed then).
        """
        start = time.perf_counter()
        if self._context and self._context[-1][0].shape != np.shape(rgb):
            self._context.clear()
        window = [frame for frame, _ in self._context] + [rgb]
        first = self._frames_processed - len(self._context)
        (reconstruction,) = self.predictor.predict(
            window, intrinsics, range(first, first + len(window)), context_frames=len(self._context),
            detections=[faces for _, faces in self._context] + [None])
        self._context.append((rgb, [face.face for face in reconstruction.faces]))  # a no-op for window 1 (maxlen 0)
        self._frames_processed += 1
        tracks = self._track(reconstruction.tracking_frames())
        return ProcessedFrame(
            stamp_ns=int(stamp_ns), frame_id=str(frame_id), reconstruction=reconstruction, tracks=tracks,
            latency_s=time.perf_counter() - start,
        )

    def _track(self, frames: list[TrackingFrame]) -> TrackState:
        """Replace lost tracks first when the policy says so, then step the tracker on the image's ``frames``."""
        due = self.config.reseed == "every_n" and self._frames_since_seed >= self.config.reseed_every_n
        lost = self.config.reseed == "on_loss" and self._visible_fraction < self.config.reseed_min_visible
        if due or lost:
            self.tracker.replace_lost()
            self._frames_since_seed = 0
        state = self.tracker.step(frames)
        self._frames_since_seed += 1
        self._visible_fraction = float(state.visible.mean()) if len(state) else 1.0
        return state
