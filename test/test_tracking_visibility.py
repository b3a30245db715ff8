"""Visibility, hysteresis, template queries, lost tracks and the One-Euro filter on exact synthetic frames."""
from __future__ import annotations

import math

import numpy as np
import pytest

from faceanything_ros.canonical import load_canonical_space
from faceanything_ros.config import TrackerConfig
from faceanything_ros.geometry import intrinsics_from_fov
from faceanything_ros.tracking import (
    CanonicalTracker,
    MultiFaceTracker,
    OneEuroFilter,
    TrackingFrame,
    canonical_queries,
    template_surface,
)
from faceanything_ros.tracking.template_render import head_rotation_matrix, render_template_frame, template_pixels
from test_tracking import MOTION, TILT, similarity_frame

HEIGHT, WIDTH = 480, 640
K = intrinsics_from_fov(WIDTH, HEIGHT, 60.0)
HEAD = np.array([0.0, 0.0, 0.45])  # metres in front of the camera
YAWS = np.arange(0.0, 90.0, 2.0)  # degrees, one frame each


def truly_visible(canonical: np.ndarray, frame: TrackingFrame, rotation: np.ndarray) -> np.ndarray:
    """``(Q,)`` bool: the template point is inside the image, faces the camera and is not hidden (z-buffer)."""
    points = load_canonical_space().denormalize(canonical) @ rotation.T + HEAD
    normals = template_surface().normals_at(canonical) @ rotation.T
    facing = -np.einsum("qk,qk->q", normals, points / np.linalg.norm(points, axis=1, keepdims=True)) > 0
    cols, rows = np.round(template_pixels(canonical, rotation, HEAD, K)).astype(int).T
    inside = (cols >= 0) & (cols < WIDTH) & (rows >= 0) & (rows < HEIGHT)
    surface = np.full(len(points), np.nan)
    surface[inside] = frame.depth[rows[inside], cols[inside]]
    return inside & facing & ~(points[:, 2] > surface + 0.003)


def last_visible_frame(visible: np.ndarray) -> np.ndarray:
    """``(Q,)`` index of the last frame each column of ``(T, Q)`` is visible in (-1: never)."""
    seen = visible.any(axis=0)
    return np.where(seen, visible.shape[0] - 1 - np.argmax(visible[::-1], axis=0), -1)


@pytest.mark.parametrize("checks, within", [({}, 2), ({"min_facing": -1.0, "enter_facing": -1.0,
                                                      "max_depth_step": 10.0}, None)])
def test_far_cheek_goes_invisible_at_the_true_frame(checks: dict, within: int | None) -> None:
    queries = canonical_queries(256)
    tracker = CanonicalTracker(TrackerConfig(num_tracks=256, **checks))
    tracker.seed_canonical()
    tracked, truth = [], []
    for yaw in YAWS:  # the head turns to its left: the right cheek (canonical x < 0) turns away
        rotation = head_rotation_matrix(yaw_deg=yaw)
        frame = render_template_frame(rotation, HEAD, K, HEIGHT, WIDTH)
        tracked.append(tracker.step(frame).visible)
        truth.append(truly_visible(queries, frame, rotation))
    tracked, truth = np.array(tracked), np.array(truth)
    true_last, tracked_last = last_visible_frame(truth), last_visible_frame(tracked)
    # far-cheek points seen from the start that vanish once, at 10 degrees of yaw or later
    vanishes_once = np.array([truth[: last + 1, k].all() and not truth[last + 1:, k].any()
                              for k, last in enumerate(true_last)])
    cheek = (queries[:, 0] < -0.4) & (np.abs(queries[:, 1]) < 0.5) & vanishes_once
    cheek &= (YAWS[true_last] >= 10.0) & (true_last < len(YAWS) - 1)
    assert cheek.sum() >= 10
    error = tracked_last[cheek] - true_last[cheek]
    if within is not None:
        assert np.abs(error).max() <= within, error
        assert (tracked == truth).mean() > 0.97
    else:  # canonical distance alone keeps turned-away points "visible" on the silhouette
        assert np.abs(error).max() > 2


