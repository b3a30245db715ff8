"""Transformer building blocks: multi-head self-attention, MLP and the pre-norm block."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class Attention(nn.Module):
    """Multi-head self-attention over a token sequence via ``F.scaled_dot_product_attention``.

    ``forward(tokens (N, L, dim)) -> (N, L, dim)``; every token attends to every token of its row.
    """

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, tokens: Tensor) -> Tensor:
        """``(N, L, dim)`` -> ``(N, L, dim)``."""
        batch, length, dim = tokens.shape
        qkv = self.qkv(tokens).reshape(batch, length, 3, self.num_heads, dim // self.num_heads)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        attended = F.scaled_dot_product_attention(query, key, value)
        return self.proj(attended.transpose(1, 2).reshape(batch, length, dim))


class Mlp(nn.Module):
    """Two-layer GELU MLP ``dim -> hidden_dim -> dim`` applied per token."""

    def __init__(self, dim: int, hidden_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, tokens: Tensor) -> Tensor:
        """``(..., dim)`` -> ``(..., dim)``."""
        return self.fc2(self.act(self.fc1(tokens)))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm(x))`` then ``x + mlp(norm(x))``.

    ``forward(tokens (N, L, dim)) -> (N, L, dim)``; which tokens share a row (one frame or all
    frames of a sequence) is decided by the caller's reshape.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, tokens: Tensor) -> Tensor:
        """``(N, L, dim)`` -> ``(N, L, dim)``."""
        tokens = tokens + self.attn(self.norm1(tokens))
        return tokens + self.mlp(self.norm2(tokens))
