"""Calibrated multi-view captures (NeRSemble layout) -> per-view training samples with
multi-view-consistent ground truth.

Layout read (the one the NeRSemble download tool writes for one participant's sequence)::

    CAPTURE/calibration/camera_params.json     {"intrinsics": K or {cam: K}, "world_2_cam": {cam: 4x4}}
    CAPTURE/timesteps/frame_<NNNNN>/images/cam_<cam>.(jpg|png)

``K`` is (3, 3) pixels of the full image; ``world_2_cam`` maps world points (metres) into the
camera's OpenCV optical frame (x right, y down, z forward). A calibration folder two levels up
(``<participant>/calibration`` next to ``<participant>/sequences/<SEQ>``) is used when CAPTURE has none.

Per timestep: every view is labelled with the face mesh using its own ``K``; each mesh vertex is
triangulated (linear least squares over the views where that view's own fit sees it) from the
views' landmark pixels, which fixes the metric face that one view cannot; vertices seen by fewer
than two views take the mean of the views' posed meshes moved into the world. The fused mesh is then
rendered into every view: depth, canonical map and mask agree across views by construction. Each
view becomes a sample (T = 1): the real image cropped square around the face, resized to ``size``.
"""
from __future__ import annotations

import argparse
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faceanything_ros.canonical.space import CanonicalSpace, load_canonical_space
from faceanything_ros.geometry.camera import validate_intrinsics
from faceanything_ros.geometry.projection import project_points
from faceanything_ros.geometry.rasterizer import rasterize
from faceanything_ros.io.crop import CropBox, crop_image
from faceanything_ros.io.frames import IMAGE_EXTENSIONS, read_image
from training.data.cameras import invert_pose, transform_points
from training.data.config import DataEngineConfig
from training.data.generator import sample_arrays
from training.data.preview import PREVIEW_FILE, PREVIEW_SAMPLES, write_preview
from training.data.rerender import RenderedView
from training.data.sequence import sample_tracks
from training.data.splits import split_of

log = logging.getLogger("faceanything-data")
CALIBRATION = "calibration/camera_params.json"
CROP_MARGIN = 1.6  # crop side / face extent in the image
_CAMERA_FILE = re.compile(r"cam_(.+)$")


@dataclass(frozen=True)
class CalibratedView:
    """One camera image: ``camera`` id, ``image`` path, ``intrinsics`` (3, 3) pixels and
    ``world_from_camera`` (4, 4) metres."""

    camera: str
    image: Path
    intrinsics: np.ndarray
    world_from_camera: np.ndarray


def read_calibration(path: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{camera id: (K (3, 3), world_from_camera (4, 4))}`` from a NeRSemble ``camera_params.json``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"multi-view calibration not found: {path}")
    data = json.loads(path.read_text())
    if "world_2_cam" not in data or "intrinsics" not in data:
        raise ValueError(f"{path} needs 'intrinsics' and 'world_2_cam' entries, has {sorted(data)}")
    cameras = {}
    for camera, world_2_cam in data["world_2_cam"].items():
        K = data["intrinsics"][camera] if isinstance(data["intrinsics"], dict) else data["intrinsics"]
        pose = np.asarray(world_2_cam, dtype=np.float64)
        if pose.shape != (4, 4) or not np.all(np.isfinite(pose)):
            raise ValueError(f"{path}: world_2_cam of camera {camera} must be a finite 4x4 matrix")
        cameras[str(camera)] = (validate_intrinsics(K, f"intrinsics of camera {camera}"), invert_pose(pose))
    return cameras


