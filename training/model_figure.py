"""The model card's figure: shared faces reconstructed by the learned model beside the face-mesh method.

``python -m training.model_figure IMAGE [IMAGE ...] -o docs/model_vs_mesh.png [--model M]`` writes one
row per image: the face region of the input, then depth, canonical map and tracks of the model, then
of the face mesh, each ``CELL`` pixels square; "no face" where a method returns none. Depth is
coloured near (red) to far (blue) over the face's own 2nd-98th percentile range; the canonical map
as RGB ``(c + 1) / 2``; tracks are every ``TRACK_EVERY``-th template point located by the method's
canonical map as the evaluation locates them (``eval.tracking.locate_canonical_points``), one
colour per point in both methods' cells, so the same colour marks the same facial point.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from faceanything_ros.canonical.space import load_canonical_space
from faceanything_ros.eval.tracking import locate_canonical_points
from faceanything_ros.export.colorize import track_colors
from faceanything_ros.io.frames import read_image
from faceanything_ros.model.bundled import checkpoint_or_bundled
from faceanything_ros.predictor import Predictor
from faceanything_ros.reference import MeshReference

TEMPLATE = load_canonical_space().canonical_template  # (478, 3) canonical coordinates of the template points
CELL = 192  # side of one figure cell, pixels
HEADER = 28  # height of the column titles, pixels
TRACK_EVERY = 6  # tracks drawn: every this many template points (80 of the 478)
TITLES = ("input", "model depth", "model canonical", "model tracks", "face-mesh depth", "face-mesh canonical",
          "face-mesh tracks")


def face_region(reconstructions: list, height: int, width: int) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` square around the first face any method found (the whole image if none)."""
    for reconstruction in reconstructions:
        if reconstruction.found:
            box = reconstruction.faces[0].face
            side = 1.6 * max(box.width, box.height)
            cx, cy = (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2
            x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
            return x0, y0, int(min(width, cx + side / 2)), int(min(height, cy + side / 2))
    return 0, 0, width, height


def cells(reconstruction, region: tuple[int, int, int, int], rgb: np.ndarray) -> list[np.ndarray]:
    """Depth, canonical and track cells of one method's reconstruction of ``rgb`` over ``region``."""
    x0, y0, x1, y1 = region
    if not reconstruction.found:
        blank = np.full((CELL, CELL, 3), 90, dtype=np.uint8)
        cv2.putText(blank, "no face", (CELL // 4, CELL // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2)
        return [blank, blank.copy(), blank.copy()]
    depth = reconstruction.depth[y0:y1, x0:x1]
    face = np.isfinite(depth)
    near, far = np.percentile(depth[face], [2, 98]) if face.any() else (0.0, 1.0)
    scaled = np.clip((np.nan_to_num(depth, nan=far) - near) / max(far - near, 1e-6), 0, 1)
    coloured = cv2.applyColorMap((255 * (1 - scaled)).astype(np.uint8), cv2.COLORMAP_JET)[..., ::-1]
    coloured[~face] = 0
    canonical = reconstruction.canonical[y0:y1, x0:x1]
    colour = np.where(np.isfinite(canonical), (np.nan_to_num(canonical) + 1) / 2 * 255, 0).astype(np.uint8)
    maps = [cv2.resize(c, (CELL, CELL), interpolation=cv2.INTER_NEAREST) for c in (coloured, colour)]
    return [*maps, tracks_cell(reconstruction, region, rgb)]


def tracks_cell(reconstruction, region: tuple[int, int, int, int], rgb: np.ndarray) -> np.ndarray:
    """The input over ``region`` with every ``TRACK_EVERY``-th template point where the reconstruction's
    canonical map locates it (a dot coloured by the point's index)."""
    x0, y0, x1, y1 = region
    ids = np.arange(0, len(TEMPLATE), TRACK_EVERY)
    pixels, _ = locate_canonical_points(np.nan_to_num(reconstruction.canonical), reconstruction.mask, TEMPLATE[ids])
    cell = cv2.resize(rgb[y0:y1, x0:x1], (CELL, CELL), interpolation=cv2.INTER_AREA)
    scale = np.array([CELL / (x1 - x0), CELL / (y1 - y0)])
    for (u, v), colour in zip((pixels - [x0, y0] + 0.5) * scale - 0.5, track_colors(ids)):
        if np.isfinite(u) and np.isfinite(v):
            cv2.circle(cell, (int(round(u)), int(round(v))), 3, tuple(int(c) for c in colour), -1, cv2.LINE_AA)
    return cell


def figure(images: list[Path], model: str | None) -> np.ndarray:
    """The ``(HEADER + rows * CELL, 7 * CELL, 3)`` uint8 RGB figure."""
    rows = []
    with Predictor(checkpoint_or_bundled(model)) as predictor, MeshReference() as mesh:
        for path in images:
            rgb = read_image(path)
            learned, reference = predictor.predict(rgb[None])[0], mesh.predict(rgb[None])[0]
            x0, y0, x1, y1 = region = face_region([learned, reference], *rgb.shape[:2])
            crop = cv2.resize(rgb[y0:y1, x0:x1], (CELL, CELL), interpolation=cv2.INTER_AREA)
            rows.append(np.concatenate([crop, *cells(learned, region, rgb), *cells(reference, region, rgb)], axis=1))
    header = np.full((HEADER, CELL * len(TITLES), 3), 255, dtype=np.uint8)
    for index, title in enumerate(TITLES):
        cv2.putText(header, title, (index * CELL + 8, HEADER - 9), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1)
    return np.concatenate([header, *rows], axis=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="+", type=Path, help="face images")
    parser.add_argument("-o", "--out", type=Path, required=True, help="PNG to write")
    parser.add_argument("--model", help="checkpoint (default: the bundled model)")
    args = parser.parse_args(argv)
    picture = figure(args.images, args.model)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), picture[..., ::-1])
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
