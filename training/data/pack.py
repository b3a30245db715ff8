"""A pack of labelled sources: the face-mesh labels of images and video clips with their face crops,
small enough to carry to another machine and render there without the face mesh (``faceanything-data
pack``, then ``faceanything-data build --pack``).

One entry per source: an image, or a clip of ``seq_len`` video frames ``frame_stride`` apart
(``clips_per_video`` clips per video, starts spread evenly over it). Each frame is cut to the
rectangle of ``context`` face extents around the face (the clip's union of faces; never beyond the
image, so every stored pixel is a real one) and shrunk so that the face spans at most ``face_px``
pixels (area filter), then stored as JPEG with its label: the posed mesh's vertices (a float64 centre
plus float16 offsets: at most 0.03 mm off on a face) and the crop's intrinsics, derived exactly from the
image's (``geometry.camera.crop_resize_intrinsics``, one scale per axis). Video clips come first, then
images in a seeded order, until ``max_bytes`` are used. A build asks of a pack what it holds: faces no
larger than ``face_px`` at its image size, and source-view crops within ``context``.

Files: ``PACK/pack.json`` (format, settings, canonical space, provenance table, sources with their
manifest record and rows) and ``PACK/frames.npz`` (``jpeg`` all frames' bytes, ``offsets`` (N + 1,),
``centre`` (N, 3) float64 m, ``vertices`` (N, V, 3) float16 m from the centre, ``intrinsics``
(N, 3, 3) float64 px, ``rotation`` (N, 3, 3) float64 template -> camera). A pack derived from research
face data keeps that data's terms (each source's provenance is in ``pack.json``).
"""
from __future__ import annotations

import json
import logging
import math
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from faceanything_ros.canonical.space import CanonicalSpace
from faceanything_ros.data.format import space_metadata
from faceanything_ros.geometry.camera import crop_resize_intrinsics
from faceanything_ros.geometry.projection import project_points
from faceanything_ros.io.frames import read_image
from training.data.config import DataEngineConfig
from training.data.generator import FileSources, clip_span, read_video_frame
from training.data.rerender import SourceFrame, source_frame
from training.data.splits import split_of

log = logging.getLogger("faceanything-data")

PACK_FORMAT = "faceanything-source-pack"
PACK_VERSION = 1
PACK_JSON = "pack.json"
PACK_ARRAYS = "frames.npz"
JPEG_QUALITY = 88
FACE_PX_SLACK = 1.1  # a build may show the stored faces this much larger (bilinear texture lookups)


@dataclass(frozen=True)
class PackConfig:
    """What ``write_pack`` keeps: clips of ``seq_len`` frames ``frame_stride`` apart, ``clips_per_video``
    per video, crops of ``context`` face extents with the face at most ``face_px`` pixels wide, within
    ``max_bytes`` of frames; ``seed`` orders the images."""

    seq_len: int = 4
    frame_stride: int = 2
    clips_per_video: int = 8
    context: float = 2.2
    face_px: int = 96
    max_bytes: int = 45_000_000
    seed: int = 0

    def __post_init__(self) -> None:
        if min(self.seq_len, self.frame_stride, self.clips_per_video, self.face_px, self.max_bytes) < 1:
            raise ValueError(f"pack settings must be positive: {self}")
        if not self.context >= 1.0:
            raise ValueError(f"context must be >= 1 face extent, got {self.context}")


