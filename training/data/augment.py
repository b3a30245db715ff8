"""Image-only augmentations of rendered samples: backgrounds and photometric jitter.

Every function takes a seeded ``numpy.random.Generator`` and returns a new image; ground truth
(depth, canonical, masks, cameras) is never an argument, so it cannot be touched. Images are
``(H, W, 3)`` uint8 RGB; masks ``(H, W)`` bool (True = rendered face).
"""
from __future__ import annotations

import cv2
import numpy as np

from training.data.config import AugmentConfig

BACKGROUND_KINDS = ("image", "blurred_image", "noise", "solid")


def random_background(
    rng: np.random.Generator, height: int, width: int, pool: list[np.ndarray], config: AugmentConfig
) -> tuple[np.ndarray, str]:
    """A ``(H, W, 3)`` uint8 background and its kind (one of ``BACKGROUND_KINDS``).

    pool: ``(h, w, 3)`` uint8 images to cut backgrounds from ("other images"); when empty the
    image kinds are not drawn. A random square region of a pool image is resized to the output.
    """
    weights = np.asarray(config.background_weights, dtype=np.float64)
    if not pool:
        weights[:2] = 0.0
    kind = BACKGROUND_KINDS[int(rng.choice(4, p=weights / weights.sum()))]
    if kind in ("image", "blurred_image"):
        source = pool[int(rng.integers(len(pool)))]
        side = int(rng.integers(max(1, min(source.shape[:2]) // 3), min(source.shape[:2]) + 1))
        y0 = int(rng.integers(source.shape[0] - side + 1))
        x0 = int(rng.integers(source.shape[1] - side + 1))
        background = cv2.resize(source[y0:y0 + side, x0:x0 + side], (width, height), interpolation=cv2.INTER_LINEAR)
        if rng.random() < 0.5:
            background = background[:, ::-1]
        if kind == "blurred_image":
            background = cv2.GaussianBlur(background, (0, 0), float(rng.uniform(2.0, 8.0)))
        return np.ascontiguousarray(background), kind
    if kind == "noise":
        coarse = rng.integers(0, 256, size=(max(1, height // 8), max(1, width // 8), 3), dtype=np.uint8)
        noise = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
        return noise, kind
    colour = rng.integers(0, 256, size=3).astype(np.uint8)
    return np.broadcast_to(colour, (height, width, 3)).copy(), kind


def composite(foreground: np.ndarray, mask: np.ndarray, background: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8: ``foreground`` where ``mask`` else ``background``."""
    return np.where(mask[..., None], foreground, background)


def photometric(rng: np.random.Generator, rgb: np.ndarray, config: AugmentConfig) -> np.ndarray:
    """Colour/lighting jitter, optional blur, sensor noise and JPEG round trip of a uint8 image.

    Order: one affine colour transform (per-channel gain = lighting colour, brightness, contrast
    about the mean grey, saturation about each pixel's grey), gamma (lookup table), Gaussian blur,
    Gaussian sensor noise, JPEG. Returns a new ``(H, W, 3)`` uint8 array.
    """
    gain = rng.uniform(*config.gain, size=3) * rng.uniform(*config.brightness)
    contrast = rng.uniform(*config.contrast)
    saturation = rng.uniform(*config.saturation)
    grey = np.full((3, 3), 1.0 / 3.0)
    colour = contrast * (saturation * np.eye(3) + (1.0 - saturation) * grey) @ np.diag(gain)
    mean = float(np.mean(cv2.mean(rgb)[:3]))
    offset = (1.0 - contrast) * float(np.mean(gain)) * mean
    out = cv2.transform(rgb, np.concatenate([colour, np.full((3, 1), offset)], axis=1))
    gamma = rng.uniform(*config.gamma)
    out = cv2.LUT(out, np.clip(255.0 * (np.arange(256) / 255.0) ** gamma + 0.5, 0, 255).astype(np.uint8))
    if rng.random() < config.blur_probability:
        out = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(*config.blur_sigma_px)))
    if rng.random() < config.noise_probability:
        noise = rng.standard_normal(out.shape, dtype=np.float32) * np.float32(255.0 * rng.uniform(*config.noise_std))
        out = np.clip(out + noise + np.float32(0.5), 0, 255).astype(np.uint8)
    if rng.random() < config.jpeg_probability:
        quality = int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1))
        ok, encoded = cv2.imencode(".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise RuntimeError("OpenCV failed to JPEG-encode an augmented image")
        out = cv2.imdecode(encoded, cv2.IMREAD_COLOR)[..., ::-1]
    return np.ascontiguousarray(out)


def augment_frames(
    rng: np.random.Generator, frames: np.ndarray, masks: np.ndarray, pool: list[np.ndarray], config: AugmentConfig
) -> np.ndarray:
    """Augment a ``(T, H, W, 3)`` uint8 sequence with ``(T, H, W)`` bool face masks.

    One background (kind and image) and one photometric draw for the whole sequence, so frames
    stay consistent; returns a new ``(T, H, W, 3)`` uint8 array.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    if masks.shape != frames.shape[:3]:
        raise ValueError(f"masks must have shape {frames.shape[:3]}, got {masks.shape}")
    background, _ = random_background(rng, frames.shape[1], frames.shape[2], pool, config)
    state = rng.bit_generator.state
    out = np.empty_like(frames)
    for index, (frame, mask) in enumerate(zip(frames, masks)):
        rng.bit_generator.state = state
        out[index] = photometric(rng, composite(frame, mask, background), config)
    return out
