"""The classical reference method: face-mesh pseudo-labels returned as ``Reconstruction`` objects.

``MeshReference.predict`` has the signature and outputs of ``Predictor.predict`` (both satisfy
``Reconstructor``), so the CLI, export, tracking and evaluation run either method with the same
code (``faceanything reconstruct --method mesh``). Per face: mediapipe FaceMesh, the template
pose fit and the rasterised mesh of ``canonical.pseudo_labels``, rendered and unprojected in the
face's image region only; frames are labelled one by one (no temporal model), in a stream
(``tracking=True``) with the face mesh in its tracking mode (``io.face_mesh``). Depth/canonical
confidence is 1 on the face mask and NaN elsewhere. The
``FaceBox`` is the landmarks' bounding box (score 1: FaceMesh reports none per face) with the
detector's six keypoints taken from mesh landmarks; the ``CropBox`` is the square grid the mesh is
rasterised on, from the corner of the face's region: one crop pixel per image pixel up to
``FaceMeshConfig.max_raster_side`` pixels a side (the maps are then the raster itself), coarser for a
larger face, whose maps are resampled into the image like the model's (``io.crop.paste_surface``), so
a face close to the camera costs what a face of ``max_raster_side`` pixels costs.
"""
from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np

from faceanything_ros.canonical.mediapipe_space import IRIS_CENTERS, NOSE_TIP
from faceanything_ros.canonical.pseudo_labels import FaceMeshLabeler, MeshLabel
from faceanything_ros.config import FaceMeshConfig
from faceanything_ros.geometry.rasterizer import rasterize
from faceanything_ros.io.crop import CropBox, paste_surface
from faceanything_ros.io.face_detector import FaceBox
from faceanything_ros.io.validation import validate_frame_indices, validate_frames, validate_intrinsics_for_frames
from faceanything_ros.reconstruction import FaceReconstruction, Reconstruction
from faceanything_ros.stages import timed

# face-mesh landmarks standing in for FaceBox.keypoints (io.face_detector.KEYPOINT_NAMES order):
# right iris centre, left iris centre, nose tip, inner lips (mean of upper and lower), right and left tragion
KEYPOINT_LANDMARKS = ((IRIS_CENTERS[0],), (IRIS_CENTERS[1],), (NOSE_TIP,), (13, 14), (234,), (454,))


class Reconstructor(Protocol):
    """What produces reconstructions: ``Predictor`` (learned model) and ``MeshReference`` (face mesh)."""

    def predict(self, frames: np.ndarray | Sequence[np.ndarray], intrinsics: np.ndarray | None = None,
                frame_indices: Sequence[int] | None = None) -> list[Reconstruction]:
        """One ``Reconstruction`` per frame of a ``(T, H, W, 3)`` uint8 RGB window (see ``Predictor.predict``)."""

    def reset(self) -> None:
        """Start a new stream (another camera): its next frame's faces are found afresh."""

    def close(self) -> None:
        """Release resources."""

    def __enter__(self) -> "Reconstructor":
        """Use in a ``with`` block; ``close()`` on exit."""

    def __exit__(self, *exc: object) -> None:
        """``close()``."""


