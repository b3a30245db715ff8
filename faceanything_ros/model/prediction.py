"""``ModelPrediction``: the network's dense outputs for one sequence, as numpy arrays."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Mapping

import numpy as np
import torch
from scipy.special import expit

OUTPUT_KEYS = ("depth", "depth_confidence", "rays", "ray_confidence", "canonical", "canonical_confidence", "mask_logit")


@dataclass
class ModelPrediction:
    """Per-pixel predictions for the ``T`` frames of one sequence at the model input size ``H x W``.

    Pixel ``(row v, col u)`` of every map belongs to pixel ``(u, v)`` of the input image.
    """

    depth: np.ndarray  # (T, H, W) float32, metres along the virtual camera's optical axis (z), > 0
    depth_confidence: np.ndarray  # (T, H, W) float32, >= 1 (higher = more certain)
    rays: np.ndarray  # (T, H, W, 3) float32 unit vectors, virtual camera optical frame (x right, y down, z forward)
    ray_confidence: np.ndarray  # (T, H, W) float32, >= 1
    canonical: np.ndarray  # (T, H, W, 3) float32 canonical facial coordinates in [-1, 1]
    canonical_confidence: np.ndarray  # (T, H, W) float32, >= 1
    mask_probability: np.ndarray  # (T, H, W) float32 face-pixel probability in [0, 1]

    @classmethod
    def from_outputs(cls, outputs: Mapping[str, torch.Tensor | np.ndarray], batch_index: int = 0) -> "ModelPrediction":
        """Take sequence ``batch_index`` of a batched network output dict.

        Args:
            outputs: ``FaceAnythingNet.forward`` outputs (torch tensors, or numpy arrays from an
                exported engine with the same names): ``depth``, ``depth_confidence``,
                ``ray_confidence``, ``canonical_confidence``, ``mask_logit`` ``(B, T, H, W)``; ``rays``, ``canonical``
                ``(B, T, H, W, 3)``.
            batch_index: which sequence of the batch, ``0 <= batch_index < B``.
        """
        missing = [key for key in OUTPUT_KEYS if key not in outputs]
        if missing:
            raise KeyError(f"network outputs lack {missing}; expected keys {list(OUTPUT_KEYS)}, got {sorted(outputs)}")
        arrays = {key: _float32_array(outputs[key]) for key in OUTPUT_KEYS}
        if arrays["depth"].ndim != 4:
            raise ValueError(f"outputs['depth'] must be (B, T, H, W), got shape {arrays['depth'].shape}")
        batch = arrays["depth"].shape[0]
        if not 0 <= batch_index < batch:
            raise IndexError(f"batch_index {batch_index} out of range for a batch of {batch}")
        one = {key: value[batch_index] for key, value in arrays.items()}
        return cls(
            depth=one["depth"],
            depth_confidence=one["depth_confidence"],
            rays=one["rays"],
            ray_confidence=one["ray_confidence"],
            canonical=one["canonical"],
            canonical_confidence=one["canonical_confidence"],
            mask_probability=expit(one["mask_logit"]).astype(np.float32),
        )

    @property
    def num_frames(self) -> int:
        """``T``, the number of frames."""
        return self.depth.shape[0]

    def select(self, index: int) -> "ModelPrediction":
        """Frame ``index`` alone, as a one-frame prediction (every field keeps its ``T = 1`` axis)."""
        if not -self.num_frames <= index < self.num_frames:
            raise IndexError(f"frame index {index} out of range for {self.num_frames} frames")
        start = index % self.num_frames
        return ModelPrediction(**{f.name: getattr(self, f.name)[start:start + 1] for f in fields(self)})


def frames_to_batch(images: np.ndarray) -> torch.Tensor:
    """``(T, H, W, 3)`` uint8 RGB frames -> ``(1, T, 3, H, W)`` float32 CPU tensor in ``[0, 1]``.

    The input of ``FaceAnythingNet.forward`` and every engine's ``run`` for one sequence.
    """
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
        raise TypeError(f"infer expects a uint8 numpy array (T, H, W, 3), got "
                        f"{type(images).__name__} of dtype {getattr(images, 'dtype', None)}")
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"infer expects RGB frames of shape (T, H, W, 3), got {images.shape}"
                         " (add a frame axis with images[None] for a single frame)")
    batch = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)[None]
    return batch.float().div_(255.0)


def _float32_array(value: torch.Tensor | np.ndarray) -> np.ndarray:
    """A float32 numpy copy/view of a tensor (any device) or array."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", torch.float32).numpy()
    return np.asarray(value, dtype=np.float32)
