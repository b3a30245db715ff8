"""Input side of the pipeline: frame sources, input checks, face detection, face crops.

``open_frames`` reads videos, image folders and images; ``validation`` checks arrays and
intrinsics; ``FaceDetector`` finds faces (mediapipe, imported only when a detector is built);
``crop`` cuts square face crops and pastes per-pixel crop maps (and a face's surface) back into the full image.
"""
from faceanything_ros.io.crop import CropBox, crop_box_for_face, crop_image, paste_back, paste_surface
from faceanything_ros.io.face_detector import FaceBox, FaceDetector
from faceanything_ros.io.frames import Frame, FrameSource, open_frames, read_image
from faceanything_ros.io.validation import (
    MAX_IMAGE_PIXELS,
    MAX_IMAGE_SIDE_PX,
    MIN_IMAGE_SIDE_PX,
    validate_frames,
    validate_intrinsics_for_frames,
    validate_rgb,
)

__all__ = [
    "CropBox",
    "FaceBox",
    "FaceDetector",
    "Frame",
    "FrameSource",
    "MAX_IMAGE_PIXELS",
    "MAX_IMAGE_SIDE_PX",
    "MIN_IMAGE_SIDE_PX",
    "crop_box_for_face",
    "crop_image",
    "open_frames",
    "paste_back",
    "paste_surface",
    "read_image",
    "validate_frames",
    "validate_intrinsics_for_frames",
    "validate_rgb",
]
