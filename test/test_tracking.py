"""Canonical tracker on synthetic sequences whose true correspondences are known analytically.

Scene "similarity": a disk-shaped face moves, scales and rotates in the image; the canonical
coordinate of a pixel is a function of its face-local position ``s`` (``|s| <= 1`` on the face),
so a query's true pixel in every frame follows from the similarity transform. Scene "plane": a
disk on a 3-D plane moves rigidly in front of a pinhole camera, giving depth maps and exact 3-D
points.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from faceanything_ros.config import TrackerConfig
from faceanything_ros.geometry import intrinsics_matrix
from faceanything_ros.tracking import (
    CanonicalTracker,
    KDTreeNeighbours,
    TorchNeighbours,
    TrackingFrame,
    Tracks,
    TrackState,
    build_neighbour_index,
    refine_subpixel,
)
from faceanything_ros.tracking.canonical_tracker import coarse_stride

HEIGHT, WIDTH = 96, 128
TILT = math.radians(35.0)
# Face-local position s (..., 2) -> canonical (..., 3). "affine": an isotropic plane in [-1, 1]^3,
# so the nearest canonical value is also the nearest pixel; "hemisphere": a smooth curved map.
CANONICAL_MAPS = {
    "affine": lambda s: 0.8 * np.stack([s[..., 0], s[..., 1] * math.cos(TILT), s[..., 1] * math.sin(TILT)], -1),
    "hemisphere": lambda s: 0.9 * np.stack([*np.moveaxis(s, -1, 0), np.sqrt(np.clip(1 - (s**2).sum(-1), 0, None))], -1),
}
# (centre (u, v) pixels, scale pixels per local unit, rotation radians) per frame.
MOTION = [((60.0, 45.0), 36.0, 0.0), ((63.3, 47.1), 38.5, 0.15), ((58.2, 50.6), 33.0, -0.2), ((66.7, 44.9), 40.0, 0.4)]


def rotation(angle: float) -> np.ndarray:
    return np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])


def similarity_frame(pose: tuple, canonical_map: str = "affine", occluder: tuple | None = None) -> TrackingFrame:
    """Frame of the similarity scene; ``occluder`` ((u, v), radius) removes a disk from the mask."""
    centre, scale, angle = pose
    v, u = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    local = (np.stack([u, v], -1) - centre) @ rotation(angle) / scale  # rotation(-angle) applied to row vectors
    mask = (local**2).sum(-1) <= 1.0
    if occluder is not None:
        mask &= (u - occluder[0][0]) ** 2 + (v - occluder[0][1]) ** 2 > occluder[1] ** 2
    return TrackingFrame(CANONICAL_MAPS[canonical_map](local), np.where(mask, 3.0, 1.0), mask)


def true_pixels(local: np.ndarray, pose: tuple) -> np.ndarray:
    """``(Q, 2)`` pixels of face-local points ``(Q, 2)`` in the frame with ``pose``."""
    centre, scale, angle = pose
    return np.asarray(centre) + scale * local @ rotation(angle).T


def random_local_points(count: int, radius: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0, 2 * math.pi, count)
    length = radius * np.sqrt(rng.uniform(0, 1, count))
    return np.stack([length * np.cos(angle), length * np.sin(angle)], 1)


@pytest.mark.parametrize("canonical_map", sorted(CANONICAL_MAPS))
def test_refined_tracks_recover_true_pixels(canonical_map: str) -> None:
    local = random_local_points(60, 0.7)
    tracker = CanonicalTracker(TrackerConfig(refine=True))
    frames = [similarity_frame(pose, canonical_map) for pose in MOTION]
    tracks = tracker.track(frames, [(0, true_pixels(local, MOTION[0]))])
    assert tracks.visible.all()
    for t, pose in enumerate(MOTION):
        error = np.linalg.norm(tracks.pixels[t] - true_pixels(local, pose), axis=1)
        assert error.max() < 0.05, (t, error.max())


@pytest.mark.parametrize("canonical_map", sorted(CANONICAL_MAPS))
@pytest.mark.parametrize(("scale", "stride"), [(255.0, 4), (420.0, 6)])
def test_a_close_face_is_searched_on_a_sparser_grid_to_the_exact_searchs_pixels(canonical_map: str, scale: float,
                                                                               stride: int) -> None:
    """Queries found anew on a face of 200,000 or 550,000 pixels (a disk with a hole) are matched on every
    4th or 6th row and column (about ``COARSE_CANDIDATES`` pixels), then in windows as wide as that step
    re-centred while the match is on a border: the exact search's pixels, up to the silhouette and the hole."""
    size = int(2 * scale + 60)
    v, u = np.mgrid[0:size, 0:size].astype(np.float64)
    frames = []
    for centre, angle in (((size / 2, size / 2), 0.3), ((size / 2 - 7.5, size / 2 + 5.2), 0.34)):
        local = (np.stack([u, v], -1) - centre) @ rotation(angle) / scale
        mask = ((local**2).sum(-1) <= 1.0) & (((local - (0.35, -0.2)) ** 2).sum(-1) > 0.15**2)
        frames.append(TrackingFrame(CANONICAL_MAPS[canonical_map](local), np.where(mask, 3.0, 1.0), mask))
    assert coarse_stride(np.count_nonzero(frames[1].mask)) == stride
    local = random_local_points(400, 0.99, seed=2)
    queries = true_pixels(local[((local - (0.35, -0.2)) ** 2).sum(-1) > 0.16**2], ((size / 2, size / 2), scale, 0.3))
    steps = []
    for config in (TrackerConfig(refine=False), TrackerConfig(refine=False, search_radius=0)):
        tracker = CanonicalTracker(config)
        tracker.add_queries(frames[0], queries)
        steps.append(tracker.step(frames[1]))  # nothing to start from: every query is found anew
    np.testing.assert_array_equal(steps[0].pixels, steps[1].pixels)
    assert steps[1].visible.mean() > 0.9


