"""NeRSemble-layout multi-view ingest on a capture this engine renders itself with known cameras."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from conftest import face_image

from faceanything_ros.geometry.camera import intrinsics_matrix
from faceanything_ros.geometry.rasterizer import rasterize
from faceanything_ros.io.frames import read_image
from training.cli import main as data_main
from training.data.cameras import CameraParameters, CameraSampler, invert_pose, transform_points
from training.data.dataset import FaceDataset
from training.data.multiview import load_capture, read_calibration, render_calibrated, triangulate
from training.data.rerender import render_view, source_frame

YAWS = (-30.0, -10.0, 10.0, 30.0)
SIZE = 384


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    """(capture folder, ground-truth world mesh, space): 4 calibrated renders of a labelled real face."""
    from faceanything_ros.canonical.pseudo_labels import FaceMeshLabeler

    rgb = read_image(face_image("deca_aflw2000_image00302.jpg"))
    with FaceMeshLabeler() as labeler:
        label = labeler.label(rgb)[0]
    source = source_frame(rgb, label.vertices, label.intrinsics, label.rotation, label.triangles)
    root = tmp_path_factory.mktemp("nersemble") / "sequence"
    images = root / "timesteps" / "frame_00000" / "images"
    images.mkdir(parents=True)
    world_2_cam, intrinsics = {}, {}
    for index, yaw in enumerate(YAWS):
        camera = CameraSampler().camera(CameraParameters(yaw, 5.0 * (index % 2), 0.0, 0.8, 40.0, (0.5, 0.5), 1.6, (0.0, 0.0)),
                                        source.vertices, source.rotation, SIZE)
        view = render_view(source, camera, label.triangles, label.canonical_vertices)
        picture = np.where(view.mask[..., None], view.rgb, np.uint8(120))
        cv2.imwrite(str(images / f"cam_{index:03d}.png"), picture[..., ::-1])
        world_2_cam[f"{index:03d}"] = invert_pose(camera.world_from_camera).tolist()
        intrinsics[f"{index:03d}"] = camera.intrinsics.tolist()  # each crop has its own K
    (root / "calibration").mkdir()
    (root / "calibration" / "camera_params.json").write_text(json.dumps({"intrinsics": intrinsics, "world_2_cam": world_2_cam}))
    return root, label.vertices, label


def test_layout_and_calibration_are_read(capture):
    root, _, _ = capture
    views = load_capture(root)["frame_00000"]
    assert [v.camera for v in views] == ["000", "001", "002", "003"]
    calibration = read_calibration(root / "calibration" / "camera_params.json")
    assert calibration["002"][0].shape == (3, 3) and calibration["002"][1].shape == (4, 4)
    with pytest.raises(FileNotFoundError, match="calibration"):
        read_calibration(root / "missing.json")


def test_triangulation_is_exact_on_exact_projections():
    rng = np.random.default_rng(0)
    points = rng.uniform(-0.1, 0.1, (50, 3)) + [0, 0, 1.0]
    K = intrinsics_matrix(800, 800, 320, 240)
    poses, pixels = [], []
    for yaw in (-0.4, 0.0, 0.5):
        pose = np.eye(4)
        c, s = np.cos(yaw), np.sin(yaw)
        pose[:3, :3] = [[c, 0, s], [0, 1, 0], [-s, 0, c]]
        pose[:3, 3] = [0, 0, 1.0] - pose[:3, :3] @ [0, 0, 1.0]
        camera = transform_points(invert_pose(pose), points)
        pixels.append((camera @ K.T)[:, :2] / camera[:, 2:])
        poses.append(pose)
    weights = np.ones((3, 50))
    weights[1:, 0] = 0  # point 0 seen by one view only
    fused = triangulate(np.stack(pixels), weights, np.stack([K] * 3), np.stack(poses))
    np.testing.assert_allclose(fused[1:], points[1:], atol=1e-9)
    assert np.all(np.isnan(fused[0]))


def test_ingest_recovers_the_known_geometry(capture, tmp_path):
    from faceanything_ros.canonical.pseudo_labels import FaceMeshLabeler
    from faceanything_ros.canonical.space import load_canonical_space
    from training.data.multiview import fuse_views

    root, truth, _ = capture
    views = load_capture(root)["frame_00000"]
    with FaceMeshLabeler() as labeler:
        fused, used, _ = fuse_views(views, labeler)
        monocular_mm = []
        for view in views:  # each view's own fit moved into the world: metric scale is a prior there
            own = labeler.label(read_image(view.image), view.intrinsics)[0].vertices
            world = transform_points(view.world_from_camera, own)
            monocular_mm.append(np.median(np.linalg.norm(world[:468] - truth[:468], axis=1)) * 1000)
    assert len(used) == len(YAWS)
    error_mm = np.linalg.norm(fused[:468] - truth[:468], axis=1) * 1000
    assert np.median(error_mm) < 5.0 and np.percentile(error_mm, 90) < 12.0
    assert np.median(error_mm) < 0.8 * min(monocular_mm)  # fusion beats every single view by 20 % or more
    space = load_canonical_space()
    for view in used:  # the fused and the true mesh seen by each calibrated camera
        camera_from_world = invert_pose(view.world_from_camera)
        ingested, expected = (rasterize(transform_points(camera_from_world, mesh), space.topology, view.intrinsics,
                                        SIZE, SIZE, space.canonical_template) for mesh in (fused, truth))
        both = ingested.mask & expected.mask
        # the cut-out renders make FaceMesh place the face oval a few pixels inside the true outline
        assert both.sum() > 0.75 * expected.mask.sum()
        assert np.median(np.abs(ingested.depth[both] - expected.depth[both])) < 0.004  # metres
        assert np.median(np.abs(ingested.attributes[both] - expected.attributes[both])) < 0.05  # ~4 mm of template
        sample = render_calibrated(fused, view, space, 128)
        assert sample.mask.any() and sample.rgb.shape == (128, 128, 3)
    code = data_main(["ingest-multiview", str(root), "-o", str(tmp_path / "mv"), "--size", "96", "--preview"])
    assert code == 0
    dataset = FaceDataset(tmp_path / "mv", None)
    assert len(dataset) == len(YAWS)
    item = dataset[0]
    assert item["images"].shape == (1, 3, 96, 96) and item["mask"].any()
    assert (tmp_path / "mv" / "preview.png").is_file()
