"""Exact-geometry re-renders, camera sampling, sequences/tracks and augmentation (training.data)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import face_image

from faceanything_ros.geometry.camera import intrinsics_matrix
from faceanything_ros.geometry.projection import project_points, sample_bilinear, unproject_pixels
from faceanything_ros.geometry.rays import rays_from_intrinsics
from faceanything_ros.io.frames import read_image
from training.data.augment import augment_frames
from training.data.cameras import Camera, CameraParameters, CameraSampler, invert_pose, transform_points
from training.data.config import AugmentConfig, CameraSamplerConfig
from training.data.rerender import render_view, source_frame
from training.data.sequence import render_sequence, sample_tracks

FACE = "deca_aflw2000_image00202.jpg"  # 450 x 450, near-frontal


@pytest.fixture(scope="module")
def labelled():
    """(rgb, MeshLabel, SourceFrame) of a real face."""
    from faceanything_ros.canonical.pseudo_labels import FaceMeshLabeler

    rgb = read_image(face_image(FACE))
    with FaceMeshLabeler() as labeler:
        label = labeler.label(rgb)[0]
    return rgb, label, source_frame(rgb, label.vertices, label.intrinsics, label.rotation, label.triangles)


def novel_camera(source, yaw=25.0, pitch=-10.0, roll=5.0, distance=0.6, size=256):
    return CameraSampler().camera(CameraParameters(yaw, pitch, roll, distance, 60.0, (0.6, 0.4), 1.5, (0.03, -0.02)),
                                  source.vertices, source.rotation, size)


def test_original_camera_reproduces_pseudo_labels_and_pixels(labelled):
    rgb, label, source = labelled
    height, width = rgb.shape[:2]
    assert height == width
    view = render_view(source, Camera(label.intrinsics, np.eye(4), height), label.triangles, label.canonical_vertices)
    labels = label.render(height, width)
    np.testing.assert_array_equal(view.mask, labels.mask)
    assert view.mask.sum() > 10000
    np.testing.assert_allclose(view.depth[view.mask], labels.depth[labels.mask], rtol=1e-6)
    np.testing.assert_allclose(view.canonical[view.mask], labels.canonical[labels.mask], atol=1e-6)
    assert np.all(np.isnan(view.depth[~view.mask]))
    difference = np.abs(view.rgb[view.mask].astype(int) - rgb[view.mask].astype(int))
    assert difference.max() <= 1 and difference.mean() < 0.01


def test_novel_view_depth_is_the_posed_mesh_seen_by_the_known_camera(labelled):
    _, label, source = labelled
    camera = novel_camera(source)
    view = render_view(source, camera, label.triangles, label.canonical_vertices)
    assert 0.1 < view.mask.mean() < 0.9
    # every masked pixel unprojects onto the plane of its triangle of the posed mesh, moved by the pose
    rows, cols = np.nonzero(view.mask)
    points = unproject_pixels(np.stack([cols, rows], 1).astype(float), view.depth[rows, cols].astype(float), camera.intrinsics)
    world = transform_points(camera.world_from_camera, points)
    corners = label.vertices[label.triangles[view.triangle[rows, cols]]]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    assert np.abs(np.einsum("nk,nk->n", world - corners[:, 0], normals)).max() < 1e-5  # metres
    # vertices re-projected into the new view land on their own depth and canonical value
    vertices = camera.to_camera(label.vertices[:468])
    pixels, z = project_points(vertices, camera.intrinsics)
    sampled = sample_bilinear(view.depth.astype(np.float64), pixels)
    hit = np.isfinite(sampled)
    assert hit.sum() > 200
    assert np.median(np.abs(sampled[hit] - z[hit])) < 2e-4
    canonical = sample_bilinear(view.canonical.astype(np.float64), pixels[hit])
    assert np.median(np.abs(canonical - label.canonical_vertices[:468][hit])) < 0.01
    assert np.nanmin(view.canonical) >= -1.0 and np.nanmax(view.canonical) <= 1.0


def test_novel_view_rays_texture_and_pose(labelled):
    rgb, label, source = labelled
    camera = novel_camera(source, yaw=-30.0)
    view = render_view(source, camera, label.triangles, label.canonical_vertices)
    np.testing.assert_array_equal(view.rays, rays_from_intrinsics(camera.intrinsics, 256, 256))
    np.testing.assert_allclose(invert_pose(view.world_from_camera) @ view.world_from_camera, np.eye(4), atol=1e-12)
    # a textured pixel shows the source pixel its surface point projects to
    rows, cols = np.nonzero(view.mask)
    points = unproject_pixels(np.stack([cols, rows], 1).astype(float), view.depth[rows, cols].astype(float), camera.intrinsics)
    world = transform_points(camera.world_from_camera, points)
    source_pixels, _ = project_points(world, label.intrinsics)
    expected = sample_bilinear(rgb, source_pixels)
    assert np.median(np.abs(expected - view.rgb[rows, cols])) <= 1.0
    # surface the source never saw is marked, not textured
    assert np.all(view.surface[view.mask]) and np.all(view.rgb[~view.mask & ~view.context] == 0)
    # the source's surroundings show around the face (image only: never on the ground-truth mask)
    assert view.context.mean() > 0.2 and not (view.context & view.mask).any()


def test_camera_sampler_stays_in_range_and_looks_at_the_face():
    config = CameraSamplerConfig()
    sampler = CameraSampler(config)
    rng = np.random.default_rng(1)
    vertices = np.random.default_rng(0).uniform(-0.08, 0.08, size=(50, 3)) + [0.02, -0.01, 0.5]
    centre = (vertices.min(axis=0) + vertices.max(axis=0)) / 2
    for _ in range(300):
        params = sampler.sample_parameters(rng)
        assert -40 <= params.yaw_deg <= 40 and -25 <= params.pitch_deg <= 25 and -15 <= params.roll_deg <= 15
        assert 0.3 <= params.distance_m <= 3.0 and 30 <= params.hfov_deg <= 100
        assert all(config.frame_margin <= p <= 1 - config.frame_margin for p in params.frame_position)
        width, height = sampler.sample_frame_size(rng)
        camera = sampler.camera(params, vertices, np.eye(3), 128, (width, height))
        np.testing.assert_allclose(np.linalg.norm(camera.world_from_camera[:3, 3] - centre), params.distance_m)
        # the crop's principal point is the full frame's centre, wherever the crop lies in the frame
        x0, y0, x1, y1 = camera.frame_box
        np.testing.assert_allclose(camera.intrinsics[:2, 2], [(x0 + x1) / 2, (y0 + y1) / 2], atol=1e-6)
        # and the frame spans the drawn horizontal field of view
        half = (x1 - x0) / 2  # frame_box spans the frame's outer pixel edges
        assert np.degrees(2 * np.arctan(half / camera.intrinsics[0, 0])) == pytest.approx(params.hfov_deg, rel=1e-3)
        # the face fills the crop as a detector box times the crop scale would
        pixels, _ = project_points(camera.to_camera(vertices), camera.intrinsics)
        extent = float(np.max(pixels.max(axis=0) - pixels.min(axis=0)))
        assert extent == pytest.approx(128 / params.crop_scale, rel=1e-6)
    frontal = sampler.camera(CameraParameters(0, 0, 0, 1.0, 60.0, (0.5, 0.5), 1.5, (0, 0)), vertices, np.eye(3), 128,
                             (641, 481))
    np.testing.assert_allclose(frontal.world_from_camera[:3, :3], np.eye(3), atol=1e-12)
    np.testing.assert_allclose(frontal.world_from_camera[:3, 3], centre - [0, 0, 1.0])
    yawed = sampler.camera(CameraParameters(30, 0, 0, 1.0, 60.0, (0.2, 0.9), 1.5, (0, 0)), vertices, np.eye(3), 128)
    np.testing.assert_allclose(yawed.world_from_camera[:3, 3] - centre, [-np.sin(np.pi / 6), 0, -np.cos(np.pi / 6)])
    corner = sampler.camera(CameraParameters(0, 0, 0, 1.0, 90.0, (0.02, 0.02), 1.5, (0, 0)), vertices, np.eye(3), 128)
    assert not corner.in_frame.all() and corner.in_frame.any()  # a face at the corner: its crop leaves the frame


def test_source_view_is_the_detector_crop_of_the_real_image(labelled):
    rgb, label, source = labelled
    height, width = rgb.shape[:2]
    sampler = CameraSampler(CameraSamplerConfig(source_view_probability=1.0))
    cameras = sampler.source_trajectory(np.random.default_rng(4), [source.vertices] * 2, label.intrinsics,
                                        (width, height), 128)
    camera = cameras[0]
    np.testing.assert_array_equal(camera.world_from_camera, np.eye(4))
    np.testing.assert_array_equal(cameras[1].intrinsics, camera.intrinsics)  # one crop for a still face
    pixels, _ = project_points(source.vertices, camera.intrinsics)
    extent = float(np.max(pixels.max(axis=0) - pixels.min(axis=0)))
    assert 128 / 1.7 - 1e-6 <= extent <= 128 / 1.3 + 1e-6  # the configured crop scale
    view = render_view(source, camera, label.triangles, label.canonical_vertices)
    # every pixel inside the image is real: face texture plus the source's own surroundings
    real = view.mask | view.context
    assert (real & camera.in_frame).mean() > 0.97 * camera.in_frame.mean()
    crop_to_image = (label.intrinsics @ np.linalg.inv(camera.intrinsics))[:2]
    expected = cv2.warpAffine(rgb, crop_to_image, (128, 128), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    difference = np.abs(view.rgb[real].astype(int) - expected[real].astype(int))
    assert np.median(difference) <= 1 and difference.mean() < 4
    # ground truth is the pseudo-label's z-depth seen through the crop
    labels = label.render(height, width)
    label_depth = cv2.warpAffine(labels.depth, crop_to_image, (128, 128),
                                 flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP, borderValue=np.nan)
    both = view.mask & np.isfinite(label_depth)
    assert both.sum() > 0.95 * view.mask.sum() > 0.2 * 128 * 128
    assert np.median(np.abs(view.depth[both] / label_depth[both] - 1)) < 0.005


def test_trajectory_is_smooth_and_in_range():
    rng = np.random.default_rng(2)
    vertices = np.random.default_rng(0).uniform(-0.08, 0.08, size=(50, 3)) + [0, 0, 0.5]
    cameras = CameraSampler().sample_trajectory(rng, [vertices] * 5, np.eye(3), 128)
    params = np.stack([c.parameters.as_array() for c in cameras])
    steps = np.diff(params, axis=0)
    np.testing.assert_allclose(steps, np.repeat(steps[:1], 4, axis=0), atol=1e-9)  # equal steps: linear motion
    span = CameraSamplerConfig().trajectory_span
    assert abs(params[-1, 0] - params[0, 0]) <= span * 80 and abs(params[-1, 3] - params[0, 3]) <= span * 2.7
    assert np.all((-40 <= params[:, 0]) & (params[:, 0] <= 40) & (0.3 <= params[:, 3]) & (params[:, 3] <= 3.0))
    assert np.all(params[:, 4] == params[0, 4])  # one lens for the whole sequence


def test_sequence_tracks_are_exact_for_a_static_face(labelled):
    _, label, source = labelled
    cameras = CameraSampler().sample_trajectory(np.random.default_rng(3), [source.vertices] * 3, source.rotation, 128)
    views = render_sequence([source] * 3, cameras, label.triangles, label.canonical_vertices)
    tracks = sample_tracks(np.random.default_rng(4), views, [source.vertices] * 3, label.triangles, 200)
    assert tracks.pixels.shape == (200, 3, 2) and tracks.visible.shape == (200, 3)
    for n in range(200):
        q = tracks.query_frame[n]
        u, v = tracks.pixels[n, q]
        assert views[q].mask[int(v), int(u)] and u == int(u) and v == int(v)
        point = unproject_pixels(np.array([[u, v]], float), np.array([views[q].depth[int(v), int(u)]], float),
                                 cameras[q].intrinsics)
        world = transform_points(cameras[q].world_from_camera, point)
        for t in range(3):
            expected, _ = project_points(cameras[t].to_camera(world), cameras[t].intrinsics)
            np.testing.assert_allclose(tracks.pixels[n, t], expected[0], atol=2e-3)
        np.testing.assert_allclose(tracks.canonical[n], views[q].canonical[int(v), int(u)])
    assert tracks.visible.mean() > 0.5


def test_sequence_tracks_follow_a_deforming_face(labelled):
    _, label, source = labelled
    moved = source.vertices.copy()
    moved[:, 1] += 0.01 * (moved[:, 0] - moved[:, 0].mean()) / np.ptp(moved[:, 0])  # shear by up to 1 cm
    second = source_frame(source.rgb, moved, source.intrinsics, source.rotation, label.triangles)
    camera = Camera(intrinsics_matrix(500, 500, 127.5, 127.5), np.eye(4), 256)
    camera.world_from_camera[:3, 3] = source.face_centre - [0, 0, 0.7]
    views = render_sequence([source, second], [camera, camera], label.triangles, label.canonical_vertices)
    tracks = sample_tracks(np.random.default_rng(5), views, [source.vertices, moved], label.triangles, 300)
    from_first = (tracks.query_frame == 0) & tracks.visible[:, 1]
    assert from_first.sum() > 50
    landed = sample_bilinear(views[1].canonical.astype(np.float64), tracks.pixels[from_first, 1].astype(np.float64))
    good = np.all(np.isfinite(landed), axis=1)
    assert np.median(np.abs(landed[good] - tracks.canonical[from_first][good])) < 0.005
    assert np.abs(tracks.pixels[from_first, 1] - tracks.pixels[from_first, 0]).max() > 3  # the face did move


def test_augmentation_is_seeded_and_leaves_ground_truth_alone(labelled):
    _, label, source = labelled
    view = render_view(source, novel_camera(source), label.triangles, label.canonical_vertices)
    frames, masks = view.rgb[None].copy(), view.mask[None].copy()
    depth, canonical = view.depth.copy(), view.canonical.copy()
    pool = [np.full((90, 120, 3), 200, np.uint8)]
    first = augment_frames(np.random.default_rng(7), frames, masks, pool, AugmentConfig())
    again = augment_frames(np.random.default_rng(7), frames, masks, pool, AugmentConfig())
    other = augment_frames(np.random.default_rng(8), frames, masks, pool, AugmentConfig())
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    np.testing.assert_array_equal(frames, view.rgb[None])
    np.testing.assert_array_equal(masks, view.mask[None])
    np.testing.assert_array_equal(depth, view.depth)
    np.testing.assert_array_equal(canonical, view.canonical)
    assert first.shape == frames.shape and first.dtype == np.uint8
    solid = AugmentConfig(background_weights=(0, 0, 0, 1), blur_probability=0, noise_probability=0, jpeg_probability=0,
                          brightness=(1, 1), contrast=(1, 1), saturation=(1, 1), gain=(1, 1), gamma=(1, 1))
    plain = augment_frames(np.random.default_rng(9), frames, masks, [], solid)
    np.testing.assert_array_equal(plain[0][view.mask], view.rgb[view.mask])
    assert len(np.unique(plain[0][~view.mask].reshape(-1, 3), axis=0)) == 1