def test_unrefined_tracks_are_nearest_pixels() -> None:
    local = random_local_points(60, 0.7)
    tracker = CanonicalTracker(TrackerConfig(refine=False))
    tracks = tracker.track([similarity_frame(pose) for pose in MOTION], [(0, true_pixels(local, MOTION[0]))])
    for t, pose in enumerate(MOTION):
        assert np.array_equal(tracks.pixels[t], np.round(tracks.pixels[t]))
        error = np.linalg.norm(tracks.pixels[t] - true_pixels(local, pose), axis=1)
        assert error.max() <= math.sqrt(0.5) + 1e-4
        # Isotropic affine map: canonical distance = pixel distance * 0.8 / scale.
        np.testing.assert_allclose(tracks.distance[t], error * 0.8 / pose[1], atol=1e-5)


def test_occluded_and_cropped_points_are_invisible() -> None:
    local = random_local_points(200, 0.9, seed=1)
    start = true_pixels(local, MOTION[0])
    occluder = ((70.0, 50.0), 14.0)
    cropped_pose = ((110.0, 45.0), 36.0, 0.1)  # right part of the face leaves the 128-pixel-wide image
    occluded = similarity_frame(MOTION[1], "affine", occluder)
    frames = [similarity_frame(MOTION[0]), occluded, similarity_frame(cropped_pose)]
    tracks = CanonicalTracker().track(frames, [(0, start)])
    occluded_at = np.linalg.norm(true_pixels(local, MOTION[1]) - occluder[0], axis=1)
    assert not tracks.visible[1, occluded_at < occluder[1] - 4].any()
    assert tracks.visible[1, occluded_at > occluder[1] + 2].all()
    cropped_u = true_pixels(local, cropped_pose)[:, 0]
    assert not tracks.visible[2, cropped_u > WIDTH - 1 + 4].any()
    assert tracks.visible[2, cropped_u < WIDTH - 1 - 2].all()
    assert (cropped_u > WIDTH + 3).sum() > 10 and (occluded_at < occluder[1] - 4).sum() > 10


