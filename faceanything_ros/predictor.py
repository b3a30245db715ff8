"""Frames -> ``Reconstruction``: detection, crop, the network, intrinsics, paste-back, clouds.

ROS-free; the CLI, the ROS node and the evaluators all call ``Predictor.predict``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .canonical.space import load_canonical_space
from .config import PredictorConfig
from .engines import create_engine
from .geometry.camera import intrinsics_from_fov, intrinsics_matrix, mean_focal
from .geometry.face_scale import face_size_scale
from .geometry.focal_estimate import StreamFocal
from .geometry.rays import fit_focal_scale, ray_sample_stride, sample_crop_rays
from .geometry.virtual_camera import depth_from_virtual, virtual_rays, virtual_rotation
from .io.crop import CropBox, crop_box_for_face, crop_image, crop_pixels_footprint, paste_back, paste_surface
from .io.face_detector import FaceBox, FaceDetector
from .io.validation import validate_frame_indices, validate_frames, validate_intrinsics_for_frames
from .model.checkpoint import CheckpointMetadata, load_checkpoint
from .model.prediction import ModelPrediction
from .reconstruction import FaceReconstruction, Reconstruction
from .stages import STAGE_TIMES

log = logging.getLogger(__name__)



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
                 engine: str = "torch", precision: str | None = None, engine_cache: str | Path | None = None,
                 video: bool = False):
        """``precision``: None = the engine's default; ``engine_cache``: artefact folder (None =
        ``$FACEANYTHING_ENGINE_CACHE`` or ``~/.cache/faceanything_ros/engines``); ``video``: the frames
        come from one video in order (the detector's interval, ``DetectorConfig.detection_interval``)."""
        self.config = config or PredictorConfig()
        model, self.metadata = load_checkpoint(checkpoint, device=device)
        self.metadata: CheckpointMetadata
        self.engine = create_engine(engine, model, checkpoint, device, precision, engine_cache)
        self.detector = FaceDetector(self.config.detector, video=video)
        self.input_size = self.engine.input_size
        self.focal_estimate = StreamFocal(self.config.focal_history)
        self.metres_per_unit = load_canonical_space(self.metadata.canonical_space_id).mm_per_unit / 1000.0

    def reset(self) -> None:
        """Start a new stream: its next frame's faces are detected, not tracked from the last frame's."""
        self.detector.reset()

    def close(self) -> None:
        """Release the face detector."""
        self.detector.close()

    def __enter__(self) -> "Predictor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def predict(self, frames: np.ndarray | Sequence[np.ndarray], intrinsics: np.ndarray | None = None,
                frame_indices: Sequence[int] | None = None, context_frames: int = 0,
                detections: Sequence[list[FaceBox] | None] | None = None, camera_id: str = "") -> list[Reconstruction]:
        """Reconstruct every face in a window of frames from one camera.

        Args:
            frames: uint8 RGB, ``(H, W, 3)``, ``(T, H, W, 3)`` or a list of same-size frames.
            intrinsics: ``(3, 3)`` or ``(T, 3, 3)`` pinhole K in pixels (e.g. from CameraInfo), or
                None to estimate it: the focal length from the predicted rays, the principal point
                at the image centre ``((W - 1) / 2, (H - 1) / 2)``, square pixels. The estimate runs
                over the stream (``focal_estimate``, the median of the last
                ``config.focal_history`` frames' focal lengths) and restarts when the image size or
                ``camera_id`` changes; before any face it is ``config.default_fov_deg``.
            frame_indices: ``frame_index`` of each frame (the stream's own numbering, e.g. with a
                stride), or None for ``0 .. T-1``.
            context_frames: the first this many frames are context only (a stream's earlier frames):
                the network sees them, but they get no ``Reconstruction`` (no paste-back, no cloud)
                and do not enter the focal estimate again. ``0 <= context_frames < T``.
            detections: per frame, its faces as detected before (e.g. ``[f.face for f in r.faces]``
                of that frame's earlier ``Reconstruction``), or None to detect them here; None = all.
            camera_id: which camera the frames come from (e.g. the ROS frame_id), for the focal estimate.

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
        default = intrinsics_from_fov(width, height, self.config.default_fov_deg)
        references = given if given is not None else np.repeat(default[None], num_frames, axis=0)
        fit_rays = given is None or self.config.metric_depth == "rays"  # the rays' focal is needed
        ray_focals = [[self._ray_focal(result, references[t]) if fit_rays else None for result in crops[t]]
                      if t >= context_frames else [] for t in range(num_frames)]
        if given is not None:
            cameras, source = given, "given"
        else:
            camera, source = self._stream_intrinsics(ray_focals[context_frames:], default, (height, width, camera_id))
            cameras = np.repeat(camera[None], num_frames, axis=0)
        return [
            Reconstruction(
                frame_index=indices[t],
                image_size=(height, width),
                intrinsics=cameras[t],
                intrinsics_source=source,
                faces=[self._paste_face(frames[t], result, cameras[t], focal)
                       for result, focal in zip(crops[t], ray_focals[t])],
                message="ok" if crops[t] else "no face detected",
            )
            for t in range(context_frames, num_frames)
        ]

    def infer_crops(self, images: np.ndarray) -> ModelPrediction:
        """The network's outputs for a ``(T, S, S, 3)`` uint8 window of face crops (``S = input_size``),
        flip-averaged when ``config.flip_average`` says so."""
        return self.engine.infer(images, self.config.flip_average)

    def _run_model(self, frames: np.ndarray, detections: list[list[FaceBox]]) -> list[list[_CropResult]]:
        """Crop each frame's detected faces and run the network; faces of the same size rank form one sequence."""
        boxes = [[crop_box_for_face(face, self.config.detector.crop_scale, self.input_size) for face in faces]
                 for faces in detections]
        results: list[list[_CropResult]] = [[] for _ in frames]
        for rank in range(max((len(faces) for faces in detections), default=0)):
            members = [t for t, faces in enumerate(detections) if len(faces) > rank]
            images = np.stack([crop_image(frames[t], boxes[t][rank]) for t in members])
            prediction = self.infer_crops(images)
            for i, t in enumerate(members):
                results[t].append(_CropResult(detections[t][rank], boxes[t][rank], prediction.select(i)))
        return results

    def _ray_focal(self, result: _CropResult, reference: np.ndarray) -> float | None:
        """Mean focal length (image pixels) that a crop's predicted face rays imply, with the principal
        point and aspect of ``reference`` (``geometry.rays.fit_focal_scale``); None (logged) when the
        crop has too few face rays."""
        prediction = result.prediction
        try:
            rays = sample_crop_rays(prediction.rays[0], prediction.ray_confidence[0],
                                    prediction.mask_probability[0] > self.config.mask_threshold, result.crop,
                                    ray_sample_stride(result.crop.output_size))
        except ValueError as error:
            log.warning("the face crop's rays give no focal length (%s); its depth is left unscaled", error)
            return None
        return fit_focal_scale([rays], reference) * mean_focal(reference)

    def _stream_intrinsics(self, ray_focals: list[list[float | None]], default: np.ndarray,
                           camera: tuple[int, int, str]) -> tuple[np.ndarray, str]:
        """The stream's K after the new frames: their focal lengths (median over each frame's faces)
        enter ``focal_estimate`` for ``camera`` (height, width, camera id); the principal point is
        ``default``'s (the image centre), which is also the K before any face."""
        focal = None
        for frame_focals in ray_focals:
            usable = [f for f in frame_focals if f is not None]
            focal = self.focal_estimate.observe(camera, float(np.median(usable)) if usable else None)
        if focal is None:
            return default, "default-fov"
        return intrinsics_matrix(focal, focal, default[0, 2], default[1, 2]), "rays"

    def _paste_face(self, frame: np.ndarray, result: _CropResult, camera: np.ndarray,
                    ray_focal: float | None) -> FaceReconstruction:
        """One crop's prediction as maps over the part of the image its face pixels can reach
        (``io.crop.crop_pixels_footprint``: the crop's footprint cut to the face's box), seen by
        ``camera`` (image K, pixels).

        The network's depth is z-depth in the crop's virtual camera, metric for the focal length the
        network believes; ``config.metric_depth`` decides its scale: ``face_size`` (default) scales it
        so the face, seen along ``camera``'s rays, has the canonical template's metric size
        (``geometry.face_scale``; the rays' scale when the crop has too few face pixels); ``rays``
        scales it by ``focal(camera) / ray_focal`` (the focal length the predicted rays imply: a
        face of fixed size lies farther for a longer focal). It is then turned into the image
        camera's z-depth (``depth_from_virtual`` with ``camera``'s crop intrinsics and virtual rotation). Depth
        and canonical coordinates are pasted back from face pixels only (``paste_surface``), so no
        off-face value enters a face pixel.
        """
        height, width = frame.shape[:2]
        prediction, crop = result.prediction, result.crop
        crop_face = prediction.mask_probability[0] > self.config.mask_threshold
        region = crop_pixels_footprint(crop, crop_face, height, width)
        crop_camera = crop.intrinsics(camera)
        rotation = virtual_rotation(crop_camera, crop.output_size, crop.output_size)
        depth_scale = None
        if self.config.metric_depth == "face_size":
            depth_scale = face_size_scale(prediction.depth[0], virtual_rays(crop_camera, rotation, crop.output_size,
                                                                            crop.output_size),
                                          prediction.canonical[0], crop_face, self.metres_per_unit)
        if depth_scale is None:
            ray_focal = ray_focal if ray_focal is not None else self._ray_focal(result, camera)
            depth_scale = 1.0 if ray_focal is None else mean_focal(camera) / ray_focal
        crop_depth = depth_from_virtual(prediction.depth[0] * depth_scale, crop_camera, rotation).astype(np.float32)
        with STAGE_TIMES.stage("paste_back"):
            mask_probability, depth_confidence, canonical_confidence = (
                paste_back(scalar[0], crop, height, width, fill=np.nan, region=region)
                for scalar in (prediction.mask_probability, prediction.depth_confidence,
                               prediction.canonical_confidence))
            mask, depth, canonical = paste_surface(crop_depth, prediction.canonical[0], crop_face, crop, height, width,
                                                   region=region, face=mask_probability > self.config.mask_threshold)
        return FaceReconstruction(
            face=result.face, crop=crop, region=region, depth=depth, depth_confidence=depth_confidence,
            canonical=canonical, canonical_confidence=canonical_confidence, mask=mask, intrinsics=camera, image=frame,
            cloud_mask=mask & (depth_confidence >= self.config.min_depth_confidence))