def offset_frame(offset: float) -> TrackingFrame:
    """The affine similarity frame with its canonical plane moved ``offset`` along its normal."""
    frame = similarity_frame(MOTION[0])
    normal = np.array([0.0, -math.sin(TILT), math.cos(TILT)])
    return TrackingFrame(frame.canonical + offset * normal, frame.confidence, frame.mask)


def test_hysteresis_needs_the_enter_distance_to_come_back() -> None:
    tracker = CanonicalTracker(TrackerConfig(max_distance=0.05, enter_distance=0.03, queries="pixels"))
    tracker.add_queries(offset_frame(0.0), np.array([[60.0, 45.0], [50.0, 40.0]]))
    offsets = [0.0, 0.04, 0.045, 0.06, 0.04, 0.035, 0.02, 0.04]
    states = [tracker.step(offset_frame(offset)) for offset in offsets]
    np.testing.assert_allclose([s.distance[0] for s in states], offsets, atol=1e-5)  # refined: the plane offset
    assert [bool(s.visible.all()) for s in states] == [True, True, True, False, False, False, True, True]
    assert np.isfinite(states[3].pixels).all()  # a near miss keeps its best match, reported invisible


def test_refined_distance_is_reported_after_refinement() -> None:
    local = np.array([[0.11, -0.23], [0.4, 0.1], [-0.3, 0.35]])
    start = MOTION[0][0] + MOTION[0][1] * local
    frames = [similarity_frame(pose, "affine") for pose in MOTION]
    refined = CanonicalTracker(TrackerConfig(refine=True)).track(frames, [(0, start)])
    nearest = CanonicalTracker(TrackerConfig(refine=False)).track(frames, [(0, start)])
    assert refined.distance.max() < 1e-5 < nearest.distance[1:].min()


def test_template_queries_are_deterministic_well_spread_surface_points() -> None:
    surface = template_surface()
    queries = canonical_queries(256)
    np.testing.assert_array_equal(canonical_queries(64), queries[:64])  # more tracks extend, never reorder
    space = load_canonical_space()
    assert np.abs(queries).max() <= 1.0 and queries[0, 2] == surface.points[:, 2].min()  # starts at the nose tip
    np.testing.assert_allclose(surface.on_mesh(queries, space.canonical_template), queries, atol=1e-12)
    gaps = np.linalg.norm(queries[:, None] - queries[None], axis=2) + np.eye(len(queries)) * 9
    cover = np.linalg.norm(surface.points[:, None] - queries[None], axis=2).min(axis=1).max()
    assert gaps.min() >= cover * 0.999 and cover < 0.2  # farthest-point sampling: spacing >= covering radius
    tracker = CanonicalTracker(TrackerConfig(num_tracks=32))
    np.testing.assert_array_equal(tracker.seed_canonical(), np.arange(32))
    np.testing.assert_array_equal(tracker.seed_canonical(40), np.arange(32, 40))  # only the missing ones
    tracker.add_queries(similarity_frame(MOTION[0]), np.array([[60.0, 45.0]]))
    with pytest.raises(ValueError, match="seed canonical queries"):
        tracker.seed_canonical(64)


def test_replace_lost_keeps_visible_ids() -> None:
    config = TrackerConfig(num_tracks=40, queries="pixels")
    tracker = MultiFaceTracker(config)
    full = similarity_frame(MOTION[0])
    first = tracker.step([full])
    # the face comes closer (uncovered gaps open between the tracks) and its centre is occluded
    occluded = similarity_frame(((60.0, 45.0), 46.0, 0.0), "affine", occluder=((60.0, 45.0), 16.0))
    second = tracker.step([occluded])
    lost = first.ids[~second.visible]
    assert 0 < len(lost) < len(first)
    added = tracker.replace_lost()
    third = tracker.step([occluded])
    kept = np.setdiff1d(first.ids, lost)
    assert set(kept) <= set(third.ids) and not set(lost) & set(third.ids)
    assert 0 < added <= len(lost) and third.ids.min() == 0 and np.setdiff1d(third.ids, kept).min() >= len(first)
    assert third.visible.mean() > 0.95 and np.all(third.face == 0)