def plane_frame(rotation_3d: np.ndarray, translation: np.ndarray, K: np.ndarray, radius: float) -> TrackingFrame:
    """Disk of ``radius`` metres on the plane z_local = 0 of pose (R, T); canonical = local xy / radius."""
    v, u = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    rays = np.stack([u, v, np.ones_like(u)], -1) @ np.linalg.inv(K).T  # z = 1: scaled by z-depth
    normal = rotation_3d[:, 2]
    depth = (normal @ translation) / (rays @ normal)
    local = ((rays * depth[..., None]) - translation) @ rotation_3d  # R^T (X - T) for row vectors
    canonical = CANONICAL_MAPS["affine"](local[..., :2] / radius)
    mask = (local[..., :2] ** 2).sum(-1) <= radius**2
    return TrackingFrame(canonical, np.ones((HEIGHT, WIDTH)), mask, depth, K)


def axis_rotation(rx: float, ry: float) -> np.ndarray:
    about_x = np.array([[1, 0, 0], [0, math.cos(rx), -math.sin(rx)], [0, math.sin(rx), math.cos(rx)]])
    about_y = np.array([[math.cos(ry), 0, math.sin(ry)], [0, 1, 0], [-math.sin(ry), 0, math.cos(ry)]])
    return about_y @ about_x


def test_points_match_analytic_3d_positions_on_moving_plane() -> None:
    K = intrinsics_matrix(110.0, 105.0, 63.2, 47.7)
    radius = 0.09
    translations = [np.array([0.01, -0.005, 0.03]) * t + [0.0, 0.0, 0.5] for t in range(4)]
    poses = [(axis_rotation(0.1 * t, 0.2 * t - 0.25), translation) for t, translation in enumerate(translations)]
    frames = [plane_frame(R, T, K, radius) for R, T in poses]
    local = np.concatenate([random_local_points(40, 0.7 * radius, seed=2), np.zeros((40, 1))], 1)
    truth_points = np.stack([local @ R.T + T for R, T in poses])  # (T, Q, 3)
    truth_pixels = truth_points @ K.T
    truth_pixels = truth_pixels[..., :2] / truth_pixels[..., 2:]
    no_facing_check = TrackerConfig(min_facing=-1.0, enter_facing=-1.0)  # a plane, not the face template
    tracks = CanonicalTracker(no_facing_check).track(frames, [(0, truth_pixels[0])])
    assert tracks.visible.all()
    assert np.abs(tracks.pixels - truth_pixels).max() < 0.05
    assert np.abs(tracks.points - truth_points).max() < 1e-4


def streaming_tracks(tracker: CanonicalTracker, frames: list, queries: list) -> Tracks:
    states = []
    for t, frame in enumerate(frames):
        for query_frame, pixels in queries:
            if query_frame == t:
                tracker.add_queries(frame, pixels)
        states.append(tracker.step(frame))
    return Tracks.from_states(states)


def assert_tracks_equal(first: Tracks, second: Tracks) -> None:
    for name in ("ids", "query_frame", "pixels", "points", "distance", "visible"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name), err_msg=name)


def test_streaming_equals_batch_and_late_queries_are_padded() -> None:
    frames = [similarity_frame(pose, "hemisphere") for pose in MOTION]
    queries = [(0, true_pixels(random_local_points(5, 0.6, seed=3), MOTION[0])),
               (2, true_pixels(random_local_points(4, 0.6, seed=4), MOTION[2]))]
    batch = CanonicalTracker().track(frames, queries)
    assert_tracks_equal(streaming_tracks(CanonicalTracker(), frames, queries), batch)
    np.testing.assert_array_equal(batch.ids, np.arange(9))
    np.testing.assert_array_equal(batch.query_frame, [0] * 5 + [2] * 4)
    assert np.isnan(batch.pixels[:2, 5:]).all() and not batch.visible[:2, 5:].any()
    assert batch.visible[2:].all() and batch.num_frames == 4 and batch.num_tracks == 9


def test_torch_and_kdtree_backends_give_identical_tracks() -> None:
    frames = [similarity_frame(pose, "hemisphere") for pose in MOTION]
    queries = [(0, true_pixels(random_local_points(50, 0.8, seed=5), MOTION[0]))]
    kdtree = CanonicalTracker(backend="kdtree").track(frames, queries)
    brute_force = CanonicalTracker(backend="torch").track(frames, queries)
    assert_tracks_equal(kdtree, brute_force)


