"""Checkpoints: one ``*.safetensors`` file holding the weights and a JSON description.

The safetensors header metadata key ``"faceanything"`` holds ``CheckpointMetadata`` as JSON
(format version, every ``ModelConfig`` field, input resolution, canonical space id + version,
whether the weights are trained, a training-data summary, creation time, package version).
Loading never unpickles: only safetensors is read.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from .. import __version__
from ..canonical.mediapipe_space import SPACE_VERSION as MEDIAPIPE_SPACE_VERSION
from ..canonical.space import MEDIAPIPE_SPACE_ID
from ..config import ModelConfig, from_dict, to_dict
from ..files import write_atomically
from .net import FaceAnythingNet

CHECKPOINT_FORMAT_VERSION = 1
METADATA_KEY = "faceanything"
DEFAULT_CANONICAL_SPACE_ID = MEDIAPIPE_SPACE_ID  # the shipped canonical space, faceanything_ros/canonical/
DEFAULT_CANONICAL_SPACE_VERSION = MEDIAPIPE_SPACE_VERSION
_LISTED_NAMES = 5  # how many offending tensor names an error message lists


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable, or does not describe a loadable model."""


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class CheckpointMetadata:
    """What a checkpoint file says about its weights (stored as JSON in the safetensors header)."""

    model_config: ModelConfig  # architecture; rebuilds the network exactly
    input_resolution: tuple[int, int] | None = None  # (H, W) pixels of the model input; None: config.image_size square
    canonical_space_id: str = DEFAULT_CANONICAL_SPACE_ID  # which canonical facial coordinate space the net predicts
    canonical_space_version: str = DEFAULT_CANONICAL_SPACE_VERSION  # version of that space's normalisation
    trained: bool = False  # False: random initialisation (pipeline checks only)
    training_data: dict[str, Any] = field(default_factory=dict)  # summary of the training data (free-form JSON)
    created: str = field(default_factory=_utc_now)  # ISO 8601 UTC time the checkpoint was written
    package_version: str = __version__  # faceanything_ros version that wrote it
    format_version: int = CHECKPOINT_FORMAT_VERSION  # checkpoint layout version

    def __post_init__(self) -> None:
        if self.input_resolution is None:
            self.input_resolution = (self.model_config.image_size, self.model_config.image_size)
        height, width = self.input_resolution
        self.input_resolution = (int(height), int(width))
        patch = self.model_config.patch_size
        if height <= 0 or width <= 0 or height % patch or width % patch:
            raise ValueError(f"input_resolution must be positive multiples of the patch size {patch}, "
                             f"got {self.input_resolution}")

    def to_json(self) -> str:
        """The metadata as a JSON object string (the model config as a plain dict)."""
        return json.dumps(to_dict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str = "checkpoint") -> "CheckpointMetadata":
        """Parse ``to_json`` output; raise ``CheckpointError`` naming ``source`` and the problem."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise CheckpointError(f"{source}: '{METADATA_KEY}' metadata is not valid JSON: {error}") from None
        if not isinstance(data, dict):
            raise CheckpointError(f"{source}: '{METADATA_KEY}' metadata must be a JSON object, "
                                  f"got {type(data).__name__}")
        version = data.get("format_version")
        if version != CHECKPOINT_FORMAT_VERSION:
            raise CheckpointError(f"{source}: unsupported checkpoint format version {version!r}; this "
                                  f"faceanything_ros {__version__} reads format {CHECKPOINT_FORMAT_VERSION}")
        names = {f.name for f in dataclasses.fields(cls)}
        missing, unknown = sorted(names - set(data)), sorted(set(data) - names)
        if missing or unknown:
            raise CheckpointError(f"{source}: '{METADATA_KEY}' metadata lacks fields {missing} / has unknown "
                                  f"fields {unknown}")
        try:
            config = from_dict(ModelConfig, data["model_config"])
        except (TypeError, ValueError) as error:
            raise CheckpointError(f"{source}: model config does not parse: {error}") from None
        if not isinstance(data["trained"], bool) or not isinstance(data["training_data"], dict):
            raise CheckpointError(f"{source}: 'trained' must be a bool and 'training_data' an object, got "
                                  f"{data['trained']!r} and {type(data['training_data']).__name__}")
        try:
            return cls(**{**data, "model_config": config, "input_resolution": tuple(data["input_resolution"])})
        except (TypeError, ValueError) as error:
            raise CheckpointError(f"{source}: invalid metadata: {error}") from None


def save_checkpoint(path: str | Path, model: FaceAnythingNet, metadata: CheckpointMetadata,
                    dtype: torch.dtype = torch.float32) -> Path:
    """Write ``model``'s weights (as ``dtype``: float32, or float16 for a half-size shipped file;
    loading always gives float32) and ``metadata`` to the ``*.safetensors`` file ``path``.

    ``metadata.model_config`` must equal ``model.config``; non-finite weights are refused
    (``ValueError``). The file is written to a temporary name and renamed, so a crash never
    leaves a half-written checkpoint under ``path``. Returns the path.
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"checkpoint path must end in .safetensors, got {path}")
    if metadata.model_config != model.config:
        raise ValueError(f"metadata.model_config {metadata.model_config} differs from the model's {model.config}")
    if dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise ValueError(f"checkpoint weights must be float32, float16 or bfloat16, got {dtype}")
    weights = {name: tensor.detach().to("cpu", dtype).contiguous() for name, tensor in model.state_dict().items()}
    non_finite = [name for name, tensor in weights.items() if not torch.isfinite(tensor).all()]
    if non_finite:
        raise ValueError(f"refusing to save non-finite (NaN/Inf) weights: {non_finite[:_LISTED_NAMES]}")
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomically(path, lambda temporary: save_file(weights, str(temporary),
                                                             metadata={METADATA_KEY: metadata.to_json()}))


