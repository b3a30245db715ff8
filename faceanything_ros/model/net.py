"""``FaceAnythingNet``: frames -> per-pixel depth, camera rays and canonical facial coordinates."""
from __future__ import annotations

from functools import partial

import numpy as np
import torch
from torch import Tensor, nn

from ..config import ModelConfig
from .heads.dpt import DPTHead, HeadOutput
from .layers.aggregator import Aggregator
from .prediction import ModelPrediction, frames_to_batch


class FaceAnythingNet(nn.Module):
    """Feed-forward multi-frame face reconstruction network (VGGT-style backbone, 3 DPT heads).

    The frames of a sequence are encoded jointly by ``Aggregator``; three ``DPTHead`` instances
    predict depth + depth confidence, unit camera rays + ray confidence, and canonical
    coordinates + canonical confidence + face-mask logit.

    Camera convention: each input image is a face crop. Depth and rays are expressed in the
    crop's *virtual camera* (``geometry.virtual_camera``): the image camera rotated, without
    roll about the ray, so that its optical axis passes through the crop's centre pixel. A crop
    of an off-centre face is then close to a centred view, and the composition back into the
    image camera is exact (``R_camera_from_virtual``). ``forward`` is tensor-in / dict-of-tensors-out so it exports
    to ONNX / torch.compile / TensorRT; ``infer`` is the numpy convenience wrapper.
    """

    def __init__(self, config: ModelConfig | None = None):
        super().__init__()
        self.config = config or ModelConfig()
        self.aggregator = Aggregator(self.config)
        head = partial(DPTHead, self.config.embed_dim, self.config.head_out_channels, self.config.head_features)
        self.depth_head = head([HeadOutput("depth", 1, "exp"), HeadOutput("depth_confidence", 1, "expp1")])
        self.ray_head = head([HeadOutput("rays", 3, "unit_ray"), HeadOutput("ray_confidence", 1, "expp1")])
        self.canonical_head = head([
            HeadOutput("canonical", 3, "tanh"),
            HeadOutput("canonical_confidence", 1, "expp1"),
            HeadOutput("mask_logit", 1, "identity"),
        ])
        self.apply(_init_linear)

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        """Reconstruct ``B`` sequences of ``T`` frames.

        Args:
            images: ``(B, T, 3, H, W)`` float32 RGB in ``[0, 1]``; ``H, W`` multiples of
                ``config.patch_size``. Frame 0 of each sequence is the reference frame.

        Returns:
            Channel-last tensors at the input resolution:
            ``depth`` ``(B, T, H, W)`` metres > 0 along the virtual camera's optical axis;
            ``depth_confidence`` ``(B, T, H, W)`` >= 1;
            ``rays`` ``(B, T, H, W, 3)`` unit vectors in the virtual camera's optical frame
            (pixel ``(u, v)`` has ray proportional to ``R^T K^-1 [u, v, 1]`` for the crop's
            intrinsics ``K`` and the virtual camera rotation ``R``);
            ``ray_confidence`` ``(B, T, H, W)`` >= 1;
            ``canonical`` ``(B, T, H, W, 3)`` in ``[-1, 1]``;
            ``canonical_confidence`` ``(B, T, H, W)`` >= 1;
            ``mask_logit`` ``(B, T, H, W)`` face-mask logit (probability = sigmoid).
        """
        check_images(images, self.config.patch_size)
        batch, frames, _, height, width = images.shape
        token_maps = self.aggregator(images)
        outputs: dict[str, Tensor] = {}
        for head in (self.depth_head, self.ray_head, self.canonical_head):
            outputs.update(head(token_maps, (height, width)))
        return {name: _channel_last(value, batch, frames) for name, value in outputs.items()}

    @torch.inference_mode()
    def infer(self, images: np.ndarray) -> ModelPrediction:
        """Run one sequence of ``(T, H, W, 3)`` uint8 RGB frames on the model's device.

        ``H, W`` must be multiples of ``config.patch_size`` (e.g. ``config.image_size``).
        Returns numpy predictions at ``H x W`` (see ``ModelPrediction``).
        """
        device = next(self.parameters()).device
        return ModelPrediction.from_outputs(self(frames_to_batch(images).to(device)))


def check_images(images: Tensor, patch_size: int) -> None:
    """Raise ``TypeError``/``ValueError`` unless ``images`` is a float ``(B, T, 3, H, W)`` tensor
    with ``H`` and ``W`` positive multiples of ``patch_size``."""
    if not isinstance(images, Tensor) or not images.is_floating_point():
        raise TypeError(f"images must be a floating-point torch.Tensor (B, T, 3, H, W) in [0, 1], got "
                        f"{type(images).__name__} {getattr(images, 'dtype', '')}")
    if images.ndim != 5 or images.shape[2] != 3:
        raise ValueError(f"images must have shape (B, T, 3, H, W), got {tuple(images.shape)}")
    height, width = images.shape[-2:]
    if height == 0 or width == 0 or height % patch_size or width % patch_size:
        raise ValueError(f"image height and width must be positive multiples of the patch size {patch_size}, "
                         f"got {height} x {width}")


def _channel_last(value: Tensor, batch: int, frames: int) -> Tensor:
    """``(B * T, C, H, W)`` -> ``(B, T, H, W, C)``, or ``(B, T, H, W)`` when ``C == 1``."""
    channels, height, width = value.shape[1:]
    value = value.reshape(batch, frames, channels, height, width).permute(0, 1, 3, 4, 2)
    return value.squeeze(-1) if channels == 1 else value


def _init_linear(module: nn.Module) -> None:
    """Truncated-normal (std 0.02) weights and zero biases for linear layers (ViT init)."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
