"""Compute the canonical face template (``faceanything_ros/canonical/data/facemesh478_v1.npz``) from many FaceMesh detections.

Run: ``python -m training.canonical_template --images /work/shared/data/faces_train/images``
(default output: the shipped file). Reproducible: the image list is every ``.jpg``/``.png`` under
``--images`` sorted by relative path, of which ``--max-images`` are drawn with
``numpy.random.default_rng(--seed)``; FaceMesh runs in static-image mode (deterministic) and
keeps the largest face per image. The file records how many faces were used and the SHA-256 of
the used relative paths.

Method: each face's pseudo-3D landmarks ``(u, v, relative depth)`` (pixels) are centred and
scaled to unit RMS radius; generalised Procrustes analysis then alternates a similarity
alignment of every face onto the current mean with re-estimating the mean (re-centred,
re-normalised), until the mean moves less than ``tolerance``. The mean shape is turned into the
template frame (x from the image-left eye's iris centre to the image-right one, y towards the chin
and orthogonal to x, z = x cross y, into the head; origin at the mean point), scaled so the
iris centres (468, 473) are 63 mm apart, and stored with the mesh triangles (oriented towards a
camera at -z) and the [-1, 1]^3 normalisation. Averaging many faces of varied expression gives an
approximately neutral face (no explicit expression filter).
"""
from __future__ import annotations

import argparse
import hashlib
import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from faceanything_ros.canonical.fitting import similarity_transform
from faceanything_ros.canonical.mediapipe_space import (
    INTER_PUPIL_DISTANCE_M,
    IRIS_CENTERS,
    TEMPLATE_FILE,
    save_space_file,
)
from faceanything_ros.canonical.topology import (
    mediapipe_tessellation_edges,
    orient_towards_camera,
    triangles_from_edges,
)
from faceanything_ros.io.face_mesh import FaceMesh
from faceanything_ros.io.frames import IMAGE_EXTENSIONS, read_image

log = logging.getLogger("faceanything.training")

FOREHEAD, CHIN = 10, 152  # landmarks at the top of the forehead and the bottom of the chin


def select_images(root: Path, max_images: int, seed: int) -> list[Path]:
    """``max_images`` image paths drawn with ``default_rng(seed)`` from all images under ``root`` (sorted), sorted."""
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not paths:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under {root}")
    if len(paths) > max_images:
        chosen = np.random.default_rng(seed).choice(len(paths), size=max_images, replace=False)
        paths = [paths[i] for i in sorted(chosen)]
    return paths


def collect_landmarks(paths: list[Path]) -> tuple[np.ndarray, list[Path]]:
    """``(N, 478, 3)`` pseudo-3D landmarks ``(u, v, relative depth)`` in pixels of the largest face per image, and the images with a face."""
    shapes, used = [], []
    with FaceMesh(max_faces=1) as mesh:
        for path in tqdm(paths, unit="image", desc="face mesh"):
            faces = mesh.landmarks(read_image(path))
            if faces:
                shapes.append(np.column_stack([faces[0].pixels, faces[0].relative_depth_px]))
                used.append(path)
    if not shapes:
        raise ValueError("no face found in any image")
    return np.stack(shapes), used


def generalized_procrustes(shapes: np.ndarray, tolerance: float = 1e-10, max_iterations: int = 100) -> np.ndarray:
    """Mean ``(V, 3)`` shape (centred, unit RMS radius) of ``(N, V, 3)`` shapes under similarity alignment.

    The orientation of the mean is that of the first shape (it seeds the iteration).
    """
    mean = _unit(shapes[0])
    for _ in range(max_iterations):
        aligned = []
        for shape in shapes:
            scale, R, t = similarity_transform(shape, mean)
            aligned.append(scale * shape @ R.T + t)
        average = _unit(np.mean(aligned, axis=0))
        _, R, _ = similarity_transform(average, mean)  # keep the mean's orientation from drifting
        updated = _unit(average @ R.T)
        converged = np.abs(updated - mean).max() < tolerance
        mean = updated
        if converged:
            break
    return mean


def metric_template(mean_shape: np.ndarray) -> np.ndarray:
    """``(V, 3)`` template in metres, template frame (module docstring), from a mean shape in image-like axes."""
    right_eye, left_eye = mean_shape[IRIS_CENTERS[0]], mean_shape[IRIS_CENTERS[1]]
    x_axis = left_eye - right_eye
    if x_axis[0] < 0:
        x_axis = -x_axis
    x_axis /= np.linalg.norm(x_axis)
    down = mean_shape[CHIN] - mean_shape[FOREHEAD]
    y_axis = down - down.dot(x_axis) * x_axis
    y_axis /= np.linalg.norm(y_axis)
    axes = np.stack([x_axis, y_axis, np.cross(x_axis, y_axis)])
    centred = (mean_shape - mean_shape.mean(axis=0)) @ axes.T
    ipd = np.linalg.norm(centred[IRIS_CENTERS[0]] - centred[IRIS_CENTERS[1]])
    return centred * (INTER_PUPIL_DISTANCE_M / ipd)


def build_template(paths: list[Path], root: Path) -> tuple[np.ndarray, np.ndarray, int, str]:
    """Template ``(478, 3)`` metres, triangles ``(852, 3)``, number of faces and SHA-256 of the used paths (relative to ``root``)."""
    shapes, used = collect_landmarks(paths)
    template = metric_template(generalized_procrustes(shapes))
    triangles = orient_towards_camera(triangles_from_edges(mediapipe_tessellation_edges()), template)
    digest = hashlib.sha256("\n".join(p.relative_to(root).as_posix() for p in used).encode()).hexdigest()
    return template, triangles, len(used), digest


def main(argv: list[str] | None = None) -> int:
    """Command line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, required=True, help="folder searched recursively for .jpg/.png faces")
    parser.add_argument("-o", "--out", type=Path, default=TEMPLATE_FILE, help=f"space file (default: {TEMPLATE_FILE})")
    parser.add_argument("--max-images", type=int, default=2000, help="images drawn from the folder (default: 2000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the image draw (default: 0)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    paths = select_images(args.images, args.max_images, args.seed)
    template, triangles, num_faces, digest = build_template(paths, args.images)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_space_file(args.out, template, triangles, num_faces, digest)
    log.info("template from %d faces (%d images) -> %s", num_faces, len(paths), args.out)
    return 0


def _unit(shape: np.ndarray) -> np.ndarray:
    """``shape`` centred at its mean and scaled to unit RMS radius."""
    centred = shape - shape.mean(axis=0)
    return centred / np.sqrt(np.mean(np.sum(centred ** 2, axis=1)))


if __name__ == "__main__":
    raise SystemExit(main())
