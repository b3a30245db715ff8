"""numpy <-> ROS message conversions, with rosbags typestore classes and real rclpy message classes."""
from __future__ import annotations

import array
import importlib

import cv2
import numpy as np
import pytest

from conftest import face_image
from faceanything_ros.geometry.camera import intrinsics_matrix
from faceanything_ros.geometry.pointcloud import PointCloud, point_cloud_from_depth
from faceanything_ros.geometry.projection import project_points
from faceanything_ros.io.frames import read_image
from faceanything_ros.ros import conversions as C
from faceanything_ros.ros.message_types import MESSAGES, msg_directory, typestore
from faceanything_ros.tracking.tracks import TrackState

STORE = typestore()
K = intrinsics_matrix(120.0, 110.0, 31.5, 23.5)


class RclpyTypes(dict):
    """``"pkg/msg/Name"`` -> the rclpy message class ``pkg.msg.Name`` (imported on first use)."""

    def __missing__(self, name: str) -> type:
        package, _, cls = name.split("/")
        self[name] = getattr(importlib.import_module(f"{package}.msg"), cls)
        return self[name]


def rclpy_types() -> RclpyTypes:
    pytest.importorskip("sensor_msgs.msg")
    return RclpyTypes()


def rclpy_with_our_messages() -> RclpyTypes:
    types = rclpy_types()
    try:
        types["faceanything_ros/msg/CanonicalTrack"]
    except (ImportError, AttributeError):
        pytest.skip("faceanything_ros.msg is not built here (colcon build generates it)")
    return types


@pytest.fixture(params=["rosbags", "rclpy"])
def types(request):
    return STORE.types if request.param == "rosbags" else rclpy_types()


def cdr_round_trip(message, typename: str):
    """The message after CDR serialisation (what a bag or DDS carries), by its own library."""
    if not hasattr(message, "__msgtype__"):
        from rclpy.serialization import deserialize_message, serialize_message

        return deserialize_message(serialize_message(message), type(message))
    return STORE.deserialize_cdr(STORE.serialize_cdr(message, typename), typename)


@pytest.fixture(scope="module")
def face_rgb() -> np.ndarray:
    return read_image(face_image("mica_carell.jpg"))


def image_message(encoding: str, height: int, width: int, step: int, data: bytes, bigendian: int = 0):
    header = C.make_header(STORE.types, 5, "cam")
    return STORE.types["sensor_msgs/msg/Image"](header=header, height=height, width=width, encoding=encoding,
                                                 is_bigendian=bigendian, step=step,
                                                 data=np.frombuffer(data, np.uint8))


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8"])
def test_colour_round_trip_is_exact(types, face_rgb, encoding):
    header = C.make_header(types, 1_700_000_000_123_456_789, "camera_optical_frame")
    message = cdr_round_trip(C.rgb_to_image(types, header, face_rgb, encoding), "sensor_msgs/msg/Image")
    assert message.step == face_rgb.shape[1] * (4 if encoding.endswith("a8") else 3)
    assert C.stamp_to_ns(message.header.stamp) == 1_700_000_000_123_456_789
    np.testing.assert_array_equal(C.image_to_rgb(message), face_rgb)


@pytest.mark.parametrize("encoding", ["mono8", "mono16"])
def test_mono_round_trip_gives_grey(types, face_rgb, encoding):
    header = C.make_header(types, 0, "cam")
    rgb = C.image_to_rgb(cdr_round_trip(C.rgb_to_image(types, header, face_rgb, encoding), "sensor_msgs/msg/Image"))
    grey = cv2.cvtColor(face_rgb, cv2.COLOR_RGB2GRAY)
    for channel in range(3):
        np.testing.assert_array_equal(rgb[..., channel], grey)


