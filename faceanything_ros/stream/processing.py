"""One frame in; depth, canonical map, faces with ids and head poses, tracks out: the work the node and bag-eval share.

What ``faceanything bag-eval`` measures offline is exactly what the node runs on the robot,
because both call ``FrameProcessor.process`` once per image. ROS-free.

Streaming windows (the model only): with ``NodeConfig.window = T > 1`` each call runs the model
on the last ``T - 1`` processed frames (context) plus the new one, jointly, and keeps only the
new frame's result. ``T = 1`` runs frame by frame; the face-mesh method always does. The stream's
context (window, tracks, face ids) restarts when the frame_id or the image size changes.

``process`` = ``track(reconstruct(...))``: the two halves touch disjoint state (the reconstructor
and its window; the tracker, face ids and re-seeding), so the node runs them on two threads, in
frame order, one frame apart (``stream.worker``). Each half restarts its own context when the
stream (frame_id, image size) of its frame differs from its previous frame's, so a frame that
fails or is dropped between the halves cannot hide a camera change from the tracker.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from faceanything_ros.canonical.space import CanonicalSpace, load_canonical_space
from faceanything_ros.config import NodeConfig
from faceanything_ros.io.face_detector import FaceBox
from faceanything_ros.reconstruction import Reconstruction
from faceanything_ros.stages import STAGE_TIMES
from faceanything_ros.stream.head_pose import HeadPose, face_head_pose
from faceanything_ros.stream.method import choose_method, create_reconstructor
from faceanything_ros.tracking import MultiFaceTracker, TrackingFrame
from faceanything_ros.tracking.tracks import TrackState

WARM_UP_SIZE = (480, 640)  # (H, W) pixels of the blank warm-up frame


@dataclass
class FaceResult:
    """One face of a processed frame: stream-wide ``id`` (>= 1), ``box`` (detection, pixels),
    ``score`` in [0, 1], head ``pose`` (None when too few face points) and ``num_pixels`` (mask)."""

    id: int
    box: FaceBox
    score: float
    pose: HeadPose | None
    num_pixels: int


@dataclass
class ProcessedFrame:
    """The results of one image, stamped like the image.

    stamp_ns: the input's stamp, integer nanoseconds. frame_id: the input's optical frame.
    reconstruction: depth (H, W) metres, canonical (H, W, 3), cloud, ... of the image.
    faces: one ``FaceResult`` per reconstructed face, in ``reconstruction.faces`` order.
    tracks: every current track in this image (``TrackState``, ``Q`` tracks).
    track_face_ids: ``(Q,)`` uint32 id of the face each track belongs to (``faces``' ids).
    canonical_space: id of the canonical space of the canonical coordinates.
    camera_info: the CameraInfo message whose K was given (duck-typed), or None.
    latency_s: seconds from the start of ``reconstruct`` to the end of ``track`` (``process``).
    """

    stamp_ns: int
    frame_id: str
    reconstruction: Reconstruction
    faces: list[FaceResult]
    tracks: TrackState
    track_face_ids: np.ndarray
    canonical_space: str
    camera_info: Any | None
    latency_s: float

    @property
    def intrinsics(self) -> np.ndarray:
        """(3, 3) float64 K used, pixels: the given one, else the estimated one."""
        return self.reconstruction.intrinsics

    @property
    def intrinsics_estimated(self) -> bool:
        """True when no K was given (it was estimated)."""
        return self.reconstruction.intrinsics_source != "given"


@dataclass
class ReconstructedFrame:
    """The first half of a processed frame (``FrameProcessor.reconstruct``), for ``FrameProcessor.track``.

    stamp_ns, frame_id, reconstruction, camera_info: as in ``ProcessedFrame``.
    stream: ``(frame_id, image shape)``: tracks and face ids start over when it changes.
    started_s: ``time.perf_counter()`` when its processing began.
    """

    stamp_ns: int
    frame_id: str
    reconstruction: Reconstruction
    camera_info: Any | None
    stream: tuple[str, tuple[int, ...]]
    started_s: float


class FrameProcessor:
    """Builds the reconstructor (``stream.method``) and the canonical tracker once; ``process`` per image.

    Each face gets its tracks when it first appears (``MultiFaceTracker``). Re-seeding
    (``NodeConfig.reseed``) replaces only lost pixel-query tracks, never every id at once
    (canonical template tracks are never replaced: they are found again when their point
    reappears): ``never`` keeps them, ``on_loss`` replaces the tracks that were invisible on the
    previous frame when fewer than ``reseed_min_visible`` of all tracks were visible there,
    ``every_n`` does so every ``reseed_every_n`` processed frames. ``cpu_threads`` > 0 sets torch's
    intra-op threads for the whole process (the ONNX Runtime sessions built after it take as many).
    Raises ``FileNotFoundError`` (method model without a model) or ``ValueError``
    (e.g. ``EngineUnavailableError``: the engine cannot run on this machine).
    """

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        if config.cpu_threads:  # process-wide, before the engine is built (ONNX Runtime takes the same number)
            torch.set_num_threads(config.cpu_threads)
        self.method = choose_method(config.method, config.model)
        self.reconstructor = create_reconstructor(self.method, config)
        self.space: CanonicalSpace = load_canonical_space()
        self.tracker = MultiFaceTracker(config.tracker_config(), device=config.device)
        # the window's earlier frames with the faces found in them (detected once, when they were new)
        context = config.window - 1 if self.method.method == "model" else 0
        self._context: deque[tuple[np.ndarray, list[FaceBox]]] = deque(maxlen=context)
        self._stream: tuple[str, tuple[int, ...]] | None = None  # (frame_id, image shape) of the context
        self._tracked_stream: tuple[str, tuple[int, ...]] | None = None  # ... of the tracks
        self._frames_processed = 0
        self._frames_since_seed = 0
        self._visible_fraction = 1.0

    @property
    def engine(self) -> str:
        """The engine running the model, e.g. ``"onnx on cpu, fp32, 224 px input"``; ``"none"`` for the face-mesh method."""
        return "none" if self.method.method == "mesh" else self.reconstructor.engine.describe()

    def describe(self) -> str:
        """One line for logs: the method (and why), and the engine of the model."""
        return self.method.reason if self.method.method == "mesh" else f"{self.method.reason}, engine {self.engine}"

    def warm_up(self) -> None:
        """Do every slow first-time step now: each engine shape the stream needs (window lengths
        1 .. ``window`` of square model inputs) and one whole reconstruction of a blank frame."""
        if self.method.method == "model":
            side = self.reconstructor.input_size
            for length in range(1, self.config.window + 1):
                self.reconstructor.infer_crops(np.zeros((length, side, side, 3), np.uint8))
        self.reconstructor.predict(np.full((*WARM_UP_SIZE, 3), 128, np.uint8))

    def reset(self) -> None:
        """Restart the stream's context: window, tracks and face ids (ids are never reused)."""
        self._reset_reconstruction()
        self._reset_tracking()

    def _reset_reconstruction(self) -> None:
        self._context.clear()
        self.reconstructor.reset()
        self._stream = None

    def _reset_tracking(self) -> None:
        self._tracked_stream = None
        self.tracker.reset()
        self._frames_since_seed = 0
        self._visible_fraction = 1.0

    def close(self) -> None:
        """Release the reconstructor (face detector / face mesh); the processor cannot be used afterwards."""
        self.reconstructor.close()

    def __enter__(self) -> "FrameProcessor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def process(self, rgb: np.ndarray, stamp_ns: int, frame_id: str, intrinsics: np.ndarray | None = None,
                camera_info: Any | None = None) -> ProcessedFrame:
        """Reconstruct and track one ``(H, W, 3)`` uint8 RGB image of camera ``frame_id``.

        intrinsics: ``(3, 3)`` K in pixels (e.g. from ``camera_info``, kept in the result), used for
        the whole window; None estimates K. An image of another frame_id or size restarts the
        context first. Raises ``ValueError``/``TypeError`` for an invalid image or K.
        """
        return self.track(self.reconstruct(rgb, stamp_ns, frame_id, intrinsics, camera_info))

    def reconstruct(self, rgb: np.ndarray, stamp_ns: int, frame_id: str, intrinsics: np.ndarray | None = None,
                    camera_info: Any | None = None) -> ReconstructedFrame:
        """The first half of ``process``: the image's reconstruction (arguments as there)."""
        start = time.perf_counter()
        stream = (str(frame_id), np.shape(rgb))
        if self._stream is not None and stream != self._stream:
            self._reset_reconstruction()
        with STAGE_TIMES.stage("reconstruct"):
            reconstruction = self._reconstruct(rgb, intrinsics, str(frame_id))
        self._stream = stream
        self._frames_processed += 1
        return ReconstructedFrame(int(stamp_ns), str(frame_id), reconstruction,
                                  camera_info if intrinsics is not None else None, stream, start)

    def track(self, frame: ReconstructedFrame) -> ProcessedFrame:
        """The second half of ``process``: tracks, face ids and head poses of a reconstructed frame
        (the frames of a stream in order)."""
        if self._tracked_stream is not None and frame.stream != self._tracked_stream:
            self._reset_tracking()
        self._tracked_stream = frame.stream
        reconstruction = frame.reconstruction
        with STAGE_TIMES.stage("tracking"):
            tracks = self._track(reconstruction.tracking_frames())
        # message ids count from 1 (0 = no face); the tracker's face ids count from 0
        ids = [0 if face_id is None else face_id + 1 for face_id in self.tracker.frame_faces]
        with STAGE_TIMES.stage("head_pose"):
            faces = [FaceResult(face_id, face.face, float(face.face.score), face_head_pose(face, self.space),
                                face.num_pixels) for face_id, face in zip(ids, reconstruction.faces)]
        return ProcessedFrame(
            stamp_ns=frame.stamp_ns, frame_id=frame.frame_id, reconstruction=reconstruction, faces=faces,
            tracks=tracks, track_face_ids=(tracks.face + 1).astype(np.uint32),
            canonical_space=self.space.id, camera_info=frame.camera_info,
            latency_s=time.perf_counter() - frame.started_s,
        )

    def _reconstruct(self, rgb: np.ndarray, intrinsics: np.ndarray | None, camera_id: str) -> Reconstruction:
        """The new frame's reconstruction, with the window's context frames (the model) or alone;
        ``camera_id`` keys the model's running focal estimate."""
        if self.method.method == "mesh":
            (reconstruction,) = self.reconstructor.predict([rgb], intrinsics, [self._frames_processed])
            return reconstruction
        window = [frame for frame, _ in self._context] + [rgb]
        first = self._frames_processed - len(self._context)
        (reconstruction,) = self.reconstructor.predict(
            window, intrinsics, range(first, first + len(window)), context_frames=len(self._context),
            detections=[faces for _, faces in self._context] + [None], camera_id=camera_id)
        self._context.append((rgb, [face.face for face in reconstruction.faces]))
        return reconstruction

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
