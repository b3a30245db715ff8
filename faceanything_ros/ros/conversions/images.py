"""numpy <-> ``sensor_msgs`` images and camera info, ``std_msgs/Header`` (see the package docstring).

Image bytes are little-endian unless ``is_bigendian`` says otherwise; float images follow
REP 118 (``32FC1`` depth in metres, NaN = no measurement; ``16UC1`` depth in millimetres, 0 = none).
"""
from __future__ import annotations

import array
from typing import Any, Callable, Mapping

import cv2
import numpy as np

from faceanything_ros.export.depth import millimetres_to_metres
from faceanything_ros.geometry.camera import validate_intrinsics
from faceanything_ros.geometry.camera_info import CameraIntrinsics, camera_intrinsics
from faceanything_ros.io.validation import MAX_IMAGE_PIXELS, MAX_IMAGE_SIDE_PX
from faceanything_ros.stages import timed

Types = Mapping[str, Any]

# encoding -> (channels, little-endian numpy dtype of one channel)
ENCODINGS: dict[str, tuple[int, str]] = {
    "rgb8": (3, "u1"), "bgr8": (3, "u1"), "rgba8": (4, "u1"), "bgra8": (4, "u1"),
    "mono8": (1, "u1"), "mono16": (1, "<u2"), "16UC1": (1, "<u2"), "32FC1": (1, "<f4"), "32FC3": (3, "<f4"),
}
COLOR_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16")  # what image_to_rgb reads
DEPTH_ENCODINGS = ("32FC1", "16UC1")  # what depth_image_to_metres reads
COMPRESSED_FORMATS = ("jpeg", "png")


class ImageConversionError(ValueError):
    """A message that cannot be converted; ``kind`` is a short stable name for counting and logging.

    Kinds: ``unknown_encoding``, ``zero_size``, ``too_large``, ``bad_step``, ``truncated_data``,
    ``bad_data_size``, ``undecodable``, ``unknown_format``, ``camera_info_size``, ``bad_camera_info``,
    ``bad_point_cloud``.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind


def message_with_bytes(message_class: type, values: np.ndarray, **fields: Any) -> Any:
    """``message_class(**fields)`` whose ``uint8[]`` field ``data`` holds the bytes of array ``values``.

    rclpy messages get them in one copy: an ``array.array('B')`` handed to the generated setter's
    whole-buffer path with field checks on (the generated constructor copies a given ``data``
    again, and with checks off, rclpy's default, so does the setter; a numpy array would be
    checked element by element, ~0.1 s per 640x480 float image). Other classes (``rosbags``)
    get the flat ``uint8`` numpy view, no copy.
    """
    flat = np.ascontiguousarray(values).view(np.uint8).reshape(-1)
    if not hasattr(message_class, "get_fields_and_field_types"):
        return message_class(data=flat, **fields)
    data = array.array("B")
    data.frombytes(flat)
    checked = {"check_fields": True} if "_check_fields" in getattr(message_class, "__slots__", ()) else {}
    message = message_class(**checked, **fields)
    message.data = data
    return message


def stamp_to_ns(stamp: Any) -> int:
    """``builtin_interfaces/Time`` -> integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def make_header(types: Types, stamp_ns: int, frame_id: str) -> Any:
    """``std_msgs/Header`` with ``stamp`` from integer nanoseconds (>= 0) and ``frame_id``."""
    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
    stamp = types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec)
    return types["std_msgs/msg/Header"](stamp=stamp, frame_id=str(frame_id))


def image_to_array(msg: Any) -> np.ndarray:
    """Any ``ENCODINGS`` image message -> ``(H, W, C)`` array of its dtype (native byte order).

    Checks, in order: known encoding, non-zero and not too large size (``MAX_IMAGE_SIDE_PX``,
    ``MAX_IMAGE_PIXELS``), ``step >= width * pixel bytes``, ``len(data) == step * height``; each
    failure raises ``ImageConversionError`` of its kind. Row padding beyond the pixels is dropped.
    """
    encoding = str(msg.encoding)
    if encoding not in ENCODINGS:
        raise ImageConversionError("unknown_encoding", f"image encoding {encoding!r} is not one of {list(ENCODINGS)}")
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height == 0 or width == 0:
        raise ImageConversionError("zero_size", f"image is {width}x{height} pixels")
    if max(height, width) > MAX_IMAGE_SIDE_PX or height * width > MAX_IMAGE_PIXELS:
        raise ImageConversionError("too_large", f"image is {width}x{height} pixels; the limit is "
                                   f"{MAX_IMAGE_SIDE_PX} per side and {MAX_IMAGE_PIXELS} pixels")
    channels, code = ENCODINGS[encoding]
    dtype = np.dtype(code).newbyteorder(">" if msg.is_bigendian else "<") if code != "u1" else np.dtype("u1")
    row_bytes = width * channels * dtype.itemsize
    if step < row_bytes:
        raise ImageConversionError("bad_step", f"step {step} < {row_bytes} bytes of one {width}-pixel {encoding} row")
    data = np.frombuffer(msg.data, dtype=np.uint8)
    if data.size != step * height:
        kind = "truncated_data" if data.size < step * height else "bad_data_size"
        raise ImageConversionError(kind, f"data has {data.size} bytes; step {step} x height {height} = {step * height}")
    rows = data.reshape(height, step)[:, :row_bytes]
    pixels = np.ascontiguousarray(rows).view(dtype).reshape(height, width, channels)
    return pixels.astype(dtype.newbyteorder("="), copy=False)