def test_known_pixel_values_of_every_encoding():
    # one 2x1 image per encoding, hand-written bytes
    cases = {
        "rgb8": (b"\x01\x02\x03\x04\x05\x06", [[1, 2, 3], [4, 5, 6]]),
        "bgr8": (b"\x01\x02\x03\x04\x05\x06", [[3, 2, 1], [6, 5, 4]]),
        "rgba8": (b"\x01\x02\x03\xff\x04\x05\x06\x00", [[1, 2, 3], [4, 5, 6]]),
        "bgra8": (b"\x01\x02\x03\xff\x04\x05\x06\x00", [[3, 2, 1], [6, 5, 4]]),
        "mono8": (b"\x07\xfe", [[7, 7, 7], [254, 254, 254]]),
        "mono16": (b"\xff\xff\x00\x02", [[255, 255, 255], [2, 2, 2]]),  # LE 65535 -> 255, 512 -> round(1.99) = 2
    }
    for encoding, (data, expected) in cases.items():
        message = image_message(encoding, 1, 2, len(data), data)
        np.testing.assert_array_equal(C.image_to_rgb(message), np.array([expected], np.uint8), err_msg=encoding)


def test_mono16_big_endian_and_row_padding():
    # 2 rows of 1 pixel, 4-byte step (2 padding bytes); big-endian 0x1234 = 4660 -> round(4660 / 257) = 18
    message = image_message("mono16", 2, 1, 4, b"\x12\x34\xaa\xaa\x00\x00\xbb\xbb", bigendian=1)
    np.testing.assert_array_equal(C.image_to_rgb(message)[..., 0], [[18], [0]])
    assert C.image_to_array(message)[0, 0, 0] == 0x1234


@pytest.mark.parametrize("encoding, height, width, step, size, kind", [
    ("yuv422", 2, 2, 4, 8, "unknown_encoding"),
    ("32FC1", 2, 2, 8, 16, "unknown_encoding"),  # a float image is not a colour image
    ("rgb8", 0, 2, 6, 0, "zero_size"),
    ("rgb8", 2, 0, 0, 0, "zero_size"),
    ("rgb8", 2, 2, 5, 10, "bad_step"),
    ("rgb8", 2, 2, 6, 11, "truncated_data"),
    ("rgb8", 2, 2, 6, 13, "bad_data_size"),
    ("mono8", 9000, 1, 1, 9000, "too_large"),
])
def test_bad_images_raise_their_kind(encoding, height, width, step, size, kind):
    with pytest.raises(C.ImageConversionError) as error:
        C.image_to_rgb(image_message(encoding, height, width, step, bytes(size)))
    assert error.value.kind == kind
    assert isinstance(error.value, ValueError)


def test_compressed_png_exact_and_jpeg_close(types, face_rgb):
    header = C.make_header(types, 3, "cam")
    png = cdr_round_trip(C.rgb_to_compressed(types, header, face_rgb, "png"), "sensor_msgs/msg/CompressedImage")
    np.testing.assert_array_equal(C.compressed_to_rgb(png), face_rgb)
    jpeg = C.rgb_to_compressed(types, header, face_rgb, "jpeg", quality=95)
    decoded = C.compressed_to_rgb(jpeg)
    assert decoded.shape == face_rgb.shape
    assert np.abs(decoded.astype(int) - face_rgb).mean() < 3.0


def test_compressed_grey_and_16_bit_png():
    grey = np.array([[0, 128], [255, 7]], np.uint8)
    deep = np.array([[65535, 514]], np.uint16)
    for image, expected in ((grey, grey), (deep, np.array([[255, 2]], np.uint8))):
        data = cv2.imencode(".png", image)[1].reshape(-1)
        message = STORE.types["sensor_msgs/msg/CompressedImage"](
            header=C.make_header(STORE.types, 0, ""), format="png", data=data)
        rgb = C.compressed_to_rgb(message)
        assert rgb.shape == expected.shape + (3,)
        np.testing.assert_array_equal(rgb[..., 1], expected)


