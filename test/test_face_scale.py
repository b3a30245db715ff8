"""The metric scale of a face's depth from the canonical template's size (geometry.face_scale)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from faceanything_ros.canonical.space import load_canonical_space
from faceanything_ros.geometry.camera import intrinsics_matrix
from faceanything_ros.geometry.face_scale import MIN_SCALE_PIXELS, face_size_scale, similarity_scale
from faceanything_ros.geometry.rasterizer import rasterize
from faceanything_ros.geometry.rays import rays_from_intrinsics

SPACE = load_canonical_space()
METRES_PER_UNIT = SPACE.mm_per_unit / 1000.0
SIZE = 160
CAMERA = intrinsics_matrix(300.0, 300.0, (SIZE - 1) / 2, (SIZE - 1) / 2)


def test_similarity_scale_of_a_scaled_rotated_moved_copy():
    rng = np.random.default_rng(0)
    source = rng.normal(size=(50, 3))
    rotation = Rotation.from_euler("xyz", [20, -35, 60], degrees=True).as_matrix()
    target = 2.5 * source @ rotation.T + [1.0, -2.0, 3.0]
    assert similarity_scale(source, target) == pytest.approx(2.5, rel=1e-12)
    assert similarity_scale(target, source) == pytest.approx(0.4, rel=1e-12)
    mirrored = target * [1.0, 1.0, -1.0]  # no proper rotation maps it: a smaller least-squares scale
    assert similarity_scale(source, mirrored) < 2.5
    with pytest.raises(ValueError, match="not all one point"):
        similarity_scale(np.ones((5, 3)), target[:5])


def rendered_face(scale: float, distance_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Depth, canonical map and mask of the canonical template at ``scale`` x its metric size,
    turned 25 degrees and ``distance_m`` in front of ``CAMERA``."""
    template = SPACE.canonical_template  # (V, 3) canonical units
    rotation = Rotation.from_euler("y", 25, degrees=True).as_matrix()
    vertices = scale * METRES_PER_UNIT * template @ rotation.T + [0.0, 0.0, distance_m]
    raster = rasterize(vertices, SPACE.topology, CAMERA, SIZE, SIZE, attributes=template)
    return raster.depth, raster.attributes, raster.mask


@pytest.mark.parametrize("true_scale", [1.0, 0.9])
def test_a_rendered_face_gets_the_template_size_at_any_depth_scale(true_scale):
    depth, canonical, mask = rendered_face(true_scale, 0.6)
    rays = rays_from_intrinsics(CAMERA, SIZE, SIZE)
    # the template itself comes back at scale 1; a face 0.9 x its size comes back 1 / 0.9 farther
    assert face_size_scale(depth, rays, canonical, mask, METRES_PER_UNIT) == pytest.approx(1.0 / true_scale, rel=1e-3)
    assert face_size_scale(2.0 * depth, rays, canonical, mask, METRES_PER_UNIT) == pytest.approx(
        0.5 / true_scale, rel=1e-3)


def test_unusable_pixels_are_left_out_and_too_few_give_none():
    depth, canonical, mask = rendered_face(1.0, 0.6)
    rays = rays_from_intrinsics(CAMERA, SIZE, SIZE)
    spoiled = depth.copy()
    spoiled[::3] = np.nan  # NaN depth: left out, the rest still fixes the scale
    canonical = canonical.copy()
    canonical[1::3, :, 0] = np.nan
    assert face_size_scale(spoiled, rays, canonical, mask, METRES_PER_UNIT) == pytest.approx(1.0, rel=1e-3)
    few = np.zeros_like(mask)
    few[np.nonzero(mask)[0][:MIN_SCALE_PIXELS - 1], np.nonzero(mask)[1][:MIN_SCALE_PIXELS - 1]] = True
    assert face_size_scale(depth, rays, canonical, few, METRES_PER_UNIT) is None


def test_depth_noise_and_outlying_pixels_do_not_shrink_the_scale():
    depth, canonical, mask = rendered_face(1.0, 0.6)
    rays = rays_from_intrinsics(CAMERA, SIZE, SIZE)
    rng = np.random.default_rng(0)
    noisy = depth + rng.normal(0.0, 0.01, depth.shape)  # 1 cm per-pixel depth noise
    points = noisy[mask, None] * rays[mask] / rays[mask, 2:3]
    # fitted from the points to the template, the noise would shrink the scale by about 3 %
    assert similarity_scale(points, canonical[mask] * METRES_PER_UNIT) < 0.98
    assert face_size_scale(noisy, rays, canonical, mask, METRES_PER_UNIT) == pytest.approx(1.0, abs=0.005)
    spilled = canonical.copy()  # a tenth of the face pixels with canonical coordinates of nothing near
    rows, cols = np.nonzero(mask)
    chosen = rng.choice(len(rows), len(rows) // 10, replace=False)
    spilled[rows[chosen], cols[chosen]] = rng.uniform(-1.0, 1.0, (len(chosen), 3))
    assert face_size_scale(depth, rays, spilled, mask, METRES_PER_UNIT) == pytest.approx(1.0, abs=0.005)
    assert face_size_scale(depth, rays, np.zeros_like(canonical), mask, METRES_PER_UNIT) is None
