"""Typed configuration for every part of the pipeline, with YAML in/out.

The CLI, the Python API and the ROS node's parameters all map onto these dataclasses,
so one setting has one name and one meaning everywhere.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the Face Anything network (everything needed to rebuild it).

    ``depth`` attention blocks alternate frame-local (even index) and global (odd index)
    attention; the DPT head reads the token maps after the blocks in ``intermediate_layers``.
    """

    size: str = "tiny"
    embed_dim: int = 192
    depth: int = 12
    num_heads: int = 3
    mlp_ratio: float = 4.0
    patch_size: int = 16
    image_size: int = 224  # square model input side, pixels (multiple of patch_size)
    intermediate_layers: tuple[int, ...] = (2, 5, 8, 11)
    head_features: int = 32  # channels of the DPT fusion path
    head_out_channels: tuple[int, ...] = (16, 32, 64, 64)  # DPT reassemble channels per level

    def __post_init__(self) -> None:
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}")
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim {self.embed_dim} is not divisible by num_heads {self.num_heads}")
        if len(self.intermediate_layers) != 4 or max(self.intermediate_layers) >= self.depth:
            raise ValueError(f"intermediate_layers {self.intermediate_layers} must be 4 block indices < depth {self.depth}")
        if len(self.head_out_channels) != 4:
            raise ValueError("head_out_channels needs one entry per DPT level (4)")

    @classmethod
    def preset(cls, size: str, **overrides: Any) -> "ModelConfig":
        """The named model size (``tiny`` ~6M, ``small`` ~22M, ``base`` ~86M backbone)."""
        if size not in MODEL_SIZES:
            raise ValueError(f"unknown model size {size!r}; choose one of {sorted(MODEL_SIZES)}")
        return cls(**{**MODEL_SIZES[size], "size": size, **overrides})


MODEL_SIZES: dict[str, dict[str, Any]] = {
    # tiny's heads are slim (3 heads ~0.8M together) so it runs in real time on a 2-core CPU
    "tiny": dict(embed_dim=192, depth=12, num_heads=3, head_features=32, head_out_channels=(16, 32, 64, 64)),
    # small/base use Depth-Anything-V2's small/base DPT settings, so heads stay below the backbone
    "small": dict(embed_dim=384, depth=12, num_heads=6, head_features=64, head_out_channels=(48, 96, 192, 384)),
    "base": dict(embed_dim=768, depth=12, num_heads=12, head_features=128, head_out_channels=(96, 192, 384, 768)),
}


@dataclass
class DetectorConfig:
    """Face detection and cropping (``faceanything_ros.io``)."""

    min_confidence: float = 0.5  # detector score threshold, [0, 1]
    max_faces: int = 1  # faces reconstructed per frame, largest first
    crop_scale: float = 1.8  # square crop side / detected box side
    long_range: bool = True  # mediapipe full-range model (faces up to ~5 m) instead of the 2 m one
    # detect every N-th frame of a video and track the boxes in between (1 = every frame); None = every frame of
    # unrelated images, every STREAM_REDETECT_EVERY-th of a video (the CLI and the evaluation; the node has its own)
    redetect_every: int | None = None

    def detection_interval(self, video: bool) -> int:
        """Frames from one face detection to the next: ``redetect_every``, or when it is None
        ``STREAM_REDETECT_EVERY`` for the frames of a video in order and 1 for unrelated images."""
        if self.redetect_every is not None:
            return self.redetect_every
        return STREAM_REDETECT_EVERY if video else 1


# Detection interval in a video stream: tracked boxes in between are steadier crops than a detection per frame
# (the model's dense tracks on the shared videos jitter 2.5 -> 2.2 px) and cost a fraction of it.
STREAM_REDETECT_EVERY = 5