def load_capture(root: str | Path) -> dict[str, list[CalibratedView]]:
    """``{timestep name: views}`` of a NeRSemble-layout capture folder (see module docstring)."""
    root = Path(root)
    calibration = root / CALIBRATION
    if not calibration.is_file() and (root.parent.parent / CALIBRATION).is_file():
        calibration = root.parent.parent / CALIBRATION
    cameras = read_calibration(calibration)
    timesteps = sorted((root / "timesteps").glob("*/images"))
    if not timesteps:
        raise FileNotFoundError(f"no timesteps/<frame>/images folders under {root}")
    capture = {}
    for folder in timesteps:
        views = []
        for image in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS):
            match = _CAMERA_FILE.match(image.stem)
            if not match or match.group(1) not in cameras:
                raise ValueError(f"{image} is not named cam_<id> with <id> in the calibration {sorted(cameras)}")
            K, pose = cameras[match.group(1)]
            views.append(CalibratedView(match.group(1), image, K, pose))
        capture[folder.parent.name] = views
    return capture


def triangulate(pixels: np.ndarray, weights: np.ndarray, intrinsics: np.ndarray, world_from_camera: np.ndarray) -> np.ndarray:
    """``(V, 3)`` world points from ``(J, V, 2)`` pixels in J views, ``(J, V)`` weights (0 = unused),
    ``(J, 3, 3)`` K and ``(J, 4, 4)`` poses, by weighted linear least squares (NaN with < 2 views)."""
    projection = np.einsum("jab,jbc->jac", intrinsics, np.stack([invert_pose(p)[:3] for p in world_from_camera]))
    rows_u = pixels[..., 0:1] * projection[:, None, 2] - projection[:, None, 0]  # (J, V, 4)
    rows_v = pixels[..., 1:2] * projection[:, None, 2] - projection[:, None, 1]
    rows = np.concatenate([rows_u, rows_v], axis=0)  # (2J, V, 4)
    w = np.concatenate([weights, weights], axis=0)[..., None]
    normal = np.einsum("jva,jvb->vab", w * rows[..., :3], rows[..., :3])
    rhs = -np.einsum("jva,jv->va", w * rows[..., :3], rows[..., 3])
    points = np.full((pixels.shape[1], 3), np.nan)
    enough = (weights > 0).sum(axis=0) >= 2
    points[enough] = np.linalg.solve(normal[enough], rhs[enough][..., None])[..., 0]
    return points


def fuse_views(views: list[CalibratedView], labeler: Any) -> tuple[np.ndarray, list[CalibratedView], list[np.ndarray]]:
    """``(V, 3)`` fused world mesh of one timestep, the views whose label entered it and their
    decoded images ((H, W, 3) uint8 RGB, in the same order)."""
    labelled, labels, images = [], [], []
    for view in views:
        rgb = read_image(view.image)
        found = labeler.label(rgb, view.intrinsics)
        if not found:
            log.warning("no face in %s; view left out of the fusion", view.image)
            continue
        labels.append((found[0], rgb.shape[:2]))
        labelled.append(view)
        images.append(rgb)
    if len(labelled) < 2:
        raise ValueError(f"need a face in at least 2 views to fuse, found {len(labelled)} of {len(views)}")
    pixels = np.stack([label.landmarks_px for label, _ in labels])
    weights = np.stack([label.render(*shape).visible for label, shape in labels]).astype(np.float64)
    world = np.stack([transform_points(v.world_from_camera, label.vertices) for (label, _), v in zip(labels, labelled)])
    fused = triangulate(pixels, weights, np.stack([v.intrinsics for v in labelled]),
                        np.stack([v.world_from_camera for v in labelled]))
    missing = ~np.all(np.isfinite(fused), axis=1)
    fused[missing] = world[:, missing].mean(axis=0)
    return fused, labelled, images


