"""The DPT prediction head, one class reused for every dense output of the network."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from .activations import ACTIVATIONS


@dataclass(frozen=True)
class HeadOutput:
    """One named group of consecutive output channels and the activation applied to it."""

    name: str  # key of the group in the head's output dict
    channels: int  # number of channels of the group
    activation: str  # key of ``activations.ACTIVATIONS``

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r} for {self.name!r}; "
                             f"choose one of {sorted(ACTIVATIONS)}")
        if self.activation == "unit_ray" and self.channels != 3:
            raise ValueError(f"unit_ray output {self.name!r} needs 3 channels, got {self.channels}")


class ResidualConvUnit(nn.Module):
    """``x + conv(relu(conv(relu(x))))`` with two 3x3 convolutions, ``(N, F, h, w)`` in and out."""

    def __init__(self, features: int):
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, F, h, w)`` -> ``(N, F, h, w)``."""
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class FusionBlock(nn.Module):
    """RefineNet-style fusion: add the refined skip map, refine, 1x1 project, resize.

    ``forward(path (N, F, h, w), skip (N, F, h, w) | None, size) -> (N, F, *size)`` (no resize
    when ``size`` is None); only a block built with ``has_skip`` accepts a skip map (the coarsest
    level has none).
    """

    def __init__(self, features: int, has_skip: bool):
        super().__init__()
        self.skip_unit = ResidualConvUnit(features) if has_skip else None
        self.refine_unit = ResidualConvUnit(features)
        self.project = nn.Conv2d(features, features, 1)

    def forward(self, path: Tensor, skip: Tensor | None = None, size: tuple[int, int] | None = None) -> Tensor:
        """Fuse ``path`` with ``skip`` (same size) and resize the result bilinearly to ``size``."""
        if skip is not None:
            if self.skip_unit is None:
                raise ValueError("this fusion block was built without a skip connection")
            path = path + self.skip_unit(skip)
        # The 1x1 projection commutes with bilinear resizing; projecting first is cheaper.
        path = self.project(self.refine_unit(path))
        return path if size is None else F.interpolate(path, size=size, mode="bilinear", align_corners=False)


class DPTHead(nn.Module):
    """Dense Prediction Transformer head: 4 token maps -> per-pixel outputs at input resolution.

    The 4 maps (patch grid ``h x w``) are projected to ``out_channels`` and resized to
    ``4x, 2x, 1x, 0.5x`` the grid (1/4 ... 1/32 of the input for patch size 16), projected to
    ``features`` channels and fused from coarse to fine. The finest fused map (4x the grid) is
    upsampled bilinearly to the input ``H x W`` *before* the output convolution (as VGGT's DPT
    does), so every output pixel is predicted by its own 3x3 convolution at full resolution
    (sub-pixel detail for tracking), then activated per ``HeadOutput`` group. The output
    convolution's hidden width is ``max(features // 2, 8)``.
    """

    def __init__(self, embed_dim: int, out_channels: Sequence[int], features: int, outputs: Sequence[HeadOutput]):
        super().__init__()
        if len(out_channels) != 4:
            raise ValueError(f"DPTHead needs 4 out_channels (one per level), got {tuple(out_channels)}")
        if not outputs:
            raise ValueError("DPTHead needs at least one HeadOutput")
        self.outputs = tuple(outputs)
        self.projects = nn.ModuleList(nn.Conv2d(embed_dim, channels, 1) for channels in out_channels)
        self.resizes = nn.ModuleList([
            nn.ConvTranspose2d(out_channels[0], out_channels[0], kernel_size=4, stride=4),
            nn.ConvTranspose2d(out_channels[1], out_channels[1], kernel_size=2, stride=2),
            nn.Identity(),
            nn.Conv2d(out_channels[3], out_channels[3], kernel_size=3, stride=2, padding=1),
        ])
        self.level_projects = nn.ModuleList(
            nn.Conv2d(channels, features, 3, padding=1, bias=False) for channels in out_channels)
        self.fusions = nn.ModuleList(FusionBlock(features, has_skip=level < 3) for level in range(4))
        hidden = max(features // 2, 8)
        self.output_conv = nn.Sequential(
            nn.Conv2d(features, hidden, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(hidden, sum(output.channels for output in self.outputs), 1),
        )

    def forward(self, token_maps: Sequence[Tensor], image_size: tuple[int, int]) -> dict[str, Tensor]:
        """Predict dense outputs from the backbone's 4 maps.

        Args:
            token_maps: 4 tensors ``(N, embed_dim, h, w)`` (``N = B * T`` frames), shallow to deep.
            image_size: ``(H, W)`` of the input images, pixels.

        Returns:
            ``{output.name: (N, output.channels, H, W)}`` activated values (float32, under autocast too), one
            entry per group.
        """
        levels = [
            level_project(resize(project(token_map)))
            for token_map, project, resize, level_project in zip(
                token_maps, self.projects, self.resizes, self.level_projects)
        ]
        path = self.fusions[3](levels[3], size=levels[2].shape[-2:])
        path = self.fusions[2](path, levels[2], size=levels[1].shape[-2:])
        path = self.fusions[1](path, levels[1], size=levels[0].shape[-2:])
        path = self.fusions[0](path, levels[0], size=image_size)
        # activations in float32: under bf16/fp16 autocast an offset such as a ray's z + 1 would round its
        # small raw value away (bf16 resolves 2^-7 at 1)
        raw = self.output_conv(path).float()
        groups = raw.split([output.channels for output in self.outputs], dim=1)
        return {output.name: ACTIVATIONS[output.activation](group) for output, group in zip(self.outputs, groups)}