@pytest.mark.parametrize("chunk_elements", [1 << 24, 7, 1000])
def test_neighbour_backends_agree(chunk_elements: int) -> None:
    rng = np.random.default_rng(6)
    reference = rng.uniform(-1, 1, (500, 3)).astype(np.float32)
    queries = rng.uniform(-1, 1, (37, 3))
    index, distance = KDTreeNeighbours(reference).query(queries)
    torch_index, torch_distance = TorchNeighbours(reference, "cpu", chunk_elements).query(queries)
    np.testing.assert_array_equal(torch_index, index)
    np.testing.assert_allclose(torch_distance, distance, rtol=1e-5)
    brute = np.linalg.norm(queries[:, None] - reference[None].astype(np.float64), axis=2)
    np.testing.assert_array_equal(index, brute.argmin(axis=1))
    np.testing.assert_allclose(distance, brute.min(axis=1), rtol=1e-12)
    assert index.dtype == np.int64 and TorchNeighbours(reference).query(np.zeros((0, 3)))[0].shape == (0,)


def test_neighbour_search_errors() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        build_neighbour_index(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="unknown neighbour search backend"):
        build_neighbour_index(np.zeros((2, 3)), backend="faiss")
    with pytest.raises(ValueError, match=r"queries must have shape \(N, 3\)"):
        KDTreeNeighbours(np.zeros((2, 3))).query(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="NaN"):
        TorchNeighbours(np.full((2, 3), np.nan))


def test_seed_grid_covers_face_with_unique_stable_ids() -> None:
    frame = similarity_frame(MOTION[0])
    tracker = CanonicalTracker(TrackerConfig(num_tracks=100))
    ids = tracker.seed_grid(frame)
    state = tracker.step(frame)
    assert 80 <= len(ids) <= 120
    np.testing.assert_array_equal(ids, np.arange(len(ids)))
    pixels = state.pixels.astype(np.int64)
    assert frame.mask[pixels[:, 1], pixels[:, 0]].all()
    spacing = math.sqrt(frame.mask.sum() / 100)
    assert abs(np.diff(np.unique(pixels[:, 0])).mean() - spacing) < 1.0
    assert state.visible.all() and np.all(state.distance == 0)
    more = tracker.seed_grid(frame, num_tracks=10)
    tracker.reset()
    after_reset = tracker.add_queries(frame, pixels[:3])
    all_ids = np.concatenate([ids, more, after_reset])
    assert len(np.unique(all_ids)) == len(all_ids) and np.all(np.diff(all_ids) == 1)
    np.testing.assert_array_equal(tracker.ids, after_reset)


def test_batch_seeds_on_first_frame_with_face() -> None:
    empty = TrackingFrame(np.zeros((HEIGHT, WIDTH, 3)), np.zeros((HEIGHT, WIDTH)), np.zeros((HEIGHT, WIDTH), bool))
    frames = [empty, similarity_frame(MOTION[0]), similarity_frame(MOTION[1])]
    tracks = CanonicalTracker(TrackerConfig(num_tracks=30, queries="pixels")).track(frames)
    assert tracks.num_tracks > 20 and np.all(tracks.query_frame == 1)
    assert np.isnan(tracks.pixels[0]).all() and tracks.visible[1:].all()


def test_frames_without_confident_face_make_every_query_invisible() -> None:
    face = similarity_frame(MOTION[0])
    tracker = CanonicalTracker(TrackerConfig(min_confidence=2.0))
    tracker.seed_grid(face, num_tracks=20)
    unconfident = TrackingFrame(face.canonical, np.full((HEIGHT, WIDTH), 1.5), face.mask)
    no_mask = TrackingFrame(face.canonical, face.confidence, np.zeros((HEIGHT, WIDTH), bool))
    for frame in (unconfident, no_mask):
        state = tracker.step(frame)
        assert isinstance(state, TrackState) and len(state) == tracker.num_queries > 0
        assert not state.visible.any() and np.isnan(state.pixels).all() and np.isnan(state.points).all()
    empty_tracker_state = CanonicalTracker().step(face)
    assert len(empty_tracker_state) == 0 and empty_tracker_state.pixels.shape == (0, 2)