def write_pack(folder: str | Path, images: list[tuple[str, dict]], videos: list[tuple[str, dict]],
               sources: FileSources, config: PackConfig) -> dict[str, Any]:
    """Label ``images`` and ``videos`` (``generator.discover`` lists) with ``sources`` and write the pack;
    its ``pack.json`` dict. Sources without a face (or a video without a whole clip, or a frame that does not
    decode) are left out and listed under ``skipped`` with the reason."""
    folder = Path(folder)
    if (folder / PACK_JSON).exists():
        raise FileExistsError(f"{folder} already holds a pack ({PACK_JSON}); choose a new output folder")
    rows: dict[str, list] = {name: [] for name in ("jpeg", "centre", "vertices", "intrinsics", "rotation")}
    entries, skipped, provenance, used = [], [], [], 0
    order = []
    for path, record in videos:
        starts = _clip_starts(path, config)
        if not starts:
            skipped.append({"source": record["source"], "reason": f"no clip of {config.seq_len} frames "
                            f"{config.frame_stride} apart in the video (too short, or it does not open)"})
        order += [(path, record, start) for start in starts]
    order += [(images[i][0], images[i][1], None) for i in np.random.default_rng(config.seed).permutation(len(images))]
    for position, (path, record, start) in enumerate(tqdm(order, unit="source", desc="packing")):
        try:
            frames, indices = _labelled(path, start, sources, config)
        except ValueError as error:
            skipped.append({"source": record["source"], "reason": str(error)})
            continue
        encoded = [_encode(frame.rgb) for frame in frames]
        size = sum(len(jpeg) + frame.vertices.size * 2 for jpeg, frame in zip(encoded, frames))
        if used + size > config.max_bytes:
            log.info("max_bytes reached: %d of %d clips and images were not packed", len(order) - position, len(order))
            break
        used += size
        first = len(rows["jpeg"])
        for jpeg, frame in zip(encoded, frames):
            centre = frame.vertices.mean(axis=0)
            for name, value in (("jpeg", jpeg), ("centre", centre), ("vertices", frame.vertices - centre),
                                ("intrinsics", frame.intrinsics), ("rotation", frame.rotation)):
                rows[name].append(value)
        terms = record["provenance"]
        if terms not in provenance:
            provenance.append(terms)
        kept = {k: v for k, v in record.items() if k not in ("split", "provenance")}
        entries.append({"key": record["source"] if start is None else f"{record['source']}#{start}",
                        "clip": start is not None, "record": {**kept, "provenance": provenance.index(terms)},
                        "frames": indices, "rows": list(range(first, len(rows["jpeg"])))})
    if not entries:
        raise ValueError("no source could be packed (no face found, or the first one exceeds max_bytes)")
    folder.mkdir(parents=True, exist_ok=True)
    offsets = np.cumsum([0] + [len(jpeg) for jpeg in rows["jpeg"]])
    np.savez(folder / PACK_ARRAYS, jpeg=np.frombuffer(b"".join(rows["jpeg"]), np.uint8), offsets=offsets,
             centre=np.array(rows["centre"]), vertices=np.array(rows["vertices"], np.float16),
             intrinsics=np.array(rows["intrinsics"]), rotation=np.array(rows["rotation"]))
    manifest = {"format": PACK_FORMAT, "version": PACK_VERSION, "settings": asdict(config),
                "canonical_space": space_metadata(sources.space), "provenance": provenance,
                "sources": entries, "skipped": skipped}
    (folder / PACK_JSON).write_text(json.dumps(manifest))
    log.info("packed %d sources (%d frames, %.1f MB of frames) into %s; %d left out (no face, no whole clip "
             "or undecodable: pack.json's skipped)", len(entries), len(rows["jpeg"]), used / 1e6, folder, len(skipped))
    return manifest


