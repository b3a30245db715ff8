"""Canonical face space: mesh topology checks, the shipped template, normalisation and the template script."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from conftest import FACES_TRAIN
from faceanything_ros.canonical import MEDIAPIPE_SPACE_ID, CanonicalSpace, load_canonical_space
from faceanything_ros.canonical.mediapipe_space import (
    IRIS_CENTERS,
    NOSE_TIP,
    SPACE_VERSION,
    TEMPLATE_FILE,
    MediaPipeFaceSpace,
)
from faceanything_ros.canonical.space import MIRROR, register_canonical_space
from faceanything_ros.canonical.topology import (
    EXPECTED_BOUNDARY_LOOPS,
    EXPECTED_EULER_CHARACTERISTIC,
    NUM_SURFACE_LANDMARKS,
    mediapipe_tessellation_edges,
    surface_report,
    triangles_from_edges,
)
from faceanything_ros.geometry.camera import intrinsics_from_fov
from faceanything_ros.geometry.rasterizer import rasterize
from training.canonical_template import build_template, generalized_procrustes, select_images

TRAIN_IMAGES = FACES_TRAIN / "images"


@pytest.fixture(scope="module")
def space() -> MediaPipeFaceSpace:
    return load_canonical_space()


def _directed_edges(triangles: np.ndarray) -> set[tuple[int, int]]:
    return {edge for a, b, c in triangles.tolist() for edge in ((a, b), (b, c), (c, a))}


def test_topology_is_a_consistently_oriented_disk_with_eye_and_mouth_holes(space):
    report = surface_report(space.topology)
    assert report.num_triangles == 852 and report.num_vertices == NUM_SURFACE_LANDMARKS == 468
    assert report.nonmanifold_edges == 0
    assert report.inconsistent_edges == 0
    assert report.duplicate_triangles == 0 and report.degenerate_triangles == 0
    assert report.interior_edges + report.boundary_edges == report.num_edges == 1322
    assert report.boundary_loops == EXPECTED_BOUNDARY_LOOPS == 4
    assert report.euler_characteristic == EXPECTED_EULER_CHARACTERISTIC == 2 - 4
    assert space.topology.max() < NUM_SURFACE_LANDMARKS  # iris points 468-477 have no triangles


def test_topology_matches_mediapipe_tessellation_edges_and_orientation(space):
    edges = mediapipe_tessellation_edges()
    assert len(edges) == 2556 == 3 * len(space.topology)
    # every mediapipe edge (with its direction) is a triangle edge of the shipped topology and back
    assert _directed_edges(space.topology) == edges
    derived = triangles_from_edges(edges)
    assert {tuple(sorted(t)) for t in derived.tolist()} == {tuple(sorted(t)) for t in space.topology.tolist()}


def test_surface_report_detects_defects():
    square = np.array([[0, 1, 2], [0, 2, 3]])
    assert surface_report(square).inconsistent_edges == 0
    assert surface_report(square).euler_characteristic == 1 and surface_report(square).boundary_loops == 1
    flipped = np.array([[0, 1, 2], [0, 3, 2]])
    assert surface_report(flipped).inconsistent_edges == 1
    assert surface_report(np.array([[0, 1, 2], [2, 1, 0]])).duplicate_triangles == 1
    assert surface_report(np.array([[0, 1, 1]])).degenerate_triangles == 1
    assert surface_report(np.array([[0, 1, 2], [0, 1, 3], [1, 0, 4]])).nonmanifold_edges == 1


def test_triangles_face_a_camera_looking_at_the_template(space):
    K = intrinsics_from_fov(256, 256, 40.0)
    vertices = space.template + [0.0, 0.0, 0.5]  # frontal face 0.5 m in front of the camera
    both = rasterize(vertices, space.topology, K, 256, 256)
    front = rasterize(vertices, space.topology, K, 256, 256, cull_backfaces=True)
    assert both.mask.sum() > 5_000
    np.testing.assert_array_equal(front.mask, both.mask)  # nothing visible is a back face


def test_template_is_metric_and_normalised(space):
    assert space.id == MEDIAPIPE_SPACE_ID == "mediapipe-facemesh-478"
    assert space.version == SPACE_VERSION == "1"
    assert space.num_vertices == 478 and space.template.shape == (478, 3)
    ipd = np.linalg.norm(space.template[IRIS_CENTERS[0]] - space.template[IRIS_CENTERS[1]])
    assert ipd == pytest.approx(0.063, abs=1e-12)
    canonical = space.canonical_template
    assert canonical.min() >= -1 - 1e-12 and canonical.max() <= 1 + 1e-12
    largest = np.argmax(space.template.max(axis=0) - space.template.min(axis=0))
    assert canonical[:, largest].min() == pytest.approx(-1.0) and canonical[:, largest].max() == pytest.approx(1.0)
    assert space.mm_per_unit == pytest.approx(1000 * np.ptp(space.template[:, largest]) / 2)
    # template frame: x from the subject's right eye (image left) to the left one, y down, nose tip nearest
    assert space.template[IRIS_CENTERS[0], 0] < 0 < space.template[IRIS_CENTERS[1], 0]
    assert space.template[10, 1] < space.template[NOSE_TIP, 1] < space.template[152, 1]  # forehead, nose, chin
    assert space.template[NOSE_TIP, 2] < np.median(space.template[:, 2])
    face_height_mm = 1000 * (space.template[152, 1] - space.template[10, 1])
    assert 140 < face_height_mm < 200  # adult menton-forehead distance


def test_the_template_is_its_own_mirror_image_through_x_0(space):
    """``MIRROR`` maps every template point onto its left-right counterpart (training's flips and the
    predictor's flip averaging rely on it): the mirrored template lies on the template within 1 mm."""
    canonical = space.canonical_template
    distance, counterpart = cKDTree(canonical).query(canonical * MIRROR)
    assert distance.max() * space.mm_per_unit < 1.0
    assert counterpart[IRIS_CENTERS[0]] == IRIS_CENTERS[1] and counterpart[NOSE_TIP] == NOSE_TIP


def test_normalize_denormalize_round_trip(space):
    points = np.random.default_rng(0).uniform(-0.2, 0.2, (100, 3))
    np.testing.assert_allclose(space.denormalize(space.normalize(points)), points, atol=1e-15)
    np.testing.assert_allclose(space.normalize(space.center[None]), 0.0, atol=1e-15)
    step = space.normalize(space.center + [space.mm_per_unit / 1000.0, 0.0, 0.0])
    np.testing.assert_allclose(step, [1.0, 0.0, 0.0], atol=1e-12)


def test_registry_loads_other_spaces_and_names_unknown_ones(tmp_path):
    class TetraSpace(CanonicalSpace):
        def __init__(self) -> None:
            self.id, self.version = "tetra", "0"
            self.topology = np.array([[0, 1, 2], [0, 3, 1], [1, 3, 2], [2, 3, 0]])
            self.template = np.array([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [0.0, 0.1, 0.0], [0.0, 0.0, 0.1]])
            self.center, self.mm_per_unit = np.full(3, 0.05), 50.0

    register_canonical_space("tetra", TetraSpace)
    tetra = load_canonical_space("tetra")
    np.testing.assert_allclose(tetra.canonical_template[1], [1.0, -1.0, -1.0])
    with pytest.raises(KeyError, match="flame"):
        load_canonical_space("flame")
    with pytest.raises(FileNotFoundError, match="canonical space file"):
        MediaPipeFaceSpace(tmp_path / "missing.npz")


def test_generalized_procrustes_recovers_a_shape_under_similarity_transforms():
    rng = np.random.default_rng(1)
    shape = rng.normal(size=(30, 3))
    copies = [shape] + [2.5 * shape @ Rotation.random(random_state=i).as_matrix().T + rng.normal(size=3)
                        for i in range(5)]
    mean = generalized_procrustes(np.stack(copies))
    expected = shape - shape.mean(axis=0)
    expected /= np.sqrt(np.mean(np.sum(expected ** 2, axis=1)))
    np.testing.assert_allclose(mean, expected, atol=1e-9)  # orientation of the first shape


def test_template_script_is_reproducible_on_a_subset():
    if not TRAIN_IMAGES.is_dir():
        pytest.skip(f"training images not found: {TRAIN_IMAGES}")
    paths = select_images(TRAIN_IMAGES, 6, seed=0)
    assert paths == select_images(TRAIN_IMAGES, 6, seed=0) and len(paths) == 6
    first = build_template(paths, TRAIN_IMAGES)
    second = build_template(paths, TRAIN_IMAGES)
    np.testing.assert_array_equal(first[0], second[0])
    assert first[2:] == second[2:] and first[2] >= 5
    assert np.linalg.norm(first[0][IRIS_CENTERS[0]] - first[0][IRIS_CENTERS[1]]) == pytest.approx(0.063)
    assert np.abs(first[0] - load_canonical_space().template).max() < 0.015  # 6 faces already near the mean


@pytest.mark.slow
def test_shipped_template_matches_a_rerun_of_the_script(tmp_path):
    if not TRAIN_IMAGES.is_dir():
        pytest.skip(f"training images not found: {TRAIN_IMAGES}")
    from training.canonical_template import main

    out = tmp_path / "space.npz"
    assert main(["--images", str(TRAIN_IMAGES), "-o", str(out)]) == 0
    rerun, shipped = MediaPipeFaceSpace(out), MediaPipeFaceSpace(TEMPLATE_FILE)
    assert rerun.num_faces == shipped.num_faces and rerun.sources_sha256 == shipped.sources_sha256
    np.testing.assert_allclose(rerun.template, shipped.template, atol=1e-6)
    np.testing.assert_array_equal(rerun.topology, shipped.topology)
