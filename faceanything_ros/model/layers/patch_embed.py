"""Patch embedding and the fixed 2D sine-cosine positional embedding of the patch grid."""
from __future__ import annotations

import torch
from torch import Tensor, nn


def sincos_position_embedding(grid_height: int, grid_width: int, dim: int, device: torch.device | None = None,
                              dtype: torch.dtype = torch.float32) -> Tensor:
    """Fixed 2D sine-cosine embedding of a ``grid_height x grid_width`` patch grid (MAE style).

    The first ``dim / 2`` channels encode the patch row, the last ``dim / 2`` the patch column;
    each half is ``[sin(p * w_k), cos(p * w_k)]`` with ``w_k = 10000^(-k / (dim / 4))``. It has no
    parameters, so any grid size works (e.g. 224, 256 or 518 pixel inputs).

    Returns:
        ``(grid_height * grid_width, dim)`` tensor, rows in raster order (row-major over the grid).
    """
    if dim % 4:
        raise ValueError(f"sin-cos position embedding needs dim divisible by 4, got {dim}")
    omega = 1.0 / 10000.0 ** (torch.arange(dim // 4, device=device, dtype=torch.float32) / (dim // 4))
    rows = torch.arange(grid_height, device=device, dtype=torch.float32)
    cols = torch.arange(grid_width, device=device, dtype=torch.float32)
    row_angles = torch.outer(rows, omega)[:, None, :].expand(grid_height, grid_width, dim // 4)
    col_angles = torch.outer(cols, omega)[None, :, :].expand(grid_height, grid_width, dim // 4)
    embedding = torch.cat([row_angles.sin(), row_angles.cos(), col_angles.sin(), col_angles.cos()], dim=-1)
    return embedding.reshape(grid_height * grid_width, dim).to(dtype)


class PatchEmbed(nn.Module):
    """Non-overlapping ``patch_size`` convolution patches plus their sin-cos positions.

    ``forward(images (N, 3, H, W))`` with ``H, W`` multiples of ``patch_size`` returns
    ``(N, (H / patch_size) * (W / patch_size), embed_dim)`` tokens in raster order.
    """

    def __init__(self, patch_size: int, embed_dim: int, in_channels: int = 3):
        super().__init__()
        if embed_dim % 4:
            raise ValueError(f"embed_dim must be divisible by 4 for the 2D sin-cos embedding, got {embed_dim}")
        self.patch_size = patch_size
        self.embed_dim = embed_dim
        self.proj = nn.Conv2d(in_channels, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, images: Tensor) -> Tensor:
        """``(N, 3, H, W)`` normalised images -> ``(N, h * w, embed_dim)`` tokens, ``h = H / patch_size``."""
        patches = self.proj(images)
        grid_height, grid_width = patches.shape[-2:]
        tokens = patches.flatten(2).transpose(1, 2)
        positions = sincos_position_embedding(grid_height, grid_width, self.embed_dim, tokens.device, tokens.dtype)
        return tokens + positions
