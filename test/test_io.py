"""Input validation and frame sources (video, image folder, single image) on real face data."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import face_image, face_video

from faceanything_ros.geometry.camera import intrinsics_matrix
from faceanything_ros.io import (
    MAX_IMAGE_PIXELS,
    MAX_IMAGE_SIDE_PX,
    MIN_IMAGE_SIDE_PX,
    open_frames,
    read_image,
    validate_frames,
    validate_intrinsics_for_frames,
    validate_rgb,
)

VIDEO_NAME = "liveportrait_d18_man_frontal_mouth.mp4"  # 480x480, 216 frames, 30 fps (SOURCES.md)
IMAGE_NAME = "mica_carell.jpg"  # 486x486


@pytest.fixture
def video() -> Path:
    """Path of the shared test video ``VIDEO_NAME`` (skips when the shared data is absent)."""
    return face_video(VIDEO_NAME)


@pytest.fixture
def image() -> Path:
    """Path of the shared test image ``IMAGE_NAME`` (skips when the shared data is absent)."""
    return face_image(IMAGE_NAME)


def rgb_image(height: int, width: int) -> np.ndarray:
    return np.arange(height * width * 3, dtype=np.uint8).reshape(height, width, 3)


# --- validate_rgb / validate_frames -------------------------------------------------------------


def test_validate_rgb_returns_contiguous_uint8_unchanged():
    image = rgb_image(40, 50)
    assert validate_rgb(image) is image
    strided = rgb_image(40, 100)[:, ::2]
    out = validate_rgb(strided)
    assert out.flags.c_contiguous and np.array_equal(out, strided)


@pytest.mark.parametrize(
    "image, error, pattern",
    [
        ([[1, 2, 3]], TypeError, "must be a numpy array"),
        (np.zeros((40, 40, 3), np.float64), TypeError, "dtype float64; expected uint8"),
        (np.zeros((40, 40, 3), np.uint16), TypeError, "dtype uint16; expected uint8"),
        (np.zeros((40, 40), np.uint8), ValueError, r"greyscale with shape \(40, 40\)"),
        (np.zeros((40, 40, 1), np.uint8), ValueError, "1 channel"),
        (np.zeros((40, 40, 4), np.uint8), ValueError, "4 channels .RGBA"),
        (np.zeros((40, 40, 3, 1), np.uint8), ValueError, "4 dimensions"),
        (np.zeros((0, 40, 3), np.uint8), ValueError, "empty"),
        (np.zeros((31, 40, 3), np.uint8), ValueError, "too small: 31x40"),
        (np.zeros((8193, 40, 3), np.uint8), ValueError, "too large: 8193x40"),
        (np.zeros((5000, 8001, 3), np.uint8), ValueError, "too large: 5000x8001 .* 40 MP"),
    ],
)
def test_validate_rgb_rejects_bad_images(image, error, pattern):
    with pytest.raises(error, match=pattern):
        validate_rgb(image, name="image")


def test_size_limits_are_inclusive():
    assert (MIN_IMAGE_SIDE_PX, MAX_IMAGE_SIDE_PX, MAX_IMAGE_PIXELS) == (32, 8192, 40_000_000)
    assert validate_rgb(np.zeros((32, 8192, 3), np.uint8)).shape == (32, 8192, 3)
    assert validate_rgb(np.zeros((5000, 8000, 3), np.uint8)).shape == (5000, 8000, 3)  # exactly 40 MP


def test_validate_frames_accepts_image_clip_and_list():
    frame = rgb_image(40, 50)
    assert validate_frames(frame).shape == (1, 40, 50, 3)
    clip = np.stack([frame, frame + 1])
    assert validate_frames(clip) is clip
    stacked = validate_frames([frame, frame + 1, frame + 2])
    assert stacked.shape == (3, 40, 50, 3) and np.array_equal(stacked[2], frame + 2)
    single = validate_frames([frame])  # a stream's one frame: a view, not a copy
    assert single.shape == (1, 40, 50, 3) and np.shares_memory(single, frame) and np.array_equal(single[0], frame)
    strided = rgb_image(40, 100)[:, ::2]  # not contiguous: copied into a contiguous array
    single_strided = validate_frames([strided])
    assert single_strided.flags.c_contiguous and np.array_equal(single_strided[0], strided)


@pytest.mark.parametrize(
    "frames, error, pattern",
    [
        ([], ValueError, "empty list"),
        ([rgb_image(40, 50), rgb_image(40, 60)], ValueError, r"mixed sizes \[\(40, 50\), \(40, 60\)\]"),
        ([rgb_image(40, 50), np.zeros((40, 50, 3), np.float32)], TypeError, r"frames\[1\] has dtype float32"),
        (np.zeros((0, 40, 50, 3), np.uint8), ValueError, "no frames"),
        (np.zeros((2, 40, 50, 4), np.uint8), ValueError, "4 channels"),
        (np.zeros((2, 40, 20, 3), np.uint8), ValueError, "too small: 40x20"),
        (np.zeros((2, 2, 40, 50, 3), np.uint8), ValueError, r"\(H, W, 3\) or \(T, H, W, 3\)"),
    ],
)
def test_validate_frames_rejects_bad_clips(frames, error, pattern):
    with pytest.raises(error, match=pattern):
        validate_frames(frames)


# --- validate_intrinsics_for_frames ---------------------------------------------------------------


def test_shared_intrinsics_are_repeated_per_frame():
    K = intrinsics_matrix(500.0, 510.0, 319.5, 239.5)
    out = validate_intrinsics_for_frames(K, num_frames=4, height=480, width=640)
    assert out.shape == (4, 3, 3) and out.dtype == np.float64
    assert np.array_equal(out, np.broadcast_to(K, (4, 3, 3)))


def test_per_frame_intrinsics_are_kept():
    Ks = np.stack([intrinsics_matrix(500.0 + t, 500.0, 320.0, 240.0) for t in range(3)])
    assert np.array_equal(validate_intrinsics_for_frames(Ks, 3, 480, 640), Ks)


def test_principal_point_limits_are_one_image_size_beyond_each_border():
    for cx, cy in ((-640.0, 240.0), (1280.0, 240.0), (320.0, -480.0), (320.0, 960.0)):
        validate_intrinsics_for_frames(intrinsics_matrix(500.0, 500.0, cx, cy), 1, 480, 640)
    with pytest.raises(ValueError, match=r"cx=1281 px is far outside the 640x480 image; expected -640 <= cx <= 1280"):
        validate_intrinsics_for_frames(intrinsics_matrix(500.0, 500.0, 1281.0, 240.0), 1, 480, 640)
    Ks = np.stack([intrinsics_matrix(500.0, 500.0, 320.0, cy) for cy in (240.0, -481.0)])
    with pytest.raises(ValueError, match=r"intrinsics\[1\] principal point cy=-481"):
        validate_intrinsics_for_frames(Ks, 2, 480, 640)


@pytest.mark.parametrize(
    "K, pattern",
    [
        (np.eye(3)[:2], r"shape \(3, 3\) or \(2, 3, 3\)"),
        (np.stack([np.eye(3)] * 3), r"shape \(3, 3\) or \(2, 3, 3\)"),
        (intrinsics_matrix(np.nan, 500.0, 320.0, 240.0), "NaN"),
        (intrinsics_matrix(-500.0, 500.0, 320.0, 240.0), "focal lengths must be positive"),
    ],
)
def test_bad_intrinsics_are_rejected(K, pattern):
    with pytest.raises(ValueError, match=pattern):
        validate_intrinsics_for_frames(K, num_frames=2, height=480, width=640)


# --- frame sources -------------------------------------------------------------------------------


def test_video_source_matches_sources_md_and_opencv(video):
    with open_frames(video) as source:
        assert (source.kind, source.name, source.fps, len(source)) == ("video", video.name, 30.0, 216)
        frames = list(source)
    assert [f.index for f in frames] == list(range(216))
    assert all(f.rgb.shape == (480, 480, 3) and f.rgb.dtype == np.uint8 for f in frames)
    assert frames[30].timestamp_s == pytest.approx(1.0)
    capture = cv2.VideoCapture(str(video))
    ok, bgr = capture.read()
    capture.release()
    assert ok and np.array_equal(frames[0].rgb, bgr[:, :, ::-1])


def test_video_stride_and_max_frames_pick_source_frames(video):
    all_frames = [f.rgb for f in open_frames(video, max_frames=101)]
    strided = open_frames(video, stride=50)
    assert len(strided) == 5
    picked = list(strided)
    assert [f.index for f in picked] == [0, 50, 100, 150, 200]
    assert picked[4].timestamp_s == pytest.approx(200 / 30)
    assert np.array_equal(picked[1].rgb, all_frames[50]) and np.array_equal(picked[2].rgb, all_frames[100])
    limited = open_frames(video, stride=50, max_frames=2)
    assert len(limited) == 2 and [f.index for f in limited] == [0, 50]


def test_sources_can_be_iterated_twice(video):
    source = open_frames(video, max_frames=3)
    first, second = list(source), list(source)
    assert all(np.array_equal(a.rgb, b.rgb) for a, b in zip(first, second))


def write_png(path: Path, rgb: np.ndarray) -> None:
    assert cv2.imwrite(str(path), rgb[:, :, ::-1])


def test_folder_source_natural_order_rgb_and_ignores_other_files(tmp_path):
    colours = {"f2.png": (0, 0, 255), "f10.png": (0, 255, 0), "f1.png": (255, 0, 0)}
    for name, colour in colours.items():
        write_png(tmp_path / name, np.full((40, 48, 3), colour, np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "sub.png").mkdir()
    source = open_frames(tmp_path, fps=10.0)
    assert (source.kind, source.name, source.fps, len(source)) == ("folder", tmp_path.name, 10.0, 3)
    frames = list(source)
    assert [tuple(f.rgb[0, 0]) for f in frames] == [(255, 0, 0), (0, 0, 255), (0, 255, 0)]
    assert [f.timestamp_s for f in frames] == [0.0, 0.1, 0.2]
    without_fps = open_frames(tmp_path, stride=2)
    assert without_fps.fps is None and [(f.index, f.timestamp_s) for f in without_fps] == [(0, 0.0), (2, 0.0)]


def test_single_image_source_and_read_image(image):
    source = open_frames(image)
    assert (source.kind, source.name, source.fps, len(source)) == ("image", image.name, None, 1)
    (frame,) = list(source)
    assert frame.index == 0 and frame.timestamp_s == 0.0 and frame.rgb.shape == (486, 486, 3)
    assert np.array_equal(frame.rgb, cv2.imread(str(image))[:, :, ::-1])
    assert np.array_equal(read_image(image), frame.rgb)


def test_missing_path_raises_file_not_found(tmp_path):
    missing = tmp_path / "nope.mp4"
    with pytest.raises(FileNotFoundError, match="nope.mp4"):
        open_frames(missing)
    with pytest.raises(FileNotFoundError, match="nope.mp4"):
        read_image(missing)


def test_corrupt_files_raise_value_error_naming_them(tmp_path):
    empty_video = tmp_path / "empty.mp4"
    empty_video.write_bytes(b"")
    random_video = tmp_path / "noise.mkv"
    random_video.write_bytes(os.urandom(50_000))
    random_image = tmp_path / "noise.jpg"
    random_image.write_bytes(os.urandom(2_000))
    for path in (empty_video, random_video, random_image):
        with pytest.raises(ValueError, match=path.name):
            open_frames(path)


def test_folder_without_images_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="contains no images"):
        open_frames(tmp_path)
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(ValueError, match=f"{tmp_path.name} contains no images"):
        open_frames(tmp_path)


def test_undecodable_or_too_small_image_in_folder_is_reported_not_skipped(tmp_path):
    write_png(tmp_path / "a.png", rgb_image(40, 40))
    (tmp_path / "b.jpg").write_bytes(os.urandom(2_000))
    frames = iter(open_frames(tmp_path))
    assert next(frames).index == 0
    with pytest.raises(ValueError, match="cannot decode image .*b.jpg"):
        next(frames)
    write_png(tmp_path / "b.jpg", rgb_image(20, 40))
    with pytest.raises(ValueError, match="b.jpg is too small: 20x40"):
        list(open_frames(tmp_path))


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(max_frames=0), "max_frames must be >= 1"),
        (dict(stride=0), "stride must be >= 1"),
        (dict(fps=0.0), "fps must be a positive number"),
    ],
)
def test_bad_options_are_rejected(image, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        open_frames(image, **kwargs)


def test_fps_for_video_and_unknown_extension_are_rejected(video, tmp_path):
    with pytest.raises(ValueError, match="frame rate is read from the file"):
        open_frames(video, fps=25.0)
    other = tmp_path / "clip.txt"
    other.write_text("x")
    with pytest.raises(ValueError, match=r"unsupported file type '.txt'"):
        open_frames(other)
