"""The backbone: a ViT whose blocks alternate frame-local and global (cross-frame) attention."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ...config import ModelConfig
from .attention import Block
from .patch_embed import PatchEmbed

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Aggregator(nn.Module):
    """Joint encoder of a sequence of frames (VGGT-style alternating attention).

    Each frame becomes ``h * w`` patch tokens (``h = H / patch_size``) plus one learned camera
    token (one value for frame 0, the reference frame, another for every later frame). Block
    ``i`` attends within each frame when ``i`` is even (tokens ``(B * T, 1 + h * w, C)``) and
    across all frames of a sequence when ``i`` is odd (tokens ``(B, T * (1 + h * w), C)``).
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.patch_embed = PatchEmbed(config.patch_size, config.embed_dim)
        self.camera_token = nn.Parameter(nn.init.trunc_normal_(torch.empty(2, 1, config.embed_dim), std=0.02))
        self.blocks = nn.ModuleList(
            Block(config.embed_dim, config.num_heads, config.mlp_ratio) for _ in range(config.depth))
        self.norm = nn.LayerNorm(config.embed_dim)

    def forward(self, images: Tensor) -> list[Tensor]:
        """Encode ``(B, T, 3, H, W)`` float images in ``[0, 1]`` (``H, W`` multiples of patch_size).

        Returns:
            One ``(B * T, embed_dim, H / patch_size, W / patch_size)`` map of layer-normed patch
            tokens (camera token dropped) per block index in ``config.intermediate_layers``, in
            that order; frame ``t`` of sequence ``b`` is row ``b * T + t``.
        """
        batch, frames, channels, height, width = images.shape
        mean = images.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = images.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
        normalized = (images.reshape(batch * frames, channels, height, width) - mean) / std
        patches = self.patch_embed(normalized)
        is_later_frame = (torch.arange(frames, device=images.device) > 0).long()
        camera = self.camera_token[is_later_frame].expand(batch, frames, 1, self.config.embed_dim)
        tokens = torch.cat([camera.reshape(batch * frames, 1, self.config.embed_dim), patches], dim=1)
        frame_length = tokens.shape[1]
        grid_height, grid_width = height // self.config.patch_size, width // self.config.patch_size
        taps: list[Tensor] = []
        for index, block in enumerate(self.blocks):
            if index % 2:
                joint = tokens.reshape(batch, frames * frame_length, self.config.embed_dim)
                tokens = block(joint).reshape(batch * frames, frame_length, self.config.embed_dim)
            else:
                tokens = block(tokens)
            if index in self.config.intermediate_layers:
                patch_tokens = self.norm(tokens[:, 1:])
                taps.append(patch_tokens.transpose(1, 2).reshape(batch * frames, -1, grid_height, grid_width))
        return taps