class SourcePack:
    """A pack read for ``generator.SampleGenerator`` (as ``generator.FileSources``): ``catalogue`` lists its
    images and clips like ``generator.discover``; ``frames`` gives a source's labelled frames (a random
    window of ``config.seq_len`` frames of a clip), ``image`` an image source's pixels.

    ``FileNotFoundError`` for a missing pack file, ``ValueError`` for a corrupt or foreign one, a pack of
    another canonical space, or clips too short or strided otherwise than ``config`` asks.
    """

    def __init__(self, folder: str | Path, space: CanonicalSpace, config: DataEngineConfig) -> None:
        self.folder, self.space, self.config = Path(folder), space, config
        manifest, arrays = _read(self.folder)
        settings = manifest["settings"]
        if manifest["canonical_space"]["id"] != space.id or manifest["canonical_space"]["version"] != space.version:
            raise ValueError(f"pack {self.folder} was labelled in canonical space {manifest['canonical_space']}, "
                             f"not {space.id} v{space.version}")
        if config.seq_len > 1 and (config.seq_len > settings["seq_len"] or config.frame_stride != settings["frame_stride"]):
            raise ValueError(f"pack {self.folder} holds clips of {settings['seq_len']} frames {settings['frame_stride']} "
                             f"apart; build with seq_len <= {settings['seq_len']} and frame_stride "
                             f"{settings['frame_stride']} (asked: {config.seq_len}, {config.frame_stride})")
        cameras = config.cameras
        face_px = config.image_size / cameras.crop_scale[0]  # the largest face a sample shows
        if face_px > FACE_PX_SLACK * settings["face_px"]:
            raise ValueError(f"pack {self.folder} holds faces at most {settings['face_px']} px wide, and {config.image_size} px "
                             f"samples show them up to {face_px:.0f} px: pack with --face-px {math.ceil(face_px)} for this size")
        reach = cameras.crop_scale[1] * (1.0 + 2.0 * cameras.crop_shift)  # a source-view crop, in face extents
        if cameras.source_view_probability > 0 and reach > settings["context"]:
            raise ValueError(f"pack {self.folder} keeps {settings['context']} face extents around each face; source-view "
                             f"crops of crop_scale {cameras.crop_scale[1]} and crop_shift {cameras.crop_shift} reach {reach:.2f}")
        self._arrays = arrays
        self._entries = {entry["key"]: entry for entry in manifest["sources"]}
        self._provenance = manifest["provenance"]

    def catalogue(self) -> tuple[list[tuple[str, dict]], list[tuple[str, dict]]]:
        """``(images, videos)``: ``(key, manifest record)`` of every image and clip, splits from ``config.splits``."""
        listed: tuple[list, list] = ([], [])
        for key, entry in self._entries.items():
            record = {**entry["record"], "provenance": self._provenance[entry["record"]["provenance"]],
                      "split": split_of(entry["record"]["identity"], self.config.splits)}
            listed[entry["clip"]].append((key, record))
        return listed

    def frames(self, source: str, rng: np.random.Generator) -> tuple[list[SourceFrame], list[int]]:
        """``config.seq_len`` labelled frames of ``source`` and their frame indices (an image repeated)."""
        entry = self._entry(source)
        seq_len, rows, indices = self.config.seq_len, entry["rows"], entry["frames"]
        if len(rows) == 1:
            frame = self._frame(rows[0])
            return [frame] * seq_len, [indices[0]] * seq_len
        start = int(rng.integers(len(rows) - seq_len + 1))
        return [self._frame(row) for row in rows[start:start + seq_len]], indices[start:start + seq_len]

    def image(self, source: str) -> np.ndarray:
        """``(h, w, 3)`` uint8 RGB of an image source's stored crop."""
        return self._pixels(self._entry(source)["rows"][0])

    def _entry(self, source: str) -> dict[str, Any]:
        if source not in self._entries:
            raise KeyError(f"{source!r} is not a source of pack {self.folder}")
        return self._entries[source]

    def _pixels(self, row: int) -> np.ndarray:
        offsets = self._arrays["offsets"]
        data = self._arrays["jpeg"][offsets[row]:offsets[row + 1]]
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
        if bgr is None:
            raise ValueError(f"frame {row} of pack {self.folder} does not decode")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def _frame(self, row: int) -> SourceFrame:
        vertices = self._arrays["centre"][row] + self._arrays["vertices"][row].astype(np.float64)
        return source_frame(self._pixels(row), vertices, self._arrays["intrinsics"][row],
                            self._arrays["rotation"][row], self.space.topology)


