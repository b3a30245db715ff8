"""The Face Anything network, its numpy prediction type and safetensors checkpoints."""
from .checkpoint import (
    CheckpointError,
    CheckpointMetadata,
    init_checkpoint,
    load_checkpoint,
    read_checkpoint_metadata,
    save_checkpoint,
)
from .net import FaceAnythingNet
from .prediction import ModelPrediction

__all__ = [
    "CheckpointError",
    "CheckpointMetadata",
    "FaceAnythingNet",
    "ModelPrediction",
    "init_checkpoint",
    "load_checkpoint",
    "read_checkpoint_metadata",
    "save_checkpoint",
]
