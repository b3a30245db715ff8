"""Which pinhole K a camera calibration (the fields of a ROS CameraInfo) gives an image, ROS-free.

A calibration holds ``K`` (the raw image's intrinsics), ``D`` (its lens distortion, model
``distortion_model``) and ``P`` (the projection of the rectified image: ``P[:, :3]`` is its
intrinsics). A rectified image (``image_rect``) is an undistorted pinhole image with the
intrinsics of ``P``. A raw image (``image_raw``) has ``K`` and the distortion ``D``; the
reconstruction treats every image as a pinhole, so a raw image with non-zero ``D`` is used as
if undistorted, and ``CameraIntrinsics.distortion_ignored`` says so (the cost is a bend of up to a
few pixels towards the image corners, where ``D`` is largest).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from faceanything_ros.geometry.camera import validate_intrinsics


@dataclass(frozen=True)
class CameraIntrinsics:
    """The K to reconstruct an image with, and what was made of its calibration.

    intrinsics: ``(3, 3)`` float64 pinhole K, pixels. distortion_ignored: True when the image is a
    raw image with non-zero distortion used as a pinhole (report it). note: one line saying which
    matrix was used and whether distortion is ignored, for diagnostics.
    """

    intrinsics: np.ndarray
    distortion_ignored: bool
    note: str


def camera_intrinsics(k: np.ndarray, d: np.ndarray, p: np.ndarray, distortion_model: str,
                      rectified: bool) -> CameraIntrinsics:
    """The K of an image from its calibration.

    Args:
        k: 9 values (row-major ``(3, 3)``) of the raw image's intrinsics, pixels.
        d: the distortion coefficients (any length; empty or all zero = none).
        p: 12 values (row-major ``(3, 4)``) of the rectified projection, pixels; all zero = not given.
        distortion_model: e.g. ``plumb_bob``, ``rational_polynomial``, ``equidistant`` (for the note).
        rectified: True for a rectified image (``image_rect``, K from ``P``), False for a raw one
            (``image_raw``, K from ``k``; non-zero ``d`` is ignored and reported).

    Raises ``ValueError`` naming the problem when the matrix to use is not a valid pinhole (e.g. all
    zeros: an uncalibrated camera), or ``k``/``p``/``d`` have the wrong size or non-finite values.
    """
    k = np.asarray(k, dtype=np.float64).reshape(-1)
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    d = np.asarray(d, dtype=np.float64).reshape(-1)
    if k.size != 9 or p.size != 12:
        raise ValueError(f"a calibration needs 9 values of K and 12 of P, got {k.size} and {p.size}")
    if not np.all(np.isfinite(d)):
        raise ValueError(f"distortion coefficients contain NaN or infinite values: {d.tolist()}")
    if rectified:
        if not np.any(p):
            raise ValueError("a rectified image needs the calibration's P, but P is all zeros")
        return CameraIntrinsics(validate_intrinsics(p.reshape(3, 4)[:, :3], "calibration P[:, :3]"), False,
                                "rectified image: K from P")
    intrinsics = validate_intrinsics(k.reshape(3, 3), "calibration K")
    if not np.any(d):
        return CameraIntrinsics(intrinsics, False, "raw image without distortion: K")
    return CameraIntrinsics(intrinsics, True, f"raw image: K, {distortion_model or 'unnamed'} distortion "
                                              f"{np.round(d, 4).tolist()} ignored (the image is used as a pinhole)")


def rectified_image(camera_matrix: str, image_topic: str) -> bool:
    """Whether the image of ``image_topic`` is rectified, i.e. its K is the calibration's P.

    camera_matrix: ``P`` (rectified), ``K`` (raw), or ``auto``: rectified when a name of the topic
    starts with ``image_rect`` (``image_rect``, ``image_rect_color``, ``image_rect_raw`` as
    image_proc and camera drivers name them; ``/camera/image_rect/compressed`` too), else raw.
    """
    if camera_matrix not in ("auto", "K", "P"):
        raise ValueError(f"camera_matrix must be auto, K or P, got {camera_matrix!r}")
    if camera_matrix != "auto":
        return camera_matrix == "P"
    return any(name.startswith("image_rect") for name in image_topic.split("/"))
