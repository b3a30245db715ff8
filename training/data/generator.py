"""Source files (or a pack of labelled sources) -> training samples: label, sample cameras, re-render, track, augment.

A *task* is one source (an image, or a clip of ``seq_len`` video frames ``frame_stride`` apart)
rendered ``views_per_label`` times with independent random camera trajectories; the expensive
face-mesh labelling is done once per task. Every task has its own seed, so a dataset is
reproducible whatever the number of worker processes. Images give sequences too: the same
labelled frame seen by a moving camera (a rigid face). Failures (no face, too little face in view)
are returned as skip records with their reason and the number of samples they cost, never dropped
silently; the builder plans replacement tasks for them.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from faceanything_ros.canonical.space import CanonicalSpace
from faceanything_ros.data.format import SOURCE_VIEW_KEY
from faceanything_ros.io.frames import IMAGE_EXTENSIONS, read_image
from training.data.augment import augment_frames, occluder_masks
from training.data.cameras import Camera, CameraSampler
from training.data.config import DataEngineConfig
from training.data.rerender import RenderedView, SourceFrame, source_frame
from training.data.sequence import Tracks, render_sequence, sample_tracks
from training.data.sources import SourceCatalog
from training.data.splits import source_key, split_of

MIN_MASK_FRACTION = 0.03  # a rendered frame needs at least this fraction of its pixels on textured face
CAMERA_ATTEMPTS = 8  # camera trajectories tried per sample before it is skipped
CLIP_ATTEMPTS = 3  # clip start frames tried per video task before it is skipped
BACKGROUND_POOL = 2  # other source images loaded per task as background material
BACKGROUND_SIDE = 256  # background images are downscaled to at most this side (pixels)


@dataclass(frozen=True)
class Task:
    """One unit of work: ``source`` (a path, or a ``pack.SourcePack`` key), its ``record`` (manifest fields),
    ``seed``, ``count`` samples, and ``backgrounds``: other image sources to cut backgrounds from."""

    source: str
    record: dict[str, Any]
    seed: int
    count: int
    backgrounds: tuple[str, ...]


def data_root_of(folder: Path) -> Path:
    """The data root of an images/videos folder: the nearest of itself and its ancestors with a
    ``SOURCES.md`` (licence records); ``FileNotFoundError`` when there is none."""
    folder = folder.resolve()
    for candidate in (folder, *folder.parents):
        if (candidate / "SOURCES.md").is_file():
            return candidate
    raise FileNotFoundError(f"no SOURCES.md in {folder} or any folder above it; every source needs a licence record")


def discover(folder: Path, extensions: tuple[str, ...], config: DataEngineConfig) -> list[tuple[str, dict[str, Any]]]:
    """``(absolute path, record)`` of every file with ``extensions`` under ``folder``, sorted.

    The record holds ``split``, ``source`` (relative to the data root), ``source_root``,
    ``identity``, ``video`` and ``provenance`` (licence) for the manifest.
    """
    if not folder.is_dir():
        raise FileNotFoundError(f"source folder not found: {folder}")
    folder = folder.resolve()  # so paths under a symlinked data folder stay relative to the (resolved) root
    root = data_root_of(folder)
    catalog = SourceCatalog(root)
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in extensions):
        relative = path.relative_to(root).as_posix()
        key = source_key(relative)
        found.append((str(path), {
            "split": split_of(key.identity, config.splits), "source": relative, "source_root": str(root),
            "identity": key.identity, "video": key.video, "provenance": catalog.provenance(relative).as_dict(),
        }))
    if not found:
        raise ValueError(f"no files ending in {', '.join(extensions)} under {folder}")
    return found


def plan_tasks(images: list[tuple[str, dict]], videos: list[tuple[str, dict]], samples: int,
               config: DataEngineConfig) -> list[Task]:
    """Tasks that yield ``samples`` samples in all, spread over the sources in a seeded order
    (videos and images alternate while both last)."""
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    rng = np.random.default_rng(config.seed)
    pools = [list(rng.permutation(len(group))) for group in (images, videos)]
    groups = (images, videos)
    tasks, remaining, turn = [], samples, 0
    while remaining > 0:
        group = turn % 2 if all(groups) else (0 if images else 1)
        turn += 1
        if not pools[group]:
            pools[group] = list(rng.permutation(len(groups[group])))
        index = pools[group].pop()
        path, record = groups[group][index]
        count = min(config.views_per_label, remaining)
        # background candidates: every image but the task's own source, which is images[own] (own =
        # len(images) for a video); candidate i is images[i + (i >= own)] (paths unique, as from discover)
        own = index if group == 0 else len(images)
        others = len(images) - (group == 0)
        chosen = rng.choice(others, min(BACKGROUND_POOL, others), replace=False)
        backgrounds = tuple(images[i + (i >= own)][0] for i in chosen)
        tasks.append(Task(path, record, int(rng.integers(2**63)), count, backgrounds))
        remaining -= count
    return tasks


class FileSources:
    """Source files labelled as they are read: an image, or a clip of ``config.seq_len`` video frames
    ``config.frame_stride`` apart (a random start, ``CLIP_ATTEMPTS`` tries), each frame's largest face
    labelled with the face mesh (``labeler``: ``FaceMeshLabeler``). ``pack.SourcePack`` serves the same
    calls from labels made earlier."""

    def __init__(self, space: CanonicalSpace, config: DataEngineConfig, labeler: Any) -> None:
        self.space, self.config, self.labeler = space, config, labeler

    def frames(self, source: str, rng: np.random.Generator) -> tuple[list[SourceFrame], list[int]]:
        """Labelled source frames (T of them) and their frame indices; ``ValueError`` if no face."""
        seq_len = self.config.seq_len
        if Path(source).suffix.lower() in IMAGE_EXTENSIONS:
            frame = self.label_frame(read_image(source), source)
            return [frame] * seq_len, [0] * seq_len
        capture = cv2.VideoCapture(source)
        try:
            length = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
            span = clip_span(seq_len, self.config.frame_stride)
            if length < span:
                raise ValueError(f"video has {length} frames, fewer than a clip of {span}")
            error = ValueError("no clip tried")
            for _ in range(CLIP_ATTEMPTS):
                start = int(rng.integers(length - span + 1))
                indices = [start + i * self.config.frame_stride for i in range(seq_len)]
                try:
                    return [self.label_frame(read_video_frame(capture, i, source), f"{source} frame {i}")
                            for i in indices], indices
                except ValueError as failure:
                    error = failure
            raise error
        finally:
            capture.release()

    def image(self, source: str) -> np.ndarray:
        """``(H, W, 3)`` uint8 RGB of an image source (background material)."""
        return read_image(source)

    def label_frame(self, rgb: np.ndarray, name: str) -> SourceFrame:
        """The largest face of a (H, W, 3) uint8 frame as a ``SourceFrame``; ``ValueError`` naming ``name`` if none."""
        label = self.largest_face(rgb, name)
        return source_frame(rgb, label.vertices, label.intrinsics, label.rotation, self.space.topology)

    def largest_face(self, rgb: np.ndarray, name: str) -> Any:
        """The ``MeshLabel`` of the largest face of a (H, W, 3) uint8 frame; ``ValueError`` naming ``name`` if none."""
        labels = self.labeler.label(rgb)
        if not labels:
            raise ValueError(f"no face found in {name}")
        return labels[0]


class SampleGenerator:
    """Runs ``Task``s: labelled frames from ``sources`` (``FileSources`` or ``pack.SourcePack``), the camera sampler."""

    def __init__(self, space: CanonicalSpace, config: DataEngineConfig, sources: Any) -> None:
        self.space = space
        self.config = config
        self.sources = sources
        self.sampler = CameraSampler(config.cameras)
        self.canonical = space.canonical_template

    def run(self, task: Task) -> tuple[list[tuple[dict[str, np.ndarray], dict[str, Any]]], list[dict[str, Any]]]:
        """``(samples, skips)``: samples as ``(arrays, manifest record)``; skips as ``{source, reason}``."""
        rng = np.random.default_rng(task.seed)
        try:
            frames, indices = self.sources.frames(task.source, rng)
        except ValueError as error:
            return [], [{"source": task.record["source"], "reason": str(error), "samples": task.count}]
        pool = [_downscaled(self.sources.image(source)) for source in task.backgrounds]
        samples, skips = [], []
        for _ in range(task.count):
            try:
                arrays, source_view = self.render(rng, frames, pool)
            except ValueError as error:
                skips.append({"source": task.record["source"], "reason": str(error), "samples": 1})
                continue
            samples.append((arrays, {**task.record, "frames": indices, SOURCE_VIEW_KEY: source_view}))
        return samples, skips

    def render(self, rng: np.random.Generator, frames: list[SourceFrame],
               pool: list[np.ndarray]) -> tuple[dict[str, np.ndarray], bool]:
        """One sample's arrays (``shards.SAMPLE_ARRAYS``) from T labelled frames and whether the source
        camera itself took it (``format.SOURCE_VIEW_KEY``); ``ValueError`` when no camera trajectory
        in ``CAMERA_ATTEMPTS`` shows enough face in every frame.

        Ground truth is limited to crop pixels inside the camera frame and not behind the occluder.
        """
        size = self.config.image_size
        occluders = occluder_masks(rng, len(frames), size, self.config.augment)
        for _ in range(CAMERA_ATTEMPTS):
            cameras, source_view = self._cameras(rng, frames)
            views = [view.restricted(camera.in_frame & ~occluded) for view, camera, occluded in zip(
                render_sequence(frames, cameras, self.space.topology, self.canonical), cameras, occluders)]
            if min(view.mask.mean() for view in views) >= MIN_MASK_FRACTION:
                break
        else:
            raise ValueError(f"no camera in {CAMERA_ATTEMPTS} tries showed {MIN_MASK_FRACTION:.0%} textured face")
        tracks = sample_tracks(rng, views, [f.vertices for f in frames], self.space.topology,
                               self.config.tracks_per_sample)
        arrays = sample_arrays(views, tracks)
        keep = np.stack([view.mask | view.context for view in views])
        arrays["rgb"] = augment_frames(rng, arrays["rgb"], keep, pool, self.config.augment, occluders,
                                       [camera.crop_side_px for camera in cameras])
        arrays["rgb"][~np.stack([camera.in_frame for camera in cameras])] = 0  # padding, as the crop code makes it
        return arrays, source_view

    def _cameras(self, rng: np.random.Generator, frames: list[SourceFrame]) -> tuple[list[Camera], bool]:
        """One camera per frame and whether it is the source camera itself (drawn with
        ``source_view_probability``) rather than a novel trajectory."""
        vertices = [f.vertices for f in frames]
        size = self.config.image_size
        chance = self.config.cameras.source_view_probability
        if chance > 0 and rng.random() < chance:
            height, width = frames[0].rgb.shape[:2]
            return self.sampler.source_trajectory(rng, vertices, frames[0].intrinsics, (width, height), size), True
        return self.sampler.sample_trajectory(rng, vertices, frames[0].rotation, size), False


def sample_arrays(views: list[RenderedView], tracks: Tracks) -> dict[str, np.ndarray]:
    """``shards.SAMPLE_ARRAYS`` of T rendered views and their ``tracks``, in the stored dtypes.

    ``rgb`` is the views' own (T, S, S, 3) uint8 texture, before any augmentation; ``depth`` (T, S, S)
    float32 metres and ``canonical`` (T, S, S, 3) float16 keep the views' NaN off ``mask``.
    """
    return {
        "rgb": np.stack([v.rgb for v in views]),
        "depth": np.stack([v.depth for v in views]).astype(np.float32, copy=False),
        "canonical": np.stack([v.canonical for v in views]).astype(np.float16),
        "mask": np.stack([v.mask for v in views]),
        "surface": np.stack([v.surface for v in views]),
        "intrinsics": np.stack([v.intrinsics for v in views]),
        "world_from_camera": np.stack([v.world_from_camera for v in views]),
        "tracks": tracks.pixels,
        "track_visible": tracks.visible,
        "track_canonical": tracks.canonical,
        "track_query_frame": tracks.query_frame,
    }


def clip_span(seq_len: int, frame_stride: int) -> int:
    """Video frames a clip of ``seq_len`` frames ``frame_stride`` apart spans, first and last included."""
    return (seq_len - 1) * frame_stride + 1


def read_video_frame(capture: cv2.VideoCapture, index: int, path: str) -> np.ndarray:
    """Frame ``index`` of an open video as (H, W, 3) uint8 RGB; ``ValueError`` if it does not decode."""
    capture.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, bgr = capture.read()
    if not ok:
        raise ValueError(f"cannot decode frame {index} of {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _downscaled(rgb: np.ndarray) -> np.ndarray:
    """``rgb`` shrunk (area filter) so that its longer side is at most ``BACKGROUND_SIDE`` pixels."""
    scale = BACKGROUND_SIDE / max(rgb.shape[:2])
    if scale >= 1.0:
        return rgb
    return cv2.resize(rgb, (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale))),
                      interpolation=cv2.INTER_AREA)


