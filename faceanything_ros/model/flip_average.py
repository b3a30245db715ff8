"""Test-time flip averaging: the network's outputs on a crop and on its mirror image, averaged.

Training shows every sample mirrored half of the time (``training/data/dataset.py``), so the
network's outputs on the mirrored crop, mirrored back, are a second estimate of the same maps
whose errors are partly independent of the first. Mirroring back flips every map along its
width and negates the x component of the vector maps: a mirrored image is seen by a camera whose
x axis is mirrored (rays), and the mirror of a facial point is its canonical coordinate mirrored
through the canonical space's left-right symmetry plane ``x = 0`` (``canonical.space.MIRROR``).
The two estimates are averaged (unit rays renormalised). It costs a second network pass; the
model card lists what it gains.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from ..canonical.space import MIRROR

WIDTH_AXIS = 3  # of every (B, T, H, W[, 3]) output
UNIT_VECTOR_OUTPUTS = ("rays",)


def mirror_outputs(outputs: dict[str, Tensor]) -> dict[str, Tensor]:
    """The outputs of a mirrored batch expressed for the unmirrored one: every ``(B, T, H, W)`` map
    flipped along ``W``; every ``(B, T, H, W, 3)`` map (rays, canonical) flipped and its x negated."""
    mirrored = {}
    for name, value in outputs.items():
        value = value.flip(WIDTH_AXIS)
        mirrored[name] = value * torch.as_tensor(MIRROR, dtype=value.dtype, device=value.device) \
            if value.ndim == 5 else value
    return mirrored


def flip_averaged(forward: Callable[[Tensor], dict[str, Tensor]], images: Tensor) -> dict[str, Tensor]:
    """``forward``'s outputs for ``images`` averaged with its mirrored outputs for the mirrored images.

    Args:
        forward: ``FaceAnythingNet.forward`` or an engine's ``run``: ``(B, T, 3, H, W)`` images ->
            the network's output dict.
        images: ``(B, T, 3, H, W)`` float RGB in ``[0, 1]``.

    Returns:
        The network's output dict (same names, shapes and units; float32), each map the mean of the
        two estimates; ``rays`` renormalised to unit length. ``forward`` runs once on a batch of ``2 B``.
    """
    batch = images.shape[0]
    outputs = forward(torch.cat([images, images.flip(-1)]))
    direct = {name: value[:batch].float() for name, value in outputs.items()}
    mirrored = mirror_outputs({name: value[batch:].float() for name, value in outputs.items()})
    averaged = {name: (direct[name] + mirrored[name]) / 2 for name in outputs}
    for name in UNIT_VECTOR_OUTPUTS:
        averaged[name] = torch.nn.functional.normalize(averaged[name], dim=-1)
    return averaged