@dataclass
class TrackerConfig:
    """Canonical nearest-neighbour tracker, per face (``faceanything_ros.tracking``).

    A track is visible when its canonical match distance, the facing cosine of its rotated template
    normal and the depth step at its pixel all pass; a visible track stays visible under the
    ``max_*``/``min_*`` bounds, an invisible one becomes visible only under the stricter ``enter_*``
    ones (hysteresis).
    """

    num_tracks: int = 256  # tracks per face: template points (queries=canonical) or grid nodes (queries=pixels)
    # canonical: template surface points, id k = the same facial point everywhere | pixels: a grid on a face's first frame
    queries: str = "canonical"
    max_distance: float = 0.05  # canonical distance (after refinement) above which a visible track turns invisible
    enter_distance: float = 0.03  # canonical distance at or below which an invisible track may turn visible
    min_facing: float = 0.0  # cosine(normal, direction to camera) below which a visible track turns invisible
    enter_facing: float = 0.1  # facing cosine at or above which an invisible track may turn visible
    max_depth_step: float = 0.02  # metres off its face neighbourhood (tracking.visibility.depth_step): not visible
    min_confidence: float = 1.0  # canonical confidence (>= 1; 1 = keep all) below which a pixel is not searched
    refine: bool = True  # sub-pixel refinement by a local linear fit of the canonical map
    search_radius: int = 3  # pixels around a visible track's last pixel searched first; 0 = exact global search
    filter: bool = False  # One-Euro filter of the visible tracks' pixels and points (off for evaluation)
    filter_min_cutoff_hz: float = 1.0  # One-Euro cutoff of a still track, Hz
    filter_beta_pixels: float = 0.05  # One-Euro cutoff increase per pixel/s of image speed, Hz
    filter_beta_metres: float = 20.0  # One-Euro cutoff increase per m/s of 3-D speed, Hz
    filter_rate_hz: float = 30.0  # frame rate assumed by the filter when a step has no time stamp
    face_min_iou: float = 0.1  # box overlap (IoU) a face needs with a tracked face to continue its tracks
    face_min_consistency: float = 0.3  # fraction of a face's visible tracks still shown at their box-moved last pixel
    face_max_missing: int = 30  # frames a face may go unseen before its tracks are dropped


TRACK_QUERIES = ("canonical", "pixels")


@dataclass
class FaceMeshConfig:
    """Face-mesh pseudo-labels and the mesh reference method (``faceanything_ros.canonical``, ``reference``)."""

    max_faces: int = 1  # faces labelled per frame, largest first
    min_confidence: float = 0.5  # mediapipe FaceMesh detection score threshold, [0, 1]
    default_fov_deg: float = 60.0  # horizontal field of view assumed when no intrinsics are given, degrees
    face_scale: float = 1.0  # metric face size / template size (unobservable from one view; 1 = mean face, 63 mm IPD)
    # the mesh reference's maps are rasterised at most this many pixels a side, then resampled into a larger face's
    # image region (bilinear), so a face close to the camera costs no more than one of this size
    max_raster_side: int = 192


METRIC_DEPTHS = ("face_size", "rays")  # what sets the model's metric depth scale (PredictorConfig.metric_depth)


@dataclass
class PredictorConfig:
    """Frames -> reconstructions (``faceanything_ros.predictor``)."""

    detector: DetectorConfig = field(default_factory=DetectorConfig)
    min_depth_confidence: float = 1.0  # depth confidence (>= 1; 1 = keep all) below which a pixel leaves the cloud
    mask_threshold: float = 0.5  # face-mask probability threshold, [0, 1]
    default_fov_deg: float = 60.0  # horizontal field of view assumed until the rays of a face give a focal length
    focal_history: int = 60  # frames whose focal lengths (from rays) the running estimate takes the median of
    # metric depth: face_size = the face has the canonical template's size (geometry.face_scale) | rays = the
    # network's depth for the focal its predicted rays imply, rescaled to the camera's focal
    metric_depth: str = "face_size"
    # average the network's outputs on each crop with those on its mirror image (model.flip_average): two
    # network passes per crop for lower canonical, depth and tracking error (figures in the model card);
    # NodeConfig's default is off
    flip_average: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.flip_average, bool):
            raise ValueError(f"PredictorConfig.flip_average must be true or false, got {self.flip_average!r}")
        if self.metric_depth not in METRIC_DEPTHS:
            raise ValueError(f"PredictorConfig.metric_depth = {self.metric_depth!r}; choose one of {list(METRIC_DEPTHS)}")


ENGINES = ("auto", "tensorrt", "compile", "torch", "onnx")
METHODS = ("auto", "model", "mesh")  # reconstruction method; auto = a given/bundled model, else mesh
DEPTH_ENCODINGS = ("32FC1", "16UC1")  # ~/depth/image: float metres, or uint16 millimetres (REP 118)
RESEED_POLICIES = ("never", "on_loss", "every_n")
NODE_INPUTS = ("raw", "compressed")
QOS_RELIABILITIES = ("best_effort", "reliable")
CAMERA_MATRICES = ("auto", "K", "P")  # the CameraInfo matrix of the image: K raw, P rectified, auto from the topic
CANONICAL_REGIONS = ("image", "faces")  # ~/canonical: the whole image, or the faces' bounding box only

