import numpy as np
import pytest

from faceanything_ros.export.colorize import (
    colorize_canonical, colorize_depth, colorize_region, draw_tracks, track_colors,
)
from faceanything_ros.export.depth import (
    depth_to_millimetres, load_depth_png, load_reconstruction_npz, save_millimetres_png, save_reconstruction_npz,
)
from faceanything_ros.export.ply import read_ply, write_ply
from faceanything_ros.geometry.pointcloud import PointCloud


def test_depth_png_round_trip_in_millimetres(tmp_path):
    depth = np.array([[0.5, 1.2345, np.nan], [70.0, -1.0, 0.0004]], dtype=np.float32)
    millimetres = depth_to_millimetres(depth)
    assert millimetres.dtype == np.uint16
    assert millimetres.tolist() == [[500, 1234, 0], [65535, 0, 0]]  # 70 m clips; negative and NaN -> 0
    save_millimetres_png(tmp_path / "d.png", depth_to_millimetres(depth))
    back = load_depth_png(tmp_path / "d.png")
    assert back[0, 0] == pytest.approx(0.5) and back[0, 1] == pytest.approx(1.234)
    assert np.isnan(back[0, 2]) and np.isnan(back[1, 1])


def test_load_depth_png_rejects_colour_png(tmp_path):
    import cv2

    cv2.imwrite(str(tmp_path / "rgb.png"), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="not a single-channel 16-bit depth PNG"):
        load_depth_png(tmp_path / "rgb.png")


def test_ply_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    cloud = PointCloud(points=rng.normal(size=(50, 3)).astype(np.float32),
                       colors=rng.integers(0, 255, size=(50, 3), dtype=np.uint8),
                       pixels=rng.integers(0, 100, size=(50, 2)).astype(np.int32),
                       canonical=rng.uniform(-1, 1, size=(50, 3)).astype(np.float32),
                       confidence=rng.uniform(1, 5, size=50).astype(np.float32))
    write_ply(tmp_path / "c.ply", cloud)
    vertices = read_ply(tmp_path / "c.ply")
    np.testing.assert_array_equal(np.stack([vertices["x"], vertices["y"], vertices["z"]], 1), cloud.points)
    np.testing.assert_array_equal(np.stack([vertices["red"], vertices["green"], vertices["blue"]], 1), cloud.colors)
    np.testing.assert_array_equal(vertices["canonical_w"], cloud.canonical[:, 2])
    np.testing.assert_array_equal(vertices["confidence"], cloud.confidence)
    (tmp_path / "bad.ply").write_bytes((tmp_path / "c.ply").read_bytes()[:-7])
    with pytest.raises(ValueError, match="expected 50 vertices"):
        read_ply(tmp_path / "bad.ply")


def test_colorize_maps():
    canonical = np.array([[[-1, 0, 1], [np.nan, 0, 0]]], dtype=np.float32)
    assert colorize_canonical(canonical).tolist() == [[[0, 128, 255], [0, 0, 0]]]
    depth = np.array([[0.4, 0.6, np.nan]], dtype=np.float32)
    image = colorize_depth(depth, near=0.4, far=0.6)
    assert image[0, 2].tolist() == [0, 0, 0] and image[0, 0].tolist() != image[0, 1].tolist()


def test_track_overlay_colours_are_stable_per_id():
    assert track_colors(np.array([7]))[0].tolist() == track_colors(np.array([3, 7]))[1].tolist()
    assert track_colors(np.array([], dtype=np.int64)).shape == (0, 3)
    image = np.zeros((20, 20, 3), np.uint8)
    drawn = draw_tracks(image, np.array([1, 2]), np.array([[5.0, 5.0], [15.0, 15.0]]), np.array([True, False]))
    assert drawn[5, 5].any() and not drawn[15, 15].any() and not image.any()


@pytest.fixture(scope="module")
def mesh_reconstruction():
    from conftest import face_image
    from faceanything_ros.io.frames import read_image
    from faceanything_ros.reference import MeshReference

    rgb = read_image(face_image("mica_carell.jpg"))
    with MeshReference() as reference:
        (reconstruction,) = reference.predict(rgb)
    assert reconstruction.found
    return rgb, reconstruction