@pytest.mark.parametrize("fmt, data, kind", [
    ("jpeg", b"not a jpeg at all", "undecodable"),
    ("png", b"", "zero_size"),
    ("tiff", b"II*\x00", "unknown_format"),
])
def test_bad_compressed_images(fmt, data, kind):
    message = STORE.types["sensor_msgs/msg/CompressedImage"](
        header=C.make_header(STORE.types, 0, ""), format=fmt, data=np.frombuffer(data, np.uint8))
    with pytest.raises(C.ImageConversionError) as error:
        C.compressed_to_rgb(message)
    assert error.value.kind == kind


def test_depth_and_canonical_images(types):
    header = C.make_header(types, 9, "cam")
    depth = np.array([[0.5, np.nan, 2.25]], np.float32)
    message = cdr_round_trip(C.depth_image(types, header, depth), "sensor_msgs/msg/Image")
    assert (message.encoding, message.step, message.is_bigendian) == ("32FC1", 12, 0)
    np.testing.assert_array_equal(C.depth_image_to_metres(message), depth)
    canonical = np.arange(12, dtype=np.float32).reshape(2, 2, 3) / 12
    canonical[0, 1] = np.nan
    message = cdr_round_trip(C.canonical_image(types, header, canonical), "sensor_msgs/msg/Image")
    assert (message.encoding, message.step) == ("32FC3", 24)
    np.testing.assert_array_equal(C.image_to_array(message), canonical)


def test_byte_fields_take_each_library_s_whole_buffer_path(types):
    # rclpy: an array.array('B') (a numpy array would be checked element by element); rosbags: the
    # array's own bytes, no copy
    values = np.arange(6, dtype=np.float32).reshape(2, 3)
    header = C.make_header(types, 0, "cam")
    message = C.message_with_bytes(types["sensor_msgs/msg/Image"], values, header=header, height=2, width=3,
                                   encoding="32FC1", is_bigendian=0, step=12)
    assert bytes(message.data) == values.tobytes()
    if isinstance(types, RclpyTypes):
        assert isinstance(message.data, array.array) and message.data.typecode == "B"
        assert C.depth_image(types, header, values).data == message.data
    else:
        assert isinstance(message.data, np.ndarray) and np.shares_memory(message.data, values)
    np.testing.assert_array_equal(C.image_to_array(cdr_round_trip(message, "sensor_msgs/msg/Image"))[..., 0], values)


def test_16uc1_depth_is_millimetres_with_zero_as_none():
    millimetres = np.array([[0, 1500, 65535]], np.uint16)
    message = C.array_to_image(STORE.types, C.make_header(STORE.types, 0, ""), millimetres, "16UC1")
    np.testing.assert_allclose(C.depth_image_to_metres(message), [[np.nan, 1.5, 65.535]], rtol=1e-7)


def test_point_cloud2_layout_and_packing(types):
    cloud = PointCloud(points=np.array([[0.1, -0.2, 1.5], [0.0, 0.0, 2.0]], np.float32),
                       colors=np.array([[255, 128, 1], [0, 0, 0]], np.uint8),
                       pixels=np.array([[0, 0], [1, 0]], np.int32),
                       canonical=np.array([[0.5, -0.5, 0.25], [1, 1, 1]], np.float32),
                       confidence=np.array([3.0, 1.0], np.float32))
    message = cdr_round_trip(C.point_cloud2(types, C.make_header(types, 1, "cam"), cloud),
                             "sensor_msgs/msg/PointCloud2")
    assert [f.name for f in message.fields] == list(C.POINT_FIELDS)
    assert [f.offset for f in message.fields] == [0, 4, 8, 12, 16, 20, 24, 28]
    assert all(f.datatype == 7 and f.count == 1 for f in message.fields)  # FLOAT32
    assert (message.height, message.width, message.point_step, message.row_step) == (1, 2, 32, 64)
    assert message.is_dense and not message.is_bigendian
    raw = np.frombuffer(bytes(message.data), np.uint8)
    assert raw[12:16].view("<u4")[0] == 0xFF8001  # rgb of point 0: 0x00RRGGBB as float32 bits
    arrays = C.point_cloud2_to_arrays(message)
    np.testing.assert_array_equal(arrays["colors"], cloud.colors)
    np.testing.assert_array_equal(np.stack([arrays["x"], arrays["y"], arrays["z"]], 1), cloud.points)
    np.testing.assert_array_equal(arrays["canonical_w"], [0.25, 1.0])
    np.testing.assert_array_equal(arrays["confidence"], [3.0, 1.0])