NODE_RANGES: dict[str, tuple[float, float]] = {
    # inclusive (min, max) of every numeric NodeConfig field; the ROS node's parameter
    # descriptors read these, so the node and the dataclass cannot disagree
    "window": (1, 16),
    "max_rate_hz": (0.0, 1000.0),
    "num_tracks": (1, 100_000),
    "reseed_min_visible": (0.0, 1.0),
    "reseed_every_n": (0, 1_000_000),
    "min_depth_confidence": (1.0, 1000.0),
    "mask_threshold": (0.0, 1.0),
    "track_max_distance": (1e-6, 4.0),
    "track_min_confidence": (1.0, 1000.0),
    "face_min_confidence": (0.0, 1.0),
    "max_faces": (1, 16),
    "cpu_threads": (0, 1024),
    "face_redetect_every": (1, 1000),
    "point_stride": (1, 64),
    "max_points": (0, 10_000_000),
    "qos_depth": (1, 1000),
    "canonical_scale": (0.05, 1.0),
    "expected_rate_hz": (0.0, 1000.0),
    "stale_after_s": (0.1, 3600.0),
    "error_after_failures": (1, 1_000_000),
}
NODE_CHOICES: dict[str, tuple[str, ...]] = {
    "method": METHODS, "engine": ENGINES, "reseed": RESEED_POLICIES, "input": NODE_INPUTS,
    "qos_reliability": QOS_RELIABILITIES, "depth_encoding": DEPTH_ENCODINGS, "camera_matrix": CAMERA_MATRICES,
    "canonical_region": CANONICAL_REGIONS, "metric_depth": METRIC_DEPTHS,
}
# per-output switches (NodeConfig booleans); the node also skips an output nobody subscribes to
NODE_SWITCHES = ("publish_depth", "publish_points", "publish_canonical", "publish_tracks", "publish_markers",
                 "publish_faces", "publish_tf")
NODE_BOOLEANS = (*NODE_SWITCHES, "flip_average")  # every NodeConfig boolean


