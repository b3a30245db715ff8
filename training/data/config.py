"""Typed configuration of the data engine (YAML via ``faceanything_ros.config.load_yaml`` / ``save_yaml``).

Angles in degrees, distances in metres, focal lengths in pixels *equivalent at 256 px* (a focal
length ``f`` at output size ``S`` is ``f * 256 / S`` equivalent), image sizes in pixels.
"""
from __future__ import annotations

from dataclasses import dataclass, field

REFERENCE_SIZE = 256  # output size (pixels) at which focal lengths are quoted ("px equivalent")


def _check_range(name: str, bounds: tuple[float, float], low: float | None = None) -> None:
    """Raise ``ValueError`` unless ``bounds`` is an ordered ``(min, max)`` pair (above ``low``)."""
    if len(bounds) != 2 or not bounds[0] <= bounds[1]:
        raise ValueError(f"{name} must be an ordered (min, max) pair, got {bounds}")
    if low is not None and not bounds[0] > low:
        raise ValueError(f"{name} must be above {low}, got {bounds}")


@dataclass(frozen=True)
class CameraSamplerConfig:
    """Ranges of novel cameras orbiting the face (see ``training.data.cameras``).

    yaw/pitch/roll: degrees about the face (0 = looking at the face frontally, upright);
    distance_m: camera centre to face centre (metres); focal_equivalent_px: focal length at
    256 px output; face_fill: face diameter / image side (how large the face appears);
    principal_point_jitter: max principal-point offset from the image centre, as a fraction of
    the image side; trajectory_span: a sequence's camera moves from one draw towards a second draw
    by this fraction (0 = static camera, 1 = all the way), so consecutive frames stay close.
    """

    yaw_deg: tuple[float, float] = (-40.0, 40.0)
    pitch_deg: tuple[float, float] = (-25.0, 25.0)
    roll_deg: tuple[float, float] = (-15.0, 15.0)
    distance_m: tuple[float, float] = (0.3, 1.5)
    focal_equivalent_px: tuple[float, float] = (300.0, 2000.0)
    face_fill: tuple[float, float] = (0.45, 0.95)
    principal_point_jitter: float = 0.08
    trajectory_span: float = 0.3

    def __post_init__(self) -> None:
        for name in ("yaw_deg", "pitch_deg", "roll_deg"):
            _check_range(name, getattr(self, name))
        _check_range("distance_m", self.distance_m, low=0.0)
        _check_range("focal_equivalent_px", self.focal_equivalent_px, low=0.0)
        _check_range("face_fill", self.face_fill, low=0.0)
        if not 0.0 <= self.trajectory_span <= 1.0:
            raise ValueError(f"trajectory_span must be in [0, 1], got {self.trajectory_span}")
        if not 0.0 <= self.principal_point_jitter < 0.5:
            raise ValueError(f"principal_point_jitter must be in [0, 0.5), got {self.principal_point_jitter}")


@dataclass(frozen=True)
class AugmentConfig:
    """Image-only augmentations (ground truth is never touched), each applied with a probability.

    background_weights: relative odds of (other image, blurred other image, noise, solid colour).
    brightness/contrast/saturation: multiplicative factor ranges; gain: per-channel lighting gain
    range; gamma: range; blur_sigma_px: Gaussian blur sigma range (pixels); noise_std: sensor noise
    std range (fraction of 255); jpeg_quality: JPEG quality range (OpenCV 0-100).
    """

    background_weights: tuple[float, float, float, float] = (0.5, 0.2, 0.15, 0.15)
    brightness: tuple[float, float] = (0.7, 1.3)
    contrast: tuple[float, float] = (0.7, 1.3)
    saturation: tuple[float, float] = (0.6, 1.4)
    gain: tuple[float, float] = (0.85, 1.15)
    gamma: tuple[float, float] = (0.8, 1.25)
    blur_probability: float = 0.3
    blur_sigma_px: tuple[float, float] = (0.3, 1.8)
    noise_probability: float = 0.5
    noise_std: tuple[float, float] = (0.0, 0.04)
    jpeg_probability: float = 0.5
    jpeg_quality: tuple[int, int] = (35, 95)

    def __post_init__(self) -> None:
        if len(self.background_weights) != 4 or min(self.background_weights) < 0 or sum(self.background_weights) <= 0:
            raise ValueError(f"background_weights must be 4 non-negative weights with a positive sum, got {self.background_weights}")
        for name in ("brightness", "contrast", "saturation", "gain", "gamma", "blur_sigma_px"):
            _check_range(name, getattr(self, name), low=0.0)
        _check_range("noise_std", self.noise_std)
        _check_range("jpeg_quality", self.jpeg_quality)
        for name in ("blur_probability", "noise_probability", "jpeg_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")


@dataclass(frozen=True)
class SplitConfig:
    """Fractions of identities in the validation and test splits (the rest is train)."""

    val_fraction: float = 0.05
    test_fraction: float = 0.05

    def __post_init__(self) -> None:
        if min(self.val_fraction, self.test_fraction) < 0 or self.val_fraction + self.test_fraction >= 1:
            raise ValueError(f"val/test fractions must be >= 0 with sum < 1, got {self.val_fraction}, {self.test_fraction}")


@dataclass(frozen=True)
class DataEngineConfig:
    """Everything ``faceanything-data build`` needs besides its paths.

    image_size: output side (pixels); seq_len: frames per sample (T); frame_stride: video frames
    between consecutive sample frames; views_per_label: samples rendered from each labelled source
    frame/clip (amortises the face-mesh labelling); tracks_per_sample: correspondence queries per
    sequence; samples_per_shard: samples in one shard file; seed: base random seed.
    """

    image_size: int = 256
    seq_len: int = 1
    frame_stride: int = 2
    views_per_label: int = 8
    tracks_per_sample: int = 256
    samples_per_shard: int = 64
    seed: int = 0
    cameras: CameraSamplerConfig = field(default_factory=CameraSamplerConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    splits: SplitConfig = field(default_factory=SplitConfig)

    def __post_init__(self) -> None:
        for name in ("image_size", "seq_len", "frame_stride", "views_per_label", "samples_per_shard"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.image_size < 16:
            raise ValueError(f"image_size must be >= 16 pixels, got {self.image_size}")
        if self.tracks_per_sample < 0:
            raise ValueError(f"tracks_per_sample must be >= 0, got {self.tracks_per_sample}")

