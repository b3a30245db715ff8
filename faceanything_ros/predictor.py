"""Frames -> ``Reconstruction``: detection, crop, the network, intrinsics, paste-back, clouds.

ROS-free; the CLI, the ROS node and the evaluators all call ``Predictor.predict``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .config import PredictorConfig
from .engines import create_engine
from .geometry.camera import intrinsics_from_fov, mean_focal, pixel_grid
from .geometry.pointcloud import point_cloud_from_depth
from .geometry.rays import solve_intrinsics
from .io.crop import CropBox, crop_box_for_face, crop_image, paste_back
from .io.face_detector import FaceBox, FaceDetector
from .io.validation import validate_frame_indices, validate_frames, validate_intrinsics_for_frames
from .model.checkpoint import CheckpointMetadata, load_checkpoint
from .model.prediction import ModelPrediction
from .reconstruction import FaceReconstruction, Reconstruction

log = logging.getLogger(__name__)

RAY_SAMPLE_STRIDE = 4  # every 4th crop pixel per axis is enough for the 4-parameter ray fit


@dataclass
class _CropResult:
    """The network's output for one face crop, crop coordinates (S = model input side)."""

    face: FaceBox
    crop: CropBox
    prediction: ModelPrediction  # one frame: depth (1, S, S), rays (1, S, S, 3), ...