def render_calibrated(vertices_world: np.ndarray, view: CalibratedView, space: CanonicalSpace, size: int,
                      rgb: np.ndarray | None = None) -> RenderedView:
    """The fused mesh seen by ``view``, in a square crop around the face resized to ``size`` pixels;
    ``rgb`` of the result is the real image crop (ground truth as in ``rerender.RenderedView``,
    ``surface == mask``). ``rgb``: the view's image already decoded ((H, W, 3) uint8), or None to read it."""
    vertices = transform_points(invert_pose(view.world_from_camera), vertices_world)
    pixels, _ = project_points(vertices, view.intrinsics)
    low, high = np.nanmin(pixels, axis=0), np.nanmax(pixels, axis=0)
    side = CROP_MARGIN * float(np.max(high - low))
    centre = (low + high) / 2.0
    box = CropBox.centred(centre[0], centre[1], side, size)
    K = box.intrinsics(view.intrinsics)
    raster = rasterize(vertices, space.topology, K, size, size, space.canonical_template)
    image = read_image(view.image) if rgb is None else rgb
    return RenderedView(rgb=crop_image(image, box), depth=raster.depth, canonical=raster.attributes,
                        mask=raster.mask, surface=raster.mask, context=~raster.mask,
                        triangle=raster.triangle,
                        barycentrics=raster.barycentrics, intrinsics=K, world_from_camera=view.world_from_camera.copy())


def view_sample(rng: np.random.Generator, view: RenderedView, vertices_world: np.ndarray, space: CanonicalSpace,
                tracks: int) -> dict[str, np.ndarray]:
    """``shards.SAMPLE_ARRAYS`` of one rendered view (T = 1)."""
    return sample_arrays([view], sample_tracks(rng, [view], [vertices_world], space.topology, tracks))


def ingest(args: argparse.Namespace) -> int:
    """The ``ingest-multiview`` command: a capture folder -> a dataset (one sample per view)."""
    from faceanything_ros.canonical.pseudo_labels import FaceMeshLabeler
    from faceanything_ros.data.format import space_metadata
    from training.data.shards import ShardWriter

    root = Path(args.capture)
    capture = load_capture(root)
    space = load_canonical_space()
    identity = f"multiview:{args.participant or root.name}"
    split = split_of(identity)
    rng = np.random.default_rng(args.seed)
    metadata = {"image_size": args.size, "seq_len": 1, "skipped": [], "canonical_space": space_metadata(space)}
    previews = []
    with FaceMeshLabeler(space) as labeler, \
            ShardWriter(args.output, DataEngineConfig().samples_per_shard, metadata) as writer:
        for timestep, views in capture.items():
            try:
                fused, used, images = fuse_views(views, labeler)
            except ValueError as error:
                metadata["skipped"].append({"source": f"{root}/{timestep}", "reason": str(error)})
                continue
            for view, rgb in zip(used, images):
                arrays = view_sample(rng, render_calibrated(fused, view, space, args.size, rgb), fused, space,
                                     args.tracks)
                writer.add(arrays, {"split": split, "source": str(view.image.relative_to(root)), "source_root": str(root),
                                    "identity": identity, "video": f"{identity}/{timestep}", "frames": [0],
                                    "provenance": {"repo": "", "commit": "", "licence": args.licence, "terms": args.licence}})
                if args.preview and len(previews) < PREVIEW_SAMPLES:
                    previews.append(arrays)
    if args.preview and previews:
        write_preview(Path(args.output) / PREVIEW_FILE, previews)
    log.info("wrote %d view samples to %s", len(writer.records), args.output)
    return 0 if writer.records else 1


def add_ingest_parser(commands: argparse._SubParsersAction) -> None:
    """Register ``ingest-multiview`` on the ``faceanything-data`` sub-command parser."""
    parser = commands.add_parser("ingest-multiview", help="NeRSemble-layout multi-view capture -> dataset")
    parser.add_argument("capture", help="capture folder (calibration/ + timesteps/<frame>/images/cam_<id>.jpg)")
    parser.add_argument("-o", "--output", required=True, help="new dataset folder")
    parser.add_argument("--size", type=int, default=256, help="output image side in pixels (default 256)")
    parser.add_argument("--tracks", type=int, default=256, help="correspondence queries per sample (default 256)")
    parser.add_argument("--participant", help="identity id for the split (default: the capture folder name)")
    parser.add_argument("--licence", default="NeRSemble terms of use (research only)", help="licence text for the manifest")
    parser.add_argument("--seed", type=int, default=0, help="random seed (track queries)")
    parser.add_argument("--preview", action="store_true", help=f"write {PREVIEW_FILE}")
    parser.set_defaults(run=ingest)
