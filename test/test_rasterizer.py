"""Rasteriser against analytic geometry: planes, spheres, barycentric identities, z-buffer, pixel centres."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import ConvexHull

from faceanything_ros.geometry.camera import intrinsics_matrix, pixel_grid
from faceanything_ros.geometry.projection import unproject_depth
from faceanything_ros.geometry.rasterizer import rasterize

K = intrinsics_matrix(220.0, 200.0, 63.5, 47.5)
HEIGHT, WIDTH = 96, 128


def _rays(height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """(H, W, 3) ray directions with z = 1 through every pixel centre."""
    uv1 = np.concatenate([pixel_grid(height, width), np.ones((height, width, 1))], axis=-1)
    return uv1 @ np.linalg.inv(K).T


def _quad(normal: np.ndarray, offset: float, half_size: float) -> np.ndarray:
    """(4, 3) corners of a square on the plane ``normal . X = offset`` around its point on the optical axis."""
    centre = np.array([0.0, 0.0, offset / normal[2]])
    normal = normal / np.linalg.norm(normal)
    a = np.cross(normal, [0.0, 1.0, 0.0])
    a /= np.linalg.norm(a)
    b = np.cross(normal, a)
    return np.array([centre + half_size * (sa * a + sb * b) for sa, sb in ((-1, -1), (1, -1), (1, 1), (-1, 1))])


def test_tilted_plane_depth_is_exact_at_every_pixel():
    normal = np.array([0.3, -0.2, 1.0])
    offset = 1.5 * normal[2]  # the plane normal . X = offset passes through (0, 0, 1.5)
    quad = _quad(normal, offset, 1.5)
    assert quad[:, 2].min() > 0.5
    raster = rasterize(quad, np.array([[0, 1, 2], [0, 2, 3]]), K, HEIGHT, WIDTH)
    expected = offset / (_rays() @ normal)  # z of the ray X = z * d (d_z = 1) hitting the plane
    assert raster.mask.all()
    assert raster.depth.dtype == np.float32 and raster.depth.shape == (HEIGHT, WIDTH)
    np.testing.assert_allclose(raster.depth, expected, rtol=1e-6)
    assert set(np.unique(raster.triangle)) == {0, 1}


def test_sphere_depth_matches_ray_sphere_intersection():
    centre, radius = np.array([0.02, -0.01, 0.6]), 0.12
    golden = np.pi * (3.0 - np.sqrt(5.0))
    k = np.arange(3000)
    y = 1 - 2 * (k + 0.5) / len(k)
    ring = np.sqrt(1 - y ** 2)
    unit = np.stack([ring * np.cos(golden * k), y, ring * np.sin(golden * k)], axis=1)
    hull = ConvexHull(unit)
    vertices = centre + radius * unit
    raster = rasterize(vertices, hull.simplices, K, HEIGHT, WIDTH)

    d = _rays()
    dc, dd = d @ centre, np.sum(d * d, axis=-1)
    disc = dc ** 2 - dd * (centre @ centre - radius ** 2)
    hit = disc > 0
    t = (dc - np.sqrt(np.where(hit, disc, 0.0))) / dd  # z of the near intersection (d_z = 1)
    assert not (raster.mask & ~hit).any()  # the inscribed polyhedron never leaves the sphere's silhouette
    normal_cos = np.abs(np.sum((t[..., None] * d - centre) * d, axis=-1)) / (radius * np.sqrt(dd))
    interior = hit & (normal_cos > 0.3)
    assert raster.mask[interior].all()
    error = raster.depth[interior] - t[interior]
    # facets lie inside the sphere: depth never in front of it, and behind it by at most the
    # largest facet sagitta (distance of a facet plane below the sphere) over the incidence cosine
    corners = unit[hull.simplices]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    sagitta = radius * (1.0 - np.abs(np.sum(normals * corners[:, 0], axis=1)) / np.linalg.norm(normals, axis=1)).max()
    assert 0 < sagitta < 2e-4
    assert error.min() >= -1e-6
    assert np.all(error <= sagitta / normal_cos[interior] + 1e-6)


def test_barycentrics_sum_to_one_and_reproduce_the_unprojected_point():
    rng = np.random.default_rng(3)
    vertices = np.array([[-0.3, -0.2, 1.0], [0.4, -0.25, 2.5], [0.05, 0.35, 1.6]]) + rng.normal(0, 0.01, (3, 3))
    raster = rasterize(vertices, np.array([[0, 1, 2]]), K, HEIGHT, WIDTH, attributes=vertices)
    mask = raster.mask
    assert mask.sum() > 500
    bary = raster.barycentrics[mask]
    np.testing.assert_allclose(bary.sum(axis=1), 1.0, atol=1e-6)
    assert bary.min() >= -1e-6
    points = unproject_depth(raster.depth, K)[mask]
    np.testing.assert_allclose(bary @ vertices, points, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(raster.attributes[mask], points, rtol=1e-5, atol=1e-6)
    assert np.isnan(raster.attributes[~mask]).all() and np.isnan(raster.depth[~mask]).all()
    assert (raster.triangle[~mask] == -1).all() and (raster.barycentrics[~mask] == 0).all()


@pytest.mark.parametrize("near_first", [True, False])
def test_z_buffer_keeps_the_nearer_of_two_overlapping_triangles(near_first):
    near = np.array([[-1.0, -1.0, 1.0], [1.0, -1.0, 1.0], [0.0, 1.0, 1.0]])
    far = near * 2.0  # same silhouette, twice as far
    vertices = np.concatenate([near, far] if near_first else [far, near])
    triangles = np.array([[0, 1, 2], [3, 4, 5]])
    raster = rasterize(vertices, triangles, K, HEIGHT, WIDTH, attributes=np.repeat([[1.0], [2.0]], 3, axis=0)
                       if near_first else np.repeat([[2.0], [1.0]], 3, axis=0))
    near_index = 0 if near_first else 1
    assert raster.mask.sum() > 100
    assert (raster.triangle[raster.mask] == near_index).all()
    np.testing.assert_allclose(raster.depth[raster.mask], 1.0)
    np.testing.assert_allclose(raster.attributes[raster.mask, 0], 1.0)


def test_pixel_centres_on_triangle_edges_are_covered():
    unit_camera = intrinsics_matrix(1.0, 1.0, 0.0, 0.0)  # a point (x, y, 1) lands on pixel (x, y)
    vertices = np.array([[2.0, 2.0, 1.0], [10.0, 2.0, 1.0], [2.0, 10.0, 1.0]])
    raster = rasterize(vertices, np.array([[0, 1, 2]]), unit_camera, 16, 16)
    v, u = np.mgrid[0:16, 0:16]
    expected = (u >= 2) & (v >= 2) & (u + v <= 12)  # the hypotenuse passes through pixel centres
    np.testing.assert_array_equal(raster.mask, expected)
    assert expected.sum() == 45


def test_backface_culling_and_near_plane():
    front = np.array([[-1.0, -1.0, 1.0], [0.0, 1.0, 1.0], [1.0, -1.0, 1.0]])  # normal . v0 < 0: faces the camera
    normal = np.cross(front[1] - front[0], front[2] - front[0])
    assert normal @ front[0] < 0
    back = front[[0, 2, 1]]
    assert rasterize(front, np.array([[0, 1, 2]]), K, HEIGHT, WIDTH, cull_backfaces=True).mask.any()
    assert not rasterize(back, np.array([[0, 1, 2]]), K, HEIGHT, WIDTH, cull_backfaces=True).mask.any()
    assert rasterize(back, np.array([[0, 1, 2]]), K, HEIGHT, WIDTH).mask.any()
    behind = front * [1.0, 1.0, -1.0]
    assert not rasterize(behind, np.array([[0, 1, 2]]), K, HEIGHT, WIDTH).mask.any()


def test_empty_mesh_and_chunked_candidates(monkeypatch):
    empty = rasterize(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64), K, 8, 8)
    assert not empty.mask.any() and empty.attributes.shape == (8, 8, 0)
    quad = _quad(np.array([0.0, 0.0, 1.0]), 2.0, 5.0)
    triangles = np.array([[0, 1, 2], [0, 2, 3]])
    whole = rasterize(quad, triangles, K, HEIGHT, WIDTH)
    import faceanything_ros.geometry.rasterizer as rasterizer

    monkeypatch.setattr(rasterizer, "MAX_CANDIDATES_PER_CHUNK", 100)  # every triangle its own chunk
    chunked = rasterize(quad, triangles, K, HEIGHT, WIDTH)
    np.testing.assert_array_equal(whole.triangle, chunked.triangle)
    np.testing.assert_array_equal(whole.depth, chunked.depth)


@pytest.mark.parametrize("vertices, triangles, message", [
    (np.zeros((3, 2)), np.array([[0, 1, 2]]), "vertices must have shape"),
    (np.full((3, 3), np.nan), np.array([[0, 1, 2]]), "NaN"),
    (np.ones((3, 3)), np.array([[0, 1, 3]]), "outside"),
    (np.ones((3, 3)), np.array([[0.0, 1.0, 2.0]]), "integer"),
])
def test_bad_input_is_named(vertices, triangles, message):
    with pytest.raises(ValueError, match=message):
        rasterize(vertices, triangles, K, HEIGHT, WIDTH)
    with pytest.raises(ValueError, match="attributes"):
        rasterize(np.ones((3, 3)), np.array([[0, 1, 2]]), K, HEIGHT, WIDTH, attributes=np.ones((2, 1)))


def test_a_jittered_grid_mesh_covers_every_pixel_without_gaps():
    rng = np.random.default_rng(7)
    steps = 23
    x, y = np.meshgrid(np.linspace(-1.0, 1.0, steps), np.linspace(-1.0, 1.0, steps))
    inner = (np.abs(x) < 1) & (np.abs(y) < 1)
    x = x + inner * rng.uniform(-0.03, 0.03, x.shape)  # non-integer pixel positions, shared edges everywhere
    y = y + inner * rng.uniform(-0.03, 0.03, y.shape)
    vertices = np.stack([x.ravel(), y.ravel(), 1.0 + 0.2 * rng.random(x.size)], axis=1)
    index = np.arange(x.size).reshape(steps, steps)
    quads = np.stack([index[:-1, :-1], index[:-1, 1:], index[1:, 1:], index[1:, :-1]], axis=-1).reshape(-1, 4)
    triangles = np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])
    camera = intrinsics_matrix(50.0, 50.0, 31.5, 31.5)  # the mesh overfills the 64 x 64 image
    raster = rasterize(vertices, triangles, camera, 64, 64)
    assert raster.mask.all()


def test_coverage_equals_an_exact_test_of_every_pixel_centre():
    """Random triangles with corners on a half-pixel lattice (edges through pixel centres, edges along
    rows and columns, corners outside the image): the covered pixels are exactly those whose centre
    is inside or on the triangle, decided in integer arithmetic over the whole image."""
    rng = np.random.default_rng(3)
    height, width = 24, 32
    camera = intrinsics_matrix(1.0, 1.0, 0.0, 0.0)  # pixel (u, v) = (x, y) at z = 1, exactly
    v, u = np.mgrid[0:height, 0:width]
    for _ in range(60):
        doubled = rng.integers(-12, 2 * width + 12, size=(3, 2))  # corners in half pixels
        if rng.random() < 0.5:
            doubled[1, 1] = doubled[0, 1]  # an edge along a pixel row (or between rows)
        if rng.random() < 0.3:
            doubled[2, 0] = doubled[0, 0]  # an edge along a pixel column
        corners = np.concatenate([doubled / 2.0, np.ones((3, 1))], axis=1)
        raster = rasterize(corners, np.array([[0, 1, 2]]), camera, height, width)
        edges = [(doubled[(k + 1) % 3], doubled[(k + 2) % 3]) for k in range(3)]
        functions = np.stack([(b[0] - a[0]) * (2 * v - a[1]) - (b[1] - a[1]) * (2 * u - a[0]) for a, b in edges])
        inside = np.all(functions >= 0, axis=0) | np.all(functions <= 0, axis=0)
        area = (doubled[1, 0] - doubled[0, 0]) * (doubled[2, 1] - doubled[0, 1]) - (
            doubled[1, 1] - doubled[0, 1]) * (doubled[2, 0] - doubled[0, 0])
        np.testing.assert_array_equal(raster.mask, inside & (area != 0))


def test_an_almost_horizontal_edge_is_exact_and_bounded():
    """An edge 1e-17 px off horizontal (column bounds of ~1e19 px on its rows): coverage stays exact,
    checked with rational arithmetic."""
    from fractions import Fraction

    corners = np.array([[0.25, 0.0, 1.0], [30.25, 1e-17, 1.0], [15.25, 20.0, 1.0]])
    raster = rasterize(corners, np.array([[0, 1, 2]]), intrinsics_matrix(1.0, 1.0, 0.0, 0.0), 24, 32)
    exact = [[Fraction(float(x)), Fraction(float(y))] for x, y, _ in corners]

    def inside(u: int, v: int) -> bool:
        signs = [(b[0] - a[0]) * (v - a[1]) - (b[1] - a[1]) * (u - a[0])
                 for a, b in ((exact[1], exact[2]), (exact[2], exact[0]), (exact[0], exact[1]))]
        return all(s >= 0 for s in signs) or all(s <= 0 for s in signs)

    expected = np.array([[inside(u, v) for u in range(32)] for v in range(24)])
    assert expected[1:20].any() and not expected[0].any()  # row 0 lies just outside the tilted edge
    np.testing.assert_array_equal(raster.mask, expected)
