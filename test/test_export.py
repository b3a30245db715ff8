import numpy as np
import pytest

from faceanything_ros.export.colorize import colorize_canonical, colorize_depth, draw_tracks, track_colors
from faceanything_ros.export.depth import depth_to_millimetres, load_depth_png, save_depth_png
from faceanything_ros.export.ply import read_ply, write_ply
from faceanything_ros.geometry.pointcloud import PointCloud


def test_depth_png_round_trip_in_millimetres(tmp_path):
    depth = np.array([[0.5, 1.2345, np.nan], [70.0, -1.0, 0.0004]], dtype=np.float32)
    millimetres = depth_to_millimetres(depth)
    assert millimetres.dtype == np.uint16
    assert millimetres.tolist() == [[500, 1234, 0], [65535, 0, 0]]  # 70 m clips; negative and NaN -> 0
    save_depth_png(tmp_path / "d.png", depth)
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
