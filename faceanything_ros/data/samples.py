"""Data-engine samples in the model's layout, as tensors (``FaceAnythingNet.forward`` shapes).

Depth and rays are expressed in each frame's virtual camera (``geometry.virtual_camera``): what
the network predicts. Off-mask ground truth is filled with 0 (never NaN) and must be ignored
through ``mask``.
"""
from __future__ import annotations

import numpy as np
import torch

from faceanything_ros.geometry.virtual_camera import virtual_directions, virtual_rotation


def images_to_float(images: torch.Tensor) -> torch.Tensor:
    """``(..., 3, H, W)`` uint8 RGB -> float32 in ``[0, 1]`` (on the tensor's device)."""
    return images.float().div_(255.0)


def to_item(arrays: dict[str, np.ndarray], position: int, camera_known: bool) -> dict[str, torch.Tensor]:
    """Stored sample arrays (``format.SAMPLE_ARRAYS``, optionally ``in_frame``) -> model-layout tensors.

    ``images`` (T, 3, S, S) uint8 RGB (``images_to_float`` makes the model input on the compute
    device, 4x less data to move); ``depth`` (T, S, S) float32 virtual-camera z-depth, metres (0 off
    mask); ``rays`` (T, S, S, 3) float32 unit rays in the virtual camera; ``canonical`` (T, S, S, 3)
    float32 [-1, 1] (0 off mask); ``mask``, ``surface`` and ``in_frame`` (T, S, S) bool (ground truth
    valid / any face surface / inside the camera frame); ``intrinsics`` (T, 3, 3) float32 crop
    pixels; ``camera_from_virtual`` (T, 3, 3) float32; ``tracks`` (N, T, 2) float32 pixels;
    ``track_visible`` (N, T) bool; ``track_canonical`` (N, 3) float32; ``track_query_frame`` (N,)
    int64; ``index`` int64 (``position``, the sample's place in the manifest); ``camera_known`` bool
    (``format.camera_known`` of its record: rays, focal and metric depth are ground truth).
    """
    mask = arrays["mask"]
    frames, size = mask.shape[0], mask.shape[-1]
    K = arrays["intrinsics"]
    rotation = virtual_rotation(K, size, size)
    in_frame = arrays.get("in_frame", np.ones_like(mask))
    directions = np.stack([virtual_directions(k, r, size, size) for k, r in zip(K, rotation)])
    depth = np.where(mask, arrays["depth"], 0.0) * directions[..., 2]
    rays = directions / np.linalg.norm(directions, axis=-1, keepdims=True)
    images = torch.from_numpy(np.ascontiguousarray(arrays["rgb"].transpose(0, 3, 1, 2)))
    return {
        "images": images,
        "depth": torch.from_numpy(depth.astype(np.float32)),
        "rays": torch.from_numpy(rays.astype(np.float32)),
        "canonical": torch.from_numpy(np.where(mask[..., None], arrays["canonical"], 0.0).astype(np.float32)),
        "mask": torch.from_numpy(np.ascontiguousarray(mask)),
        "surface": torch.from_numpy(np.ascontiguousarray(arrays["surface"])),
        "in_frame": torch.from_numpy(np.ascontiguousarray(in_frame)),
        "intrinsics": torch.from_numpy(K.astype(np.float32)),
        "camera_from_virtual": torch.from_numpy(rotation.astype(np.float32)),
        "tracks": torch.from_numpy(np.ascontiguousarray(arrays["tracks"], dtype=np.float32)),
        "track_visible": torch.from_numpy(np.ascontiguousarray(arrays["track_visible"])),
        "track_canonical": torch.from_numpy(np.ascontiguousarray(arrays["track_canonical"], dtype=np.float32)),
        "track_query_frame": torch.from_numpy(arrays["track_query_frame"].astype(np.int64)),
        "index": torch.tensor(position, dtype=torch.int64),
        "camera_known": torch.tensor(camera_known),
    }