def test_maps_file_stores_the_face_region_and_loads_full_image_maps(tmp_path, mesh_reconstruction):
    _, reconstruction = mesh_reconstruction
    save_reconstruction_npz(tmp_path / "m.npz", reconstruction)
    height, width = reconstruction.image_size
    with np.load(tmp_path / "m.npz") as stored:
        x0, y0, x1, y1 = stored["region"]
        assert stored["depth"].shape == (y1 - y0, x1 - x0) < (height, width)  # only the faces' box is stored
    rows, cols = np.nonzero(reconstruction.mask)
    assert (x0, y0, x1, y1) == (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
    maps = load_reconstruction_npz(tmp_path / "m.npz")
    for key in ("depth", "depth_confidence", "canonical", "canonical_confidence", "face_index", "mask"):
        np.testing.assert_array_equal(maps[key], getattr(reconstruction, key), err_msg=key)
    np.testing.assert_array_equal(maps["intrinsics"], reconstruction.intrinsics)
    assert maps["face_boxes"].shape == (1, 5) and int(maps["frame_index"]) == reconstruction.frame_index


def test_maps_file_of_a_frame_without_a_face(tmp_path):
    from faceanything_ros.reconstruction import Reconstruction

    empty = Reconstruction(frame_index=3, image_size=(4, 6), intrinsics=np.eye(3), intrinsics_source="given")
    save_reconstruction_npz(tmp_path / "e.npz", empty)
    maps = load_reconstruction_npz(tmp_path / "e.npz")
    assert maps["depth"].shape == (4, 6) and np.isnan(maps["depth"]).all() and not maps["mask"].any()
    assert maps["canonical"].shape == (4, 6, 3) and (maps["face_index"] == -1).all()


def test_colouring_the_face_region_equals_colouring_the_whole_map(mesh_reconstruction):
    _, reconstruction = mesh_reconstruction
    region, size = reconstruction.region, reconstruction.image_size
    for name, colorize in (("depth", colorize_depth), ("canonical", colorize_canonical), ("depth", depth_to_millimetres)):
        full = getattr(reconstruction, name)
        np.testing.assert_array_equal(reconstruction.in_region(name), full[region])
        outside = np.ones(size, dtype=bool)
        outside[region] = False
        assert np.isnan(full[outside]).all() and np.isfinite(full[reconstruction.mask]).all()
        np.testing.assert_array_equal(colorize_region(colorize, reconstruction, name), colorize(full))
    with pytest.raises(ValueError, match="no frame map 'mask'"):
        reconstruction.in_region("mask")


@pytest.mark.parametrize("producer", ["mesh", "mesh resampled", "model"])
def test_every_producer_keeps_a_faces_depth_and_canonical_finite_on_its_mask_and_nan_off_it(producer):
    """The rule ``Reconstruction``'s frame maps rely on (a lone face's maps are then the frame's)."""
    from conftest import face_image
    from faceanything_ros.config import FaceMeshConfig
    from faceanything_ros.io.frames import read_image
    from faceanything_ros.model.bundled import bundled_checkpoint
    from faceanything_ros.predictor import Predictor
    from faceanything_ros.reference import MeshReference

    rgb = read_image(face_image("mica_carell.jpg"))
    reconstructor = Predictor(bundled_checkpoint()) if producer == "model" else \
        MeshReference(FaceMeshConfig(max_raster_side=64 if producer == "mesh resampled" else 4096))
    with reconstructor:
        (reconstruction,) = reconstructor.predict(rgb[None])
    (face,) = reconstruction.faces
    assert face.mask.any() and (~face.mask).any()
    assert np.isfinite(face.depth[face.mask]).all() and np.isnan(face.depth[~face.mask]).all()
    assert np.isfinite(face.canonical[face.mask]).all() and np.isnan(face.canonical[~face.mask]).all()
    assert face.depth.dtype == face.canonical.dtype == np.float32


def test_a_lone_faces_frame_maps_are_its_own_maps_where_it_is_the_visible_face(mesh_reconstruction):
    _, reconstruction = mesh_reconstruction
    (face,), region = reconstruction.faces, reconstruction.region
    visible = reconstruction.face_index[region] == 0
    assert visible.any() and not visible.all()
    for name in ("depth", "depth_confidence", "canonical", "canonical_confidence"):
        own = face.over(name, region)
        expected = np.where(visible[..., None] if own.ndim == 3 else visible, own, np.nan)
        np.testing.assert_array_equal(reconstruction.in_region(name), expected, err_msg=name)


def test_a_frame_map_over_any_region_equals_the_whole_map_cut_there(mesh_reconstruction):
    _, reconstruction = mesh_reconstruction
    (rows, cols), (height, width) = reconstruction.region, reconstruction.image_size
    assert reconstruction.over("canonical", (rows, cols)) is reconstruction.in_region("canonical")
    straddling = (slice(rows.start + 7, min(height, rows.stop + 20)), slice(max(0, cols.start - 13), cols.stop - 5))
    corners = [(slice(top, top + 3), slice(left, left + 4)) for top in (0, height - 3) for left in (0, width - 4)]
    apart = next(corner for corner in corners if corner[0].stop <= rows.start or corner[0].start >= rows.stop
                 or corner[1].stop <= cols.start or corner[1].start >= cols.stop)
    for name in ("depth", "canonical"):
        full = getattr(reconstruction, name)
        for region in (straddling, apart, (slice(None), slice(-50, None))):
            over = reconstruction.over(name, region)
            np.testing.assert_array_equal(over, full[region], err_msg=f"{name} over {region}")
            assert over.dtype == np.float32 and not over.flags.writeable
    assert np.isfinite(reconstruction.over("depth", straddling)).any()
    assert np.isnan(reconstruction.over("depth", apart)).all()
    with pytest.raises(ValueError, match="step 1"):
        reconstruction.over("depth", (slice(0, height, 2), slice(None)))


def test_sequence_writer_writes_queued_frames_and_raises_its_thread_s_error(tmp_path):
    import shutil

    from faceanything_ros.export.writer import SequenceWriter
    from faceanything_ros.reconstruction import Reconstruction

    frames = [Reconstruction(frame_index=i, image_size=(8, 10), intrinsics=np.eye(3), intrinsics_source="given")
              for i in range(3)]
    writer = SequenceWriter(tmp_path / "ok", fps=10, ply_every=0, queue_size=1)
    for reconstruction in frames:
        writer.write_frame(np.zeros((8, 10, 3), np.uint8), reconstruction, None)
    writer.close(None)
    assert sorted(p.name for p in (tmp_path / "ok" / "depth").iterdir()) == ["000000.png", "000001.png", "000002.png"]
    assert load_reconstruction_npz(tmp_path / "ok" / "maps" / "000002.npz")["depth"].shape == (8, 10)

    with pytest.raises(ValueError, match="point_stride must be >= 1"):
        SequenceWriter(tmp_path / "bad", fps=10, point_stride=0)
    writer = SequenceWriter(tmp_path / "broken", fps=10, ply_every=0)
    shutil.rmtree(tmp_path / "broken" / "depth")
    writer.write_frame(np.zeros((8, 10, 3), np.uint8), frames[0], None)
    with pytest.raises(OSError, match="broken.*could not write depth PNG"):
        writer.close(None)