@dataclass
class NodeConfig:
    """The streaming processor and ROS node: one flat field per ROS parameter (same names).

    Flat on purpose (ROS parameters are flat names); the model-related fields map onto
    ``PredictorConfig`` / ``TrackerConfig`` through ``predictor_config()`` / ``tracker_config()``,
    the only place the two meet. Numeric ranges are ``NODE_RANGES``, string choices
    ``NODE_CHOICES``, booleans ``NODE_BOOLEANS``.
    """

    method: str = "auto"  # model | mesh | auto (the given or bundled model, else the face-mesh method)
    model: str = ""  # checkpoint path; "" = the bundled one
    engine: str = "auto"  # auto|tensorrt|compile|torch|onnx
    device: str = "cpu"  # torch device, e.g. "cpu", "cuda", "cuda:1"
    cpu_threads: int = 1  # intra-op threads of torch and ONNX Runtime in this process; 0 = leave torch's (one per core)
    window: int = 1  # frames the model sees jointly: the newest + window-1 previous ones as context
    max_rate_hz: float = 0.0  # processed frames per second at most; 0 = as fast as the model runs
    num_tracks: int = TrackerConfig.num_tracks  # query grid size when (re)seeding tracks
    reseed: str = "on_loss"  # never | on_loss (visible fraction < reseed_min_visible) | every_n frames
    reseed_min_visible: float = 0.3  # fraction of visible tracks, [0, 1], below which on_loss re-seeds
    reseed_every_n: int = 0  # processed frames between re-seeds for reseed=every_n (>= 1 then)
    min_depth_confidence: float = PredictorConfig.min_depth_confidence  # depth confidence (>= 1; 1 = keep all) for cloud points
    mask_threshold: float = PredictorConfig.mask_threshold  # face-mask probability threshold, [0, 1]
    metric_depth: str = PredictorConfig.metric_depth  # face_size | rays: what sets the model's metric depth scale
    # the model's outputs averaged with those on the mirrored crop (PredictorConfig.flip_average). Off in the node:
    # the second network pass doubles the network's time, which on the 2-core CPU costs the camera rate
    flip_average: bool = False
    track_max_distance: float = TrackerConfig.max_distance  # canonical NN distance above which a track is not visible
    track_min_confidence: float = TrackerConfig.min_confidence  # canonical confidence (>= 1; 1 = all) of searched pixels
    face_min_confidence: float = DetectorConfig.min_confidence  # face detector score threshold, [0, 1]
    max_faces: int = DetectorConfig.max_faces  # faces reconstructed per frame, largest first
    face_redetect_every: int = STREAM_REDETECT_EVERY  # face detection every N-th frame, boxes tracked in between (lost: detected at once)
    point_stride: int = 1  # keep every n-th pixel row and column in the published point cloud
    max_points: int = 20_000  # ~/points holds about this many points at most (a larger stride on big faces); 0 = no cap
    input: str = "raw"  # raw (sensor_msgs/Image) | compressed (sensor_msgs/CompressedImage)
    qos_reliability: str = "best_effort"  # sensor-data QoS by default
    qos_depth: int = 5  # subscription history depth, as sensor-data QoS (the worker keeps only the newest frame)
    camera_matrix: str = "auto"  # CameraInfo K (raw image) | P (rectified) | auto: P for an image_rect* topic
    frame_id: str = ""  # frame_id of every output; "" = the input image's
    depth_encoding: str = "32FC1"  # ~/depth/image: 32FC1 metres (NaN = none) | 16UC1 millimetres (0 = none)
    canonical_scale: float = 1.0  # ~/canonical image size / input image size, (0, 1] (nearest-neighbour)
    canonical_region: str = "faces"  # ~/canonical covers the faces' bounding box (~/canonical/camera_info roi) | the image
    publish_depth: bool = True  # ~/depth/image + ~/depth/camera_info
    publish_points: bool = True  # ~/points
    publish_canonical: bool = True  # ~/canonical
    publish_tracks: bool = True  # ~/tracks
    publish_markers: bool = True  # ~/track_markers
    publish_faces: bool = True  # ~/faces
    publish_tf: bool = True  # face_<id> frames on /tf (when tf2_msgs is installed)
    expected_rate_hz: float = 0.0  # diagnostics WARN below this many processed frames/s; 0 = no check
    stale_after_s: float = 5.0  # diagnostics STALE when no image arrived for this long, seconds
    error_after_failures: int = 10  # diagnostics ERROR after this many failed frames in a row

    def __post_init__(self) -> None:
        for name, (low, high) in NODE_RANGES.items():
            value = getattr(self, name)
            integer = isinstance(low, int) and isinstance(high, int)
            if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
                raise ValueError(f"NodeConfig.{name} must be {'an integer' if integer else 'a number'}, got {value!r}")
            if not low <= value <= high:
                raise ValueError(f"NodeConfig.{name} = {value} is outside its range [{low}, {high}]")
        for name in NODE_BOOLEANS:
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"NodeConfig.{name} must be true or false, got {getattr(self, name)!r}")
        if not isinstance(self.frame_id, str):
            raise ValueError(f"NodeConfig.frame_id must be a string, got {self.frame_id!r}")
        for name, choices in NODE_CHOICES.items():
            if getattr(self, name) not in choices:
                raise ValueError(f"NodeConfig.{name} = {getattr(self, name)!r}; choose one of {list(choices)}")
        if self.reseed == "every_n" and self.reseed_every_n < 1:
            raise ValueError("NodeConfig.reseed = 'every_n' needs reseed_every_n >= 1")

    def predictor_config(self) -> PredictorConfig:
        """The ``PredictorConfig`` these settings mean (detector fields not named here keep defaults)."""
        return PredictorConfig(
            detector=DetectorConfig(min_confidence=self.face_min_confidence, max_faces=self.max_faces,
                                    redetect_every=self.face_redetect_every),
            min_depth_confidence=self.min_depth_confidence,
            mask_threshold=self.mask_threshold,
            metric_depth=self.metric_depth,
            flip_average=self.flip_average,
        )

    def tracker_config(self) -> TrackerConfig:
        """The ``TrackerConfig`` these settings mean."""
        return TrackerConfig(num_tracks=self.num_tracks, max_distance=self.track_max_distance,
                             enter_distance=min(TrackerConfig.enter_distance, self.track_max_distance),
                             min_confidence=self.track_min_confidence)


def to_dict(config: Any) -> dict[str, Any]:
    """A plain dict (tuples as lists) of a config dataclass, for YAML/JSON."""
    return _plain(dataclasses.asdict(config))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build dataclass ``cls`` from a dict, recursing into nested config dataclasses.

    Unknown keys raise ``ValueError`` naming them, so a typo in a YAML file is never ignored.
    """
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__} expects a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {unknown}; known: {sorted(fields)}")
    types = typing.get_type_hints(cls)  # the fields' annotations resolved in cls's own module
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        if dataclasses.is_dataclass(types[name]):
            kwargs[name] = from_dict(types[name], value)
        elif isinstance(value, list):
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    return cls(**kwargs)


def load_yaml(cls: type[T], path: str | Path) -> T:
    """Read a config dataclass from a YAML file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    return from_dict(cls, yaml.safe_load(path.read_text()) or {})


def save_yaml(config: Any, path: str | Path) -> None:
    """Write a config dataclass to a YAML file."""
    Path(path).write_text(yaml.safe_dump(to_dict(config), sort_keys=False))