@timed("convert")
def image_to_rgb(msg: Any) -> np.ndarray:
    """``sensor_msgs/Image`` in a ``COLOR_ENCODINGS`` encoding -> ``(H, W, 3)`` uint8 RGB.

    Alpha is dropped; mono is repeated to three channels; ``mono16`` is scaled to 8 bits as
    ``round(v / 257)`` (65535 -> 255), i.e. the full 16-bit range, not auto-contrast.
    """
    if str(msg.encoding) not in COLOR_ENCODINGS:
        raise ImageConversionError("unknown_encoding", f"image encoding {msg.encoding!r} is not a colour encoding "
                                   f"the node reads ({list(COLOR_ENCODINGS)})")
    return _array_to_rgb(image_to_array(msg), str(msg.encoding))


def _array_to_rgb(pixels: np.ndarray, encoding: str) -> np.ndarray:
    """``(H, W, C)`` pixels of ``encoding`` -> contiguous ``(H, W, 3)`` uint8 RGB."""
    if encoding == "mono16":
        pixels = np.round(pixels / 257.0).astype(np.uint8)
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    pixels = pixels[..., :3]
    if encoding.startswith("bgr"):
        pixels = pixels[..., ::-1]
    return np.ascontiguousarray(pixels)


@timed("convert")
def compressed_to_rgb(msg: Any) -> np.ndarray:
    """``sensor_msgs/CompressedImage`` (jpeg or png, any bit depth / channels) -> ``(H, W, 3)`` uint8 RGB.

    ``format`` is read as ROS's image_transport writes it (``"jpeg"``, ``"png"`` or
    ``"rgb8; jpeg compressed bgr8"``); 16-bit PNGs are scaled like ``mono16``.
    """
    fmt = str(msg.format).lower()
    if not any(name in fmt for name in (*COMPRESSED_FORMATS, "jpg")):
        raise ImageConversionError("unknown_format", f"compressed format {msg.format!r} is not jpeg or png")
    data = np.frombuffer(msg.data, dtype=np.uint8)
    if data.size == 0:
        raise ImageConversionError("zero_size", "compressed image has no data")
    decoded = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if decoded is None:
        raise ImageConversionError("undecodable", f"{data.size} bytes of {msg.format!r} data could not be decoded")
    if decoded.ndim == 2:
        decoded = decoded[..., None]
    encoding = "mono16" if decoded.dtype == np.uint16 else "bgr8"
    if decoded.dtype == np.uint16 and decoded.shape[2] > 1:
        decoded, encoding = np.round(decoded / 257.0).astype(np.uint8), "bgr8"
    if decoded.shape[2] == 1 and encoding == "bgr8":
        encoding = "mono8"
    return _array_to_rgb(decoded, encoding)


def rgb_to_image(types: Types, header: Any, rgb: np.ndarray, encoding: str = "rgb8") -> Any:
    """``(H, W, 3)`` uint8 RGB -> ``sensor_msgs/Image`` in any ``COLOR_ENCODINGS`` encoding.

    Alpha is 255; mono is OpenCV's luma (``cv2.COLOR_RGB2GRAY``), ``mono16`` is that times 257,
    so ``image_to_rgb`` gives back ``rgb`` exactly for rgb8/bgr8/rgba8/bgra8 and grey for mono.
    """
    if encoding not in COLOR_ENCODINGS:
        raise ValueError(f"encoding {encoding!r} is not one of {list(COLOR_ENCODINGS)}")
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"rgb must be a uint8 (H, W, 3) array, got {rgb.dtype} {rgb.shape}")
    if encoding.startswith("mono"):
        pixels = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)[..., None]
        if encoding == "mono16":
            pixels = pixels.astype(np.uint16) * 257
    else:
        pixels = rgb[..., ::-1] if encoding.startswith("bgr") else rgb
        if encoding.endswith("a8"):
            pixels = np.concatenate([pixels, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], axis=2)
    return array_to_image(types, header, pixels, encoding)


def rgb_to_compressed(types: Types, header: Any, rgb: np.ndarray, fmt: str = "jpeg", quality: int = 95) -> Any:
    """``(H, W, 3)`` uint8 RGB -> ``sensor_msgs/CompressedImage`` (``fmt`` jpeg or png)."""
    if fmt not in COMPRESSED_FORMATS:
        raise ValueError(f"compressed format {fmt!r} is not one of {list(COMPRESSED_FORMATS)}")
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if fmt == "jpeg" else []
    ok, encoded = cv2.imencode(f".{fmt}", np.ascontiguousarray(np.asarray(rgb)[..., ::-1]), params)
    if not ok:
        raise ValueError(f"OpenCV could not encode a {np.asarray(rgb).shape} image as {fmt}")
    return message_with_bytes(types["sensor_msgs/msg/CompressedImage"], encoded, header=header, format=fmt)