def read_checkpoint_metadata(path: str | Path) -> CheckpointMetadata:
    """Read only the header of checkpoint ``path``; raise ``CheckpointError`` if it is not one."""
    path = _existing_file(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
    except (SafetensorError, OSError) as error:
        raise CheckpointError(f"{path} is not a valid safetensors file (truncated or corrupt): "
                              f"{error}") from None
    if METADATA_KEY not in header:
        raise CheckpointError(f"{path} has no '{METADATA_KEY}' metadata, so it is not a faceanything_ros "
                              "checkpoint; write one with save_checkpoint or `faceanything init-model`")
    return CheckpointMetadata.from_json(header[METADATA_KEY], source=str(path))


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[FaceAnythingNet, CheckpointMetadata]:
    """Rebuild the network of checkpoint ``path`` with its weights, in eval mode on ``device``.

    Raises ``CheckpointError`` for a missing/corrupt file, bad metadata, missing or unexpected
    tensors, shape mismatches, non-float or non-finite weights.
    """
    metadata = read_checkpoint_metadata(path)
    path = Path(path)
    try:
        weights = load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as error:
        raise CheckpointError(f"{path}: tensor data is unreadable (truncated or corrupt file): {error}") from None
    try:
        with torch.device("meta"):
            model = FaceAnythingNet(metadata.model_config)
    except ValueError as error:
        raise CheckpointError(f"{path}: model config does not describe a buildable network: {error}") from None
    _check_weights(path, weights, model.state_dict())
    model.load_state_dict({name: tensor.float() for name, tensor in weights.items()}, strict=True, assign=True)
    return model.to(device).eval(), metadata


def init_checkpoint(path: str | Path, size: str, seed: int = 0, image_size: int | None = None,
                    canonical_space_id: str = DEFAULT_CANONICAL_SPACE_ID,
                    canonical_space_version: str = DEFAULT_CANONICAL_SPACE_VERSION) -> CheckpointMetadata:
    """Write an untrained (random-init, ``trained=False``) checkpoint of preset ``size`` to ``path``.

    ``seed`` makes the weights reproducible without touching the global RNG; ``image_size``
    (pixels, multiple of the patch size) overrides the preset's input side.
    """
    overrides = {} if image_size is None else {"image_size": image_size}
    config = ModelConfig.preset(size, **overrides)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = FaceAnythingNet(config)
    metadata = CheckpointMetadata(model_config=config, trained=False, canonical_space_id=canonical_space_id,
                                  canonical_space_version=canonical_space_version)
    save_checkpoint(path, model, metadata)
    return metadata


def _existing_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file not found: {path}")
    return path


def _check_weights(path: Path, weights: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    """Raise ``CheckpointError`` unless ``weights`` has exactly ``expected``'s names and shapes,
    float dtypes and only finite values."""
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{path}: tensor names do not match the model: {len(missing)} missing "
                              f"{missing[:_LISTED_NAMES]}, {len(unexpected)} unexpected {unexpected[:_LISTED_NAMES]}")
    mismatched = [f"{name} expected {tuple(expected[name].shape)} got {tuple(tensor.shape)}"
                  for name, tensor in weights.items() if tensor.shape != expected[name].shape]
    if mismatched:
        raise CheckpointError(f"{path}: {len(mismatched)} tensor shape mismatches: "
                              f"{'; '.join(mismatched[:_LISTED_NAMES])}")
    not_float = [f"{name} ({tensor.dtype})" for name, tensor in weights.items() if not tensor.is_floating_point()]
    if not_float:
        raise CheckpointError(f"{path}: weights must be floating point: {not_float[:_LISTED_NAMES]}")
    non_finite = [name for name, tensor in weights.items() if not torch.isfinite(tensor).all()]
    if non_finite:
        raise CheckpointError(f"{path}: {len(non_finite)} tensors contain NaN or Inf: {non_finite[:_LISTED_NAMES]}")