class Predictor:
    """Reconstructs faces in RGB frames with a Face Anything checkpoint.

    ``Predictor(checkpoint, device, engine=...)`` loads the model once and runs it through an
    inference engine (``faceanything_ros.engines``: ``torch``, ``compile``, ``onnx``,
    ``tensorrt`` or ``auto``); ``predict(frames, intrinsics)`` reconstructs a window of frames
    from one camera jointly (the model attends across them).
    """

    def __init__(self, checkpoint: str | Path, device: str = "cpu", config: PredictorConfig | None = None,
                 engine: str = "torch", precision: str | None = None, engine_cache: str | Path | None = None):
        """``precision``: None = the engine's default; ``engine_cache``: artefact folder (None =
        ``$FACEANYTHING_ENGINE_CACHE`` or ``~/.cache/faceanything_ros/engines``)."""
        self.config = config or PredictorConfig()
        model, self.metadata = load_checkpoint(checkpoint, device=device)
        self.metadata: CheckpointMetadata
        self.engine = create_engine(engine, model, checkpoint, device, precision, engine_cache)
        self.detector = FaceDetector(self.config.detector)
        self.input_size = self.engine.input_size

    def close(self) -> None:
        """Release the face detector."""
        self.detector.close()

    def __enter__(self) -> "Predictor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def predict(self, frames: np.ndarray | Sequence[np.ndarray], intrinsics: np.ndarray | None = None,
                frame_indices: Sequence[int] | None = None, context_frames: int = 0,
                detections: Sequence[list[FaceBox] | None] | None = None) -> list[Reconstruction]:
        """Reconstruct every face in a window of frames from one camera.

        Args:
            frames: uint8 RGB, ``(H, W, 3)``, ``(T, H, W, 3)`` or a list of same-size frames.
            intrinsics: ``(3, 3)`` or ``(T, 3, 3)`` pinhole K in pixels (e.g. from CameraInfo), or
                None to solve one K for the window from the predicted rays (least squares).
            frame_indices: ``frame_index`` of each frame (the stream's own numbering, e.g. with a
                stride), or None for ``0 .. T-1``.
            context_frames: the first this many frames are context only (a stream's earlier frames):
                the network sees them and their rays enter the window's K, but they get no
                ``Reconstruction`` (no paste-back, no cloud). ``0 <= context_frames < T``.
            detections: per frame, its faces as detected before (e.g. ``[f.face for f in r.faces]``
                of that frame's earlier ``Reconstruction``), or None to detect them here; None = all.

        Returns:
            One ``Reconstruction`` per frame after the context frames, in order; a frame without a
            face has ``faces == []`` and a ``message`` saying so.
        """
        frames = validate_frames(frames)
        num_frames, height, width, _ = frames.shape
        indices = validate_frame_indices(frame_indices, num_frames)
        if not 0 <= context_frames < num_frames:
            raise ValueError(f"context_frames must be in [0, {num_frames}) for {num_frames} frames, got {context_frames}")
        if detections is not None and len(detections) != num_frames:
            raise ValueError(f"detections has {len(detections)} entries for {num_frames} frames")
        given = None if intrinsics is None else validate_intrinsics_for_frames(intrinsics, num_frames, height, width)
        faces = [self.detector.detect(frame) if detections is None or detections[t] is None else list(detections[t])
                 for t, frame in enumerate(frames)]
        crops = self._run_model(frames, faces)
        if given is not None:
            cameras, source = given, "given"
        else:
            camera, source = self._solve_window_intrinsics(crops, height, width)
            cameras = np.repeat(camera[None], num_frames, axis=0)
        return [
            Reconstruction(
                frame_index=indices[t],
                image_size=(height, width),
                intrinsics=cameras[t],
                intrinsics_source=source,
                faces=[self._paste_face(frames[t], result, cameras[t]) for result in crops[t]],
                message="ok" if crops[t] else "no face detected",
            )
            for t in range(context_frames, num_frames)
        ]

    def _run_model(self, frames: np.ndarray, detections: list[list[FaceBox]]) -> list[list[_CropResult]]:
        """Crop each frame's detected faces and run the network; faces of the same size rank form one sequence."""
        boxes = [[crop_box_for_face(face, self.config.detector.crop_scale, self.input_size) for face in faces]
                 for faces in detections]
        results: list[list[_CropResult]] = [[] for _ in frames]
        for rank in range(max((len(faces) for faces in detections), default=0)):
            members = [t for t, faces in enumerate(detections) if len(faces) > rank]
            images = np.stack([crop_image(frames[t], boxes[t][rank]) for t in members])
            prediction = self.engine.infer(images)
            for i, t in enumerate(members):
                results[t].append(_CropResult(detections[t][rank], boxes[t][rank], prediction.select(i)))
        return results

    def _solve_window_intrinsics(self, crops: list[list[_CropResult]], height: int, width: int
                                 ) -> tuple[np.ndarray, str]:
        """One K for the window: least squares over every crop's rays in full-image pixels."""
        rays, pixels = [], []
        for result in (r for frame_results in crops for r in frame_results):
            crop_rays, crop_pixels = _sampled_rays(result.prediction)
            rays.append(crop_rays)
            pixels.append(result.crop.crop_pixels_to_image(crop_pixels))
        if rays:
            try:
                return solve_intrinsics(np.concatenate(rays), np.concatenate(pixels)), "rays"
            except ValueError as error:
                log.warning("predicted rays give no pinhole camera (%s); assuming a %.0f deg field of view",
                            error, self.config.default_fov_deg)
        return intrinsics_from_fov(width, height, self.config.default_fov_deg), "default-fov"

    def _paste_face(self, frame: np.ndarray, result: _CropResult, camera: np.ndarray) -> FaceReconstruction:
        """Make one crop's depth consistent with ``camera``, paste it back and build its cloud."""
        height, width = frame.shape[:2]
        prediction, crop = result.prediction, result.crop
        # Depth of a face of fixed metric size scales with focal length: rescale the network's
        # depth from the focal its rays imply to the focal of the camera actually used.
        try:
            depth_scale = mean_focal(crop.intrinsics(camera)) / mean_focal(solve_intrinsics(*_sampled_rays(prediction)))
        except ValueError as error:
            log.warning("predicted rays of a face crop give no pinhole camera (%s); depth left unscaled", error)
            depth_scale = 1.0
        # the four scalar maps share one 4-channel warp (bit-identical to four 1-channel warps in
        # OpenCV; more than 4 channels would take a different, less exact path)
        scalars = np.stack([prediction.mask_probability[0], prediction.depth[0] * np.float32(depth_scale),
                            prediction.depth_confidence[0], prediction.canonical_confidence[0]], axis=-1)
        mask_probability, depth, depth_confidence, canonical_confidence = np.ascontiguousarray(
            np.moveaxis(paste_back(scalars, crop, height, width, fill=np.nan), -1, 0))
        mask = mask_probability > self.config.mask_threshold
        depth = np.where(mask, depth, np.nan).astype(np.float32)
        canonical = np.where(mask[..., None], paste_back(prediction.canonical[0], crop, height, width, fill=np.nan),
                             np.nan).astype(np.float32)
        cloud = point_cloud_from_depth(
            depth, camera, valid=mask & (depth_confidence >= self.config.min_depth_confidence), image=frame,
            canonical=canonical, confidence=depth_confidence,
        )
        return FaceReconstruction(result.face, crop, depth, depth_confidence, canonical, canonical_confidence,
                                  mask, cloud)


def _sampled_rays(prediction: ModelPrediction) -> tuple[np.ndarray, np.ndarray]:
    """Every ``RAY_SAMPLE_STRIDE``-th ray of a one-frame prediction: rays (N, 3), crop pixels (N, 2)."""
    rays = prediction.rays[0][::RAY_SAMPLE_STRIDE, ::RAY_SAMPLE_STRIDE]
    side = prediction.rays.shape[1]
    pixels = pixel_grid(side, side)[::RAY_SAMPLE_STRIDE, ::RAY_SAMPLE_STRIDE]
    return rays.reshape(-1, 3).astype(np.float64), pixels.reshape(-1, 2)