def array_to_image(types: Types, header: Any, pixels: np.ndarray, encoding: str) -> Any:
    """``(H, W)`` or ``(H, W, C)`` array -> ``sensor_msgs/Image`` of ``encoding`` (little-endian, no padding)."""
    channels, code = ENCODINGS[encoding]
    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.ndim != 3 or pixels.shape[2] != channels:
        raise ValueError(f"{encoding} needs an (H, W{', ' + str(channels) if channels > 1 else ''}) array, "
                         f"got {pixels.shape}")
    height, width = pixels.shape[:2]
    data = np.ascontiguousarray(pixels, dtype=np.dtype(code))
    return message_with_bytes(types["sensor_msgs/msg/Image"], data, header=header, height=height, width=width,
                              encoding=encoding, is_bigendian=0, step=width * channels * data.itemsize)


def depth_image(types: Types, header: Any, depth: np.ndarray) -> Any:
    """``(H, W)`` float depth in metres (NaN = none) -> ``32FC1`` ``sensor_msgs/Image`` (REP 118)."""
    return array_to_image(types, header, np.asarray(depth, dtype=np.float32), "32FC1")


def canonical_image(types: Types, header: Any, canonical: np.ndarray) -> Any:
    """``(H, W, 3)`` canonical coordinates in ``[-1, 1]`` (NaN = no face) -> ``32FC3`` ``sensor_msgs/Image``."""
    return array_to_image(types, header, np.asarray(canonical, dtype=np.float32), "32FC3")


def depth_image_to_metres(msg: Any) -> np.ndarray:
    """``32FC1`` (metres) or ``16UC1`` (millimetres, 0 = none) image -> ``(H, W)`` float32 metres, NaN = none."""
    if str(msg.encoding) not in DEPTH_ENCODINGS:
        raise ImageConversionError("unknown_encoding", f"depth encoding {msg.encoding!r} is not one of "
                                   f"{list(DEPTH_ENCODINGS)}")
    depth = image_to_array(msg)[..., 0]
    if msg.encoding == "16UC1":
        return millimetres_to_metres(depth)
    return np.where(np.isfinite(depth) & (depth > 0), depth, np.nan).astype(np.float32)


def camera_info(types: Types, header: Any, intrinsics: np.ndarray, width: int, height: int,
                estimated: bool = False) -> Any:
    """``sensor_msgs/CameraInfo`` of a distortion-free pinhole: plumb_bob, R = I, P = [K | 0].

    A calibration (``estimated`` False) has five zero distortion coefficients; an estimate (K
    estimated from the images, no calibration) has an empty D: image_geometry reads both as "no
    distortion" and depth_image_proc uses P either way, while a reader can tell the estimate apart.
    """
    k = validate_intrinsics(intrinsics)
    projection = np.zeros((3, 4))
    projection[:, :3] = k
    roi = types["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    return types["sensor_msgs/msg/CameraInfo"](
        header=header, height=int(height), width=int(width), distortion_model="plumb_bob",
        d=np.zeros(0 if estimated else 5), k=k.reshape(-1), r=np.eye(3).reshape(-1), p=projection.reshape(-1),
        binning_x=0, binning_y=0, roi=roi,
    )


def camera_info_intrinsics(msg: Any, width: int, height: int, rectified: bool) -> CameraIntrinsics:
    """The K of a ``width`` x ``height`` image from its ``sensor_msgs/CameraInfo``: P for a
    ``rectified`` image, else K (non-zero D ignored and reported; ``geometry.camera_info``).

    Raises ``ImageConversionError`` ``camera_info_size`` when the info describes another image
    size, ``bad_camera_info`` when the matrix to use is not a valid pinhole (e.g. all zeros: uncalibrated).
    """
    if (int(msg.width), int(msg.height)) != (int(width), int(height)):
        raise ImageConversionError("camera_info_size", f"camera_info is for {msg.width}x{msg.height} images, "
                                   f"the image is {width}x{height}")
    try:
        return camera_intrinsics(msg.k, msg.d, msg.p, str(msg.distortion_model), rectified)
    except ValueError as error:
        raise ImageConversionError("bad_camera_info", str(error)) from None


def camera_info_intrinsics_or_none(msg: Any | None, width: int, height: int, rectified: bool,
                                   on_error: Callable[[ImageConversionError], None]) -> CameraIntrinsics | None:
    """``camera_info_intrinsics`` of ``msg`` for a ``width`` x ``height`` image, or None (K is then
    estimated from the image) when ``msg`` is None or unusable: ``on_error(error)`` counts the latter."""
    if msg is None:
        return None
    try:
        return camera_info_intrinsics(msg, width, height, rectified)
    except ImageConversionError as error:
        on_error(error)
        return None