def test_point_cloud2_reprojects_onto_the_depth(face_rgb):
    height, width = face_rgb.shape[:2]
    k = intrinsics_matrix(500.0, 480.0, width / 2 - 0.5, height / 2 - 0.5)
    rows, cols = np.mgrid[:height, :width]
    depth = (0.6 + 0.001 * rows + 0.0005 * cols).astype(np.float32)
    depth[: height // 4] = np.nan
    cloud = point_cloud_from_depth(depth, k, image=face_rgb, stride=3)
    arrays = C.point_cloud2_to_arrays(C.point_cloud2(STORE.types, C.make_header(STORE.types, 0, "c"), cloud))
    points = np.stack([arrays["x"], arrays["y"], arrays["z"]], axis=1)
    pixels, z = project_points(points, k)
    u, v = np.round(pixels).astype(int).T
    assert len(points) == np.isfinite(depth[::3, ::3]).sum()
    assert np.all(u % 3 == 0) and np.all(v % 3 == 0)
    np.testing.assert_allclose(pixels, np.stack([u, v], 1), atol=1e-3)
    np.testing.assert_allclose(z, depth[v, u], rtol=1e-6)
    np.testing.assert_array_equal(arrays["colors"], face_rgb[v, u])


def test_point_cloud2_rejects_inconsistent_sizes():
    message = C.point_cloud2(STORE.types, C.make_header(STORE.types, 0, ""), PointCloud(
        np.zeros((2, 3), np.float32), np.zeros((2, 3), np.uint8), np.zeros((2, 2), np.int32)))
    message.data = message.data[:-4]
    with pytest.raises(C.ImageConversionError, match="bad_point_cloud"):
        C.point_cloud2_to_arrays(message)


def test_camera_info_round_trip_and_size_mismatch(types):
    message = cdr_round_trip(C.camera_info(types, C.make_header(types, 0, "cam"), K, 64, 48),
                             "sensor_msgs/msg/CameraInfo")
    assert (message.width, message.height, message.distortion_model) == (64, 48, "plumb_bob")
    np.testing.assert_array_equal(np.asarray(message.d), np.zeros(5))
    np.testing.assert_array_equal(np.asarray(message.p).reshape(3, 4), np.hstack([K, np.zeros((3, 1))]))
    for rectified in (True, False):  # P = [K | 0], D zero: the same K either way, nothing ignored
        used = C.camera_info_intrinsics(message, 64, 48, rectified)
        np.testing.assert_array_equal(used.intrinsics, K)
        assert not used.distortion_ignored
    with pytest.raises(C.ImageConversionError) as error:
        C.camera_info_intrinsics(message, 640, 480, False)
    assert error.value.kind == "camera_info_size"
    message.k = np.zeros(9)
    with pytest.raises(C.ImageConversionError) as error:
        C.camera_info_intrinsics(message, 64, 48, False)
    assert error.value.kind == "bad_camera_info"
    np.testing.assert_array_equal(C.camera_info_intrinsics(message, 64, 48, True).intrinsics, K)  # P still valid


def test_estimated_camera_info_has_an_empty_distortion(types):
    estimate = cdr_round_trip(C.camera_info(types, C.make_header(types, 0, "cam"), K, 64, 48, estimated=True),
                              "sensor_msgs/msg/CameraInfo")
    assert estimate.distortion_model == "plumb_bob" and len(estimate.d) == 0  # image_geometry: no distortion
    np.testing.assert_array_equal(np.asarray(estimate.k).reshape(3, 3), K)
    np.testing.assert_array_equal(np.asarray(estimate.p).reshape(3, 4), np.hstack([K, np.zeros((3, 1))]))


def track_state() -> TrackState:
    return TrackState(
        ids=np.array([4, 9, 11]), face=np.array([0, 0, 1]),
        pixels=np.array([[10.5, 20.25], [3, 4], [np.nan, np.nan]], np.float32),
        points=np.array([[0.01, -0.02, 0.6], [np.nan] * 3, [np.nan] * 3], np.float32),
        canonical=np.array([[0.1, 0.2, 0.3], [-1, 0, 1], [0, 0, 0]], np.float32),
        distance=np.array([0.01, 0.08, np.nan], np.float32), visible=np.array([True, False, False]))


def check_track_messages(types):
    state = track_state()
    header = C.make_header(types, 42, "cam")
    array = cdr_round_trip(C.track_array(types, header, state, max_distance=0.05),
                           "faceanything_ros/msg/CanonicalTrackArray")
    values = C.track_array_to_arrays(array)
    np.testing.assert_array_equal(values["ids"], state.ids)
    np.testing.assert_array_equal(values["pixels"], state.pixels)
    np.testing.assert_array_equal(values["points"], state.points)
    np.testing.assert_array_equal(values["visible"], state.visible)
    np.testing.assert_allclose(values["confidence"], [0.8, 0.0, 0.0], rtol=1e-6)  # 1 - d / max, clipped; NaN -> 0
    markers = cdr_round_trip(C.track_markers(types, header, state), "visualization_msgs/msg/MarkerArray").markers
    marker_type = types["visualization_msgs/msg/Marker"]
    assert [m.action for m in markers] == [marker_type.DELETEALL, marker_type.ADD]
    assert markers[1].type == marker_type.SPHERE_LIST and len(markers[1].points) == 1  # visible + finite only
    assert (markers[1].points[0].x, markers[1].points[0].z) == pytest.approx((0.01, 0.6))
    assert markers[1].header.frame_id == "cam"
    hidden = TrackState(**{**state.__dict__, "visible": np.zeros(3, bool)})
    assert len(C.track_markers(types, header, hidden).markers) == 1


def test_track_messages_rosbags():
    check_track_messages(STORE.types)


def test_track_messages_rclpy():
    check_track_messages(rclpy_with_our_messages())


def test_markers_with_rclpy_classes():
    types = rclpy_types()

    class Without(dict):  # our messages from rosbags, the rest real rclpy classes
        def __missing__(self, name):
            return STORE.types[name] if name.startswith("faceanything_ros/") else types[name]

    markers = C.track_markers(Without(), C.make_header(types, 1, "cam"), track_state())
    assert type(markers).__module__.startswith("visualization_msgs")
    assert markers.markers[1].colors[0].a == 1.0


def test_diagnostics(types):
    message = cdr_round_trip(C.diagnostics(types, 2_500_000_000, "faceanything: processing",
                                           {"frames_in": 3, "latency": {"p50_ms": 12.3456789}}, level="WARN"),
                             "diagnostic_msgs/msg/DiagnosticArray")
    status = message.status[0]
    assert status.level == types["diagnostic_msgs/msg/DiagnosticStatus"].WARN
    assert [(v.key, v.value) for v in status.values] == [("frames_in", "3"), ("latency.p50_ms", "12.3457")]
    assert C.stamp_to_ns(message.header.stamp) == 2_500_000_000
    with pytest.raises(ValueError, match="level"):
        C.diagnostics(types, 0, "x", {}, level="FINE")


def test_message_definitions_are_found_in_source_and_install_layouts(tmp_path):
    assert (msg_directory() / "CanonicalTrack.msg").is_file()
    prefix = tmp_path / "install"
    package = prefix / "lib" / "python3.11" / "site-packages" / "faceanything_ros"
    package.mkdir(parents=True)
    share = prefix / "share" / "faceanything_ros" / "msg"
    share.mkdir(parents=True)
    for name in MESSAGES:
        (share / f"{name}.msg").write_text((msg_directory() / f"{name}.msg").read_text())
    assert msg_directory(package) == share
    with pytest.raises(FileNotFoundError, match="CanonicalTrack.msg"):
        msg_directory(tmp_path / "elsewhere" / "faceanything_ros")