def test_a_face_that_leaves_keeps_its_tracks_invisible_and_returns_with_its_id() -> None:
    config = TrackerConfig(num_tracks=20, queries="pixels", face_max_missing=2)
    tracker = MultiFaceTracker(config)
    left, right = similarity_frame(((40.0, 45.0), 20.0, 0.0)), similarity_frame(((95.0, 45.0), 20.0, 0.0))
    both = tracker.step([left, right])
    assert sorted(set(both.face)) == [0, 1] and both.visible.all()
    only_right = tracker.step([similarity_frame(((96.0, 46.0), 20.0, 0.05))])
    gone = only_right.face == 0
    assert not only_right.visible[gone].any() and np.isnan(only_right.pixels[gone]).all()
    assert only_right.visible[~gone].all()
    back = tracker.step([similarity_frame(((41.0, 45.0), 20.0, 0.0)), right])
    np.testing.assert_array_equal(np.unique(back.face), [0, 1])  # matched by box and canonical consistency
    for _ in range(3):
        alone = tracker.step([right])
    np.testing.assert_array_equal(np.unique(alone.face), [1])  # dropped after face_max_missing frames


def filtered(signal: np.ndarray, times: np.ndarray, beta: float) -> np.ndarray:
    one_euro = OneEuroFilter(min_cutoff_hz=1.0, beta=beta)
    return np.stack([one_euro(np.array([7]), value, time) for value, time in zip(signal, times)])


def test_one_euro_filter_smooths_still_points_and_follows_moving_ones() -> None:
    rng = np.random.default_rng(0)
    times = np.arange(120) / 30.0
    noise = rng.normal(scale=0.5, size=(120, 1, 2))
    ramp = np.broadcast_to((times * 60.0)[:, None, None], noise.shape)  # 60 pixels per second
    still = filtered(5.0 + noise, times, beta=0.05)
    assert np.std(np.diff(still[60:], axis=0)) < np.std(np.diff(noise[60:], axis=0)) / 3
    lag = {beta: np.abs(filtered(ramp, times, beta)[60:] - ramp[60:]).mean() for beta in (0.0, 0.05)}
    assert lag[0.05] < 3.0 < 6.0 < lag[0.0]  # the speed-adaptive cutoff follows motion
    one_euro = OneEuroFilter(1.0, 0.0)
    np.testing.assert_array_equal(one_euro(np.array([1, 2]), np.array([[1.0], [np.nan]]), 0.0), [[1.0], [np.nan]])
    with pytest.raises(ValueError, match="times must increase"):
        one_euro(np.array([1]), np.array([[1.0]]), 0.0)
    with pytest.raises(ValueError, match="min_cutoff_hz > 0"):
        OneEuroFilter(0.0, 0.1)


def test_tracker_filter_is_off_by_default_and_smooths_when_on() -> None:
    rng = np.random.default_rng(1)
    frames = [similarity_frame(((60.0 + dx, 45.0 + dy), 36.0, 0.0), "hemisphere")
              for dx, dy in rng.normal(scale=0.6, size=(40, 2))]
    start = np.array([[60.0, 45.0], [70.0, 50.0]])
    raw = CanonicalTracker(TrackerConfig(queries="pixels")).track(frames, [(0, start)])
    smooth = CanonicalTracker(TrackerConfig(queries="pixels", filter=True)).track(frames, [(0, start)])
    assert TrackerConfig().filter is False
    assert np.std(np.diff(smooth.pixels[10:], axis=0)) < np.std(np.diff(raw.pixels[10:], axis=0)) / 2


def test_tracker_config_errors() -> None:
    for bad, message in [({"queries": "landmarks"}, "queries"), ({"enter_distance": 0.1}, "enter_distance"),
                         ({"enter_facing": -0.5}, "min_facing"), ({"search_radius": -1}, "search_radius")]:
        with pytest.raises(ValueError, match=message):
            MultiFaceTracker(TrackerConfig(**bad))