def _read(folder: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """A pack's manifest and arrays, checked (``ValueError`` naming what is wrong)."""
    paths = folder / PACK_JSON, folder / PACK_ARRAYS
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"no source pack file {path}")
    try:
        manifest = json.loads(paths[0].read_text())
        with np.load(paths[1]) as data:
            arrays = {name: data[name] for name in ("jpeg", "offsets", "centre", "vertices", "intrinsics", "rotation")}
    except (json.JSONDecodeError, zipfile.BadZipFile, EOFError, OSError, KeyError, ValueError) as error:
        raise ValueError(f"corrupt source pack {folder}: {error}") from error
    if not isinstance(manifest, dict) or manifest.get("format") != PACK_FORMAT or manifest.get("version") != PACK_VERSION:
        raise ValueError(f"{paths[0]} is not a {PACK_FORMAT} v{PACK_VERSION} file")
    frames, offsets = len(arrays["offsets"]) - 1, arrays["offsets"]
    try:
        entries = [(entry["rows"], entry["frames"], entry["clip"], entry["record"]["identity"])
                   for entry in manifest["sources"]]
        settings, space = manifest["settings"], manifest["canonical_space"]
        consistent = (frames >= 0 and all(len(arrays[name]) == frames for name in ("centre", "vertices", "intrinsics", "rotation"))
                      and offsets[0] == 0 and np.all(np.diff(offsets) >= 0) and offsets[-1] == len(arrays["jpeg"])
                      and all(rows and len(rows) == len(indices) and all(0 <= row < frames for row in rows)
                              for rows, indices, _, _ in entries)
                      and {"seq_len", "frame_stride", "face_px", "context"} <= set(settings) and "id" in space)
    except (KeyError, TypeError, IndexError) as error:
        raise ValueError(f"corrupt source pack {folder}: {PACK_JSON} lacks {error}") from error
    if not consistent:
        raise ValueError(f"corrupt source pack {folder}: {PACK_JSON} and {PACK_ARRAYS} do not match")
    return manifest, arrays


def _clip_starts(path: str, config: PackConfig) -> list[int]:
    """First frames of a video's clips: ``clips_per_video`` spread evenly over it (fewer in a short video;
    none when it holds no whole clip or does not open)."""
    capture = cv2.VideoCapture(path)
    length = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    capture.release()
    last = length - clip_span(config.seq_len, config.frame_stride)
    if last < 0:
        return []
    return sorted({round(x) for x in np.linspace(0, last, config.clips_per_video)})


@dataclass
class _Cut:
    """One labelled frame cut to its face: ``rgb`` (h, w, 3) uint8, ``vertices`` (V, 3) m, ``intrinsics`` and
    ``rotation`` (3, 3)."""

    rgb: np.ndarray
    vertices: np.ndarray
    intrinsics: np.ndarray
    rotation: np.ndarray


def _labelled(path: str, start: int | None, sources: FileSources, config: PackConfig) -> tuple[list[_Cut], list[int]]:
    """An image (``start`` None) or the clip from frame ``start``: its frames labelled and cut to the face."""
    if start is None:
        pictures, indices = [read_image(path)], [0]
    else:
        indices = [start + i * config.frame_stride for i in range(config.seq_len)]
        capture = cv2.VideoCapture(path)
        try:
            pictures = [read_video_frame(capture, i, path) for i in indices]
        finally:
            capture.release()
    labels = [sources.largest_face(rgb, f"{path} frame {i}") for rgb, i in zip(pictures, indices)]
    pixels = np.concatenate([project_points(label.vertices, label.intrinsics)[0] for label in labels])
    low, high = pixels.min(axis=0), pixels.max(axis=0)
    extent = float(np.max(high - low))
    height, width = pictures[0].shape[:2]
    half = config.context * extent / 2.0
    (cx, cy) = (low + high) / 2.0
    x0, x1 = max(0, math.floor(cx - half)), min(width, math.ceil(cx + half))
    y0, y1 = max(0, math.floor(cy - half)), min(height, math.ceil(cy + half))
    scale = min(1.0, config.face_px / max(extent, 1.0))
    size = (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale)))
    frames = []
    for rgb, label in zip(pictures, labels):
        crop = rgb[y0:y1, x0:x1]
        if size != (x1 - x0, y1 - y0):
            crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
        frames.append(_Cut(np.ascontiguousarray(crop), np.asarray(label.vertices, np.float64),
                           crop_resize_intrinsics(label.intrinsics, x0, y0, size[0] / (x1 - x0), size[1] / (y1 - y0)),
                           np.asarray(label.rotation, np.float64)))
    return frames, indices


def _encode(rgb: np.ndarray) -> bytes:
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError(f"OpenCV could not encode a {rgb.shape} frame as JPEG")
    return jpeg.tobytes()
