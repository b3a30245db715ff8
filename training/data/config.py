"""Typed configuration of the data engine (YAML via ``faceanything_ros.config.load_yaml`` / ``save_yaml``).

Angles in degrees, distances in metres, image sizes in pixels.
"""
from __future__ import annotations

from dataclasses import dataclass, field


def _check_range(name: str, bounds: tuple[float, float], low: float | None = None) -> None:
    """Raise ``ValueError`` unless ``bounds`` is an ordered ``(min, max)`` pair (above ``low``)."""
    if len(bounds) != 2 or not bounds[0] <= bounds[1]:
        raise ValueError(f"{name} must be an ordered (min, max) pair, got {bounds}")
    if low is not None and not bounds[0] > low:
        raise ValueError(f"{name} must be above {low}, got {bounds}")


@dataclass(frozen=True)
class CameraSamplerConfig:
    """Ranges of the cameras that see the face (see ``training.data.cameras``).

    yaw/pitch/roll: degrees about the face (0 = looking at the face frontally, upright);
    distance_m: camera centre to face centre (metres, drawn log-uniformly); hfov_deg: horizontal
    field of view of the full frame; frame_widths / frame_aspects: full-frame widths (pixels) and
    height/width ratios drawn from; frame_margin: the face centre lies at least this fraction of
    the frame from its borders (0 = anywhere, faces may be cut by the border); crop_scale: crop
    side / projected face-mesh box side (the mesh box is ~1.2x a detector box, so 1.5 here is the
    predictor's 1.8); crop_shift: max crop-centre offset as a fraction of the crop side (detector
    box jitter); trajectory_span: a sequence's camera moves from one draw towards a second draw by
    this fraction (0 = static camera, 1 = all the way), so consecutive frames stay close;
    source_view_probability: chance that a sample is seen by the source camera itself (real pixels,
    hair, neck and background included, and for videos the real head motion) instead of a novel
    camera; only ``crop_scale`` and ``crop_shift`` apply to such samples.
    """

    yaw_deg: tuple[float, float] = (-40.0, 40.0)
    pitch_deg: tuple[float, float] = (-25.0, 25.0)
    roll_deg: tuple[float, float] = (-15.0, 15.0)
    distance_m: tuple[float, float] = (0.3, 3.0)
    hfov_deg: tuple[float, float] = (30.0, 100.0)
    frame_widths: tuple[int, ...] = (640, 960, 1280, 1920)
    frame_aspects: tuple[float, ...] = (0.75, 0.5625)
    frame_margin: float = 0.02
    crop_scale: tuple[float, float] = (1.3, 1.7)
    crop_shift: float = 0.06
    trajectory_span: float = 0.3
    source_view_probability: float = 0.0

    def __post_init__(self) -> None:
        for name in ("yaw_deg", "pitch_deg", "roll_deg"):
            _check_range(name, getattr(self, name))
        _check_range("distance_m", self.distance_m, low=0.0)
        _check_range("hfov_deg", self.hfov_deg, low=0.0)
        if self.hfov_deg[1] >= 180.0:
            raise ValueError(f"hfov_deg must stay below 180 degrees, got {self.hfov_deg}")
        _check_range("crop_scale", self.crop_scale, low=0.0)
        if not self.frame_widths or min(self.frame_widths) < 16 or not self.frame_aspects or min(self.frame_aspects) <= 0:
            raise ValueError(f"frame_widths must be >= 16 px and frame_aspects > 0, got {self.frame_widths}, {self.frame_aspects}")
        if not 0.0 <= self.frame_margin < 0.5:
            raise ValueError(f"frame_margin must be in [0, 0.5), got {self.frame_margin}")
        if not 0.0 <= self.crop_shift < 0.5:
            raise ValueError(f"crop_shift must be in [0, 0.5), got {self.crop_shift}")
        if not 0.0 <= self.trajectory_span <= 1.0:
            raise ValueError(f"trajectory_span must be in [0, 1], got {self.trajectory_span}")
        if not 0.0 <= self.source_view_probability <= 1.0:
            raise ValueError(f"source_view_probability must be in [0, 1], got {self.source_view_probability}")


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentations, each applied with a probability; only occluders change the ground truth.

    background_weights: relative odds of (other image, blurred other image, noise, solid colour).
    brightness/contrast/saturation: multiplicative factor ranges; gain: per-channel lighting gain
    range; gamma: range; blur_sigma_px: Gaussian blur sigma range (pixels); noise_std: sensor noise
    std range (fraction of 255); jpeg_quality: JPEG quality range (OpenCV 0-100);
    occluder_probability: chance of one occluder (hand-like ellipse or bar) whose pixels leave the
    ground truth.
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
    occluder_probability: float = 0.3

    def __post_init__(self) -> None:
        if len(self.background_weights) != 4 or min(self.background_weights) < 0 or sum(self.background_weights) <= 0:
            raise ValueError(f"background_weights must be 4 non-negative weights with a positive sum, got {self.background_weights}")
        for name in ("brightness", "contrast", "saturation", "gain", "gamma", "blur_sigma_px"):
            _check_range(name, getattr(self, name), low=0.0)
        _check_range("noise_std", self.noise_std)
        _check_range("jpeg_quality", self.jpeg_quality)
        for name in ("blur_probability", "noise_probability", "jpeg_probability", "occluder_probability"):
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