class MeshReference:
    """Face-mesh reference reconstructions (module docstring); ``tracking``: the frames passed in are one
    video, in order (``reset`` starts another). Release with ``close()`` or a ``with`` block."""

    def __init__(self, config: FaceMeshConfig | None = None, tracking: bool = False) -> None:
        self.config = config if config is not None else FaceMeshConfig()
        self.labeler = FaceMeshLabeler(config=self.config, tracking=tracking)

    def predict(self, frames: np.ndarray | Sequence[np.ndarray], intrinsics: np.ndarray | None = None,
                frame_indices: Sequence[int] | None = None) -> list[Reconstruction]:
        """Reconstruct every face in each frame.

        Args:
            frames: uint8 RGB, ``(H, W, 3)``, ``(T, H, W, 3)`` or a list of same-size frames.
            intrinsics: ``(3, 3)`` or ``(T, 3, 3)`` pinhole K in pixels, or None for the
                ``config.default_fov_deg`` horizontal field of view (``intrinsics_source`` "default-fov").
            frame_indices: ``frame_index`` of each frame, or None for ``0 .. T-1``.

        Returns:
            One ``Reconstruction`` per frame; a frame without a face has ``faces == []`` and a message.
        """
        frames = validate_frames(frames)
        num_frames, height, width, _ = frames.shape
        indices = validate_frame_indices(frame_indices, num_frames)
        if intrinsics is None:
            cameras = np.repeat(self.labeler.intrinsics_for(height, width, None)[None], num_frames, axis=0)
            source = "default-fov"
        else:
            cameras, source = validate_intrinsics_for_frames(intrinsics, num_frames, height, width), "given"
        results = []
        for t in range(num_frames):
            faces = [face_reconstruction_from_label(frames[t], label, self.config.max_raster_side)
                     for label in self.labeler.label(frames[t], cameras[t])]
            results.append(Reconstruction(frame_index=indices[t], image_size=(height, width),
                                          intrinsics=cameras[t], intrinsics_source=source, faces=faces,
                                          message="ok" if faces else "no face mesh found"))
        return results

    def reset(self) -> None:
        """Start a new stream (tracking mode): its next frame's faces are found afresh."""
        self.labeler.reset()

    def close(self) -> None:
        """Release mediapipe."""
        self.labeler.close()

    def __enter__(self) -> "MeshReference":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def face_box_from_landmarks(landmarks_px: np.ndarray, height: int, width: int) -> FaceBox:
    """``FaceBox`` of ``(478, 2)`` landmark pixels: their bounding box clipped to the ``H x W`` image, score 1."""
    limit = np.array([width, height], dtype=np.float64) - 0.5
    (x0, y0), (x1, y1) = np.clip([landmarks_px.min(axis=0), landmarks_px.max(axis=0)], -0.5, limit)
    keypoints = np.stack([landmarks_px[list(indices)].mean(axis=0) for indices in KEYPOINT_LANDMARKS])
    return FaceBox(float(x0), float(y0), float(x1), float(y1), 1.0, keypoints)


def mesh_region(landmarks_px: np.ndarray, height: int, width: int) -> tuple[slice, slice]:
    """``(rows, cols)`` of the ``H x W`` image that a face mesh can cover: the pixel centres inside the
    bounding box of its ``(V, 2)`` vertex pixels (a triangle lies inside its corners' box), clipped."""
    (u0, v0), (u1, v1) = np.floor(landmarks_px.min(axis=0)), np.ceil(landmarks_px.max(axis=0))
    rows = slice(int(np.clip(v0, 0, height)), int(np.clip(v1 + 1, 0, height)))
    cols = slice(int(np.clip(u0, 0, width)), int(np.clip(u1 + 1, 0, width)))
    return rows, cols


@timed("paste_back")
def face_reconstruction_from_label(rgb: np.ndarray, label: MeshLabel,
                                   max_raster_side: int = FaceMeshConfig.max_raster_side) -> FaceReconstruction:
    """One labelled face as a ``FaceReconstruction`` of the frame ``rgb`` over its ``mesh_region``: the mesh is
    rasterised on the square crop grid from the region's corner, one crop pixel per image pixel (the
    maps are then the raster's), or for a face larger than ``max_raster_side`` pixels on a grid of that
    side, resampled into the region (bilinear, from face pixels only: ``paste_surface``). Its cloud is
    made on demand."""
    if max_raster_side < 1:
        raise ValueError(f"max_raster_side must be >= 1 pixel, got {max_raster_side}")
    height, width = rgb.shape[:2]
    rows, cols = region = mesh_region(label.landmarks_px, height, width)
    side = max(rows.stop - rows.start, cols.stop - cols.start, 1)
    crop = CropBox(x0=cols.start, y0=rows.start, side=side, output_size=min(side, max_raster_side))
    raster = rasterize(label.vertices, label.triangles, crop.intrinsics(label.intrinsics), crop.output_size,
                       crop.output_size, attributes=label.canonical_vertices)
    if crop.output_size == side:  # one crop pixel per image pixel: the region's maps are the raster's
        shape = (rows.stop - rows.start, cols.stop - cols.start)
        mask = raster.mask[:shape[0], :shape[1]]
        depth, canonical = raster.depth[:shape[0], :shape[1]], raster.attributes[:shape[0], :shape[1]]
    else:
        mask, depth, canonical = paste_surface(raster.depth, raster.attributes, raster.mask, crop, height, width,
                                               region=region)
    confidence = np.where(mask, np.float32(1.0), np.float32(np.nan))
    return FaceReconstruction(face=face_box_from_landmarks(label.landmarks_px, height, width), crop=crop, region=region,
                              depth=depth, depth_confidence=confidence, canonical=canonical,
                              canonical_confidence=confidence.copy(), mask=mask, intrinsics=label.intrinsics, image=rgb,
                              cloud_mask=mask)