def test_refine_subpixel_is_exact_on_anisotropic_affine_map() -> None:
    rng = np.random.default_rng(7)
    jacobian = rng.normal(scale=0.05, size=(3, 2))
    v, u = np.mgrid[0:20, 0:30].astype(np.float64)
    canonical = np.stack([u, v], -1) @ jacobian.T + [0.1, -0.2, 0.3]
    targets_at = np.array([[10.3, 5.6], [0.2, 19.0], [15.0, 7.9]])
    targets = targets_at @ jacobian.T + [0.1, -0.2, 0.3]
    start = np.array([[10, 6], [0, 19], [15, 8]])
    refined = refine_subpixel(canonical, np.ones((20, 30), bool), start, targets)
    np.testing.assert_allclose(refined, targets_at, atol=1e-9)
    far = refine_subpixel(canonical, np.ones((20, 30), bool), np.array([[3, 3]]), targets[:1])
    np.testing.assert_allclose(far, [[4.0, 4.0]])  # step clamped to one pixel per axis
    isolated = np.zeros((20, 30), bool)
    isolated[6, 10] = True
    np.testing.assert_array_equal(refine_subpixel(canonical, isolated, start[:1], targets[:1]), [[10.0, 6.0]])
    one_row = np.zeros((20, 30), bool)
    one_row[6] = True  # neighbours on one line through p*: J's v column is undetermined
    np.testing.assert_array_equal(refine_subpixel(canonical, one_row, start[:1], targets[:1]), [[10.0, 6.0]])


def test_tracker_input_errors() -> None:
    frame = similarity_frame(MOTION[0])
    tracker = CanonicalTracker()
    with pytest.raises(ValueError, match="outside the 128x96 image"):
        tracker.add_queries(frame, np.array([[60.0, 45.0], [128.0, 10.0]]))
    with pytest.raises(ValueError, match="not on the confident face"):
        tracker.add_queries(frame, np.array([[60.0, 45.0], [2.0, 2.0]]))
    assert tracker.num_queries == 0
    with pytest.raises(ValueError, match=r"shape \(Q, 2\)"):
        tracker.add_queries(frame, np.array([60.0, 45.0]))
    with pytest.raises(TypeError, match="expected a TrackingFrame"):
        tracker.step(frame.canonical)
    with pytest.raises(ValueError, match=r"frame index 3 is not in \[0, 1\)"):
        tracker.track([frame], [(3, np.array([[60.0, 45.0]]))])
    with pytest.raises(ValueError, match="unknown neighbour search backend"):
        CanonicalTracker(backend="annoy")
    with pytest.raises(ValueError, match="max_distance"):
        CanonicalTracker(TrackerConfig(max_distance=0.0))
    with pytest.raises(ValueError, match=r"canonical map must have shape \(H, W, 3\)"):
        TrackingFrame(np.zeros((4, 4)), np.zeros((4, 4)), np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match=r"depth must have shape \(4, 4\)"):
        TrackingFrame(np.zeros((4, 4, 3)), np.zeros((4, 4)), np.zeros((4, 4), bool), depth=np.zeros((4, 5)))
    with pytest.raises(ValueError, match="mask must be a bool array"):
        TrackingFrame(np.zeros((4, 4, 3)), np.zeros((4, 4)), np.zeros((4, 4)))
    with pytest.raises(ValueError, match="NaN"):
        TrackingFrame(np.zeros((4, 4, 3)), np.zeros((4, 4)), np.zeros((4, 4), bool), intrinsics=np.full((3, 3), np.nan))


def test_row_median_of_valid_depths_equals_numpy_nanmedian():
    from faceanything_ros.tracking.visibility import _row_nanmedian

    rng = np.random.default_rng(3)
    values = rng.random((300, 25))
    values[rng.random(values.shape) < 0.4] = np.nan
    values[0] = np.nan  # no valid depth: NaN
    values[1] = np.nan
    values[1, 7] = 0.5  # one valid depth: itself
    values[2] = np.nan
    values[2, [3, 9]] = [0.2, 0.4]  # two: their mean
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = np.nanmedian(values, axis=1)
    np.testing.assert_array_equal(_row_nanmedian(values), expected)
    assert np.isnan(expected[0]) and expected[1] == 0.5 and expected[2] == pytest.approx(0.3)
