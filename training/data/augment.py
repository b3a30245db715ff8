"""Augmentations of rendered samples: occluders, backgrounds, resolution and photometric jitter.

Every function takes a seeded ``numpy.random.Generator``. Only ``occluder_masks`` concerns ground
truth: the generator removes its pixels from the views' masks (``RenderedView.restricted``) before
anything else, and ``augment_frames`` later paints the occluders into the image. Images are
``(H, W, 3)`` uint8 RGB; masks ``(H, W)`` bool.
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


def occluder_masks(rng: np.random.Generator, frames: int, size: int, config: AugmentConfig) -> np.ndarray:
    """``(T, S, S)`` bool occluder pixels (all False with probability ``1 - occluder_probability``).

    One occluder per sample, an ellipse (a hand, a cup) or a long bar (a microphone, a pen) over
    the crop's central region, drifting linearly by up to ``size / 10`` pixels over the sequence.
    """
    masks = np.zeros((frames, size, size), dtype=bool)
    if rng.random() >= config.occluder_probability:
        return masks
    centre = rng.uniform(0.2, 0.8, size=2) * size
    drift = rng.uniform(-0.1, 0.1, size=2) * size
    angle = float(rng.uniform(0.0, 180.0))
    if rng.random() < 0.6:
        axes = rng.uniform(0.12, 0.3, size=2) * size
    else:
        axes = np.array([rng.uniform(0.3, 0.7), rng.uniform(0.03, 0.08)]) * size
    canvas = np.zeros((size, size), dtype=np.uint8)
    for t in range(frames):
        canvas[:] = 0
        step = t / max(frames - 1, 1)
        at = centre + step * drift
        cv2.ellipse(canvas, (round(at[0]), round(at[1])), (max(1, round(axes[0])), max(1, round(axes[1]))),
                    angle, 0, 360, 1, thickness=-1)
        masks[t] = canvas.astype(bool)
    return masks


def _occluder_texture(rng: np.random.Generator, size: int, pool: list[np.ndarray]) -> np.ndarray:
    """``(S, S, 3)`` uint8 fill of an occluder: a pool image region, or a skin-like or random
    colour with soft shading."""
    if pool and rng.random() < 0.5:
        source = pool[int(rng.integers(len(pool)))]
        return cv2.resize(source, (size, size), interpolation=cv2.INTER_LINEAR)
    colour = np.array([rng.uniform(120, 240), rng.uniform(80, 190), rng.uniform(60, 170)]) if rng.random() < 0.6 \
        else rng.uniform(0, 255, size=3)
    shade = np.linspace(rng.uniform(0.6, 1.0), rng.uniform(0.6, 1.0), size)[None, :, None]
    return np.clip(colour * shade * np.ones((size, 1, 1)), 0, 255).astype(np.uint8)


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
    rng: np.random.Generator, frames: np.ndarray, keep: np.ndarray, pool: list[np.ndarray], config: AugmentConfig,
    occluders: np.ndarray | None = None, source_sides: list[float | None] | None = None,
) -> np.ndarray:
    """Augment a ``(T, H, W, 3)`` uint8 sequence; ``keep`` (T, H, W) bool marks the rendered pixels
    (face and context) that stay in front of the background.

    One background (kind and image), occluder texture and photometric draw for the whole sequence,
    so frames stay consistent. occluders: ``(T, H, W)`` bool pixels painted over (from
    ``occluder_masks``), or None; source_sides: per frame, the crop's side in camera pixels (a crop
    smaller than the output was upsampled at run time, so the image is resampled down to it and
    back up), or None. Returns a new ``(T, H, W, 3)`` uint8 array.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    if keep.shape != frames.shape[:3]:
        raise ValueError(f"keep must have shape {frames.shape[:3]}, got {keep.shape}")
    size = frames.shape[1]
    background, _ = random_background(rng, frames.shape[1], frames.shape[2], pool, config)
    texture = _occluder_texture(rng, max(frames.shape[1:3]), pool)[:frames.shape[1], :frames.shape[2]]
    state = rng.bit_generator.state
    out = np.empty_like(frames)
    for index, (frame, mask) in enumerate(zip(frames, keep)):
        rng.bit_generator.state = state
        image = composite(frame, mask, background)
        if occluders is not None:
            image = composite(texture, occluders[index], image)
        side = None if source_sides is None else source_sides[index]
        if side is not None and side < size:
            low = max(4, round(side))
            image = cv2.resize(cv2.resize(image, (low, low), interpolation=cv2.INTER_AREA), (size, size),
                               interpolation=cv2.INTER_LINEAR)
        out[index] = photometric(rng, image, config)
    return out
