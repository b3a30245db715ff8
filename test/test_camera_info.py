"""The K an image gets from its calibration (CameraInfo fields): P for rectified images, K for raw ones."""
from __future__ import annotations

import numpy as np
import pytest

from faceanything_ros.geometry.camera_info import camera_intrinsics, rectified_image

K = np.array([[610.0, 0.0, 322.5], [0.0, 612.0, 241.0], [0.0, 0.0, 1.0]])
P = np.array([[580.0, 0.0, 318.0, 0.0], [0.0, 580.0, 236.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
D = np.array([-0.21, 0.05, 0.001, -0.0005, 0.0])


def test_rectified_image_uses_p_and_has_no_distortion():
    used = camera_intrinsics(K.ravel(), D, P.ravel(), "plumb_bob", rectified=True)
    np.testing.assert_array_equal(used.intrinsics, P[:, :3])
    assert not used.distortion_ignored and "P" in used.note


def test_raw_image_uses_k_and_reports_ignored_distortion():
    used = camera_intrinsics(K.ravel(), D, P.ravel(), "plumb_bob", rectified=False)
    np.testing.assert_array_equal(used.intrinsics, K)
    assert used.distortion_ignored and "plumb_bob" in used.note and "ignored" in used.note
    for none in (np.zeros(5), np.zeros(0)):
        clean = camera_intrinsics(K, none, P, "plumb_bob", rectified=False)
        np.testing.assert_array_equal(clean.intrinsics, K)
        assert not clean.distortion_ignored and "ignored" not in clean.note


def test_uncalibrated_or_malformed_calibrations_are_refused():
    with pytest.raises(ValueError, match="P is all zeros"):
        camera_intrinsics(K, D, np.zeros(12), "plumb_bob", rectified=True)
    with pytest.raises(ValueError, match="calibration K focal lengths must be positive"):
        camera_intrinsics(np.zeros(9), np.zeros(5), np.zeros(12), "", rectified=False)
    with pytest.raises(ValueError, match="9 values of K and 12 of P"):
        camera_intrinsics(K[:2], D, P, "plumb_bob", rectified=False)
    with pytest.raises(ValueError, match="distortion coefficients contain NaN"):
        camera_intrinsics(K, [np.nan], P, "plumb_bob", rectified=False)


@pytest.mark.parametrize("topic, rectified", [
    ("/camera/image_raw", False), ("/camera/color/image_raw", False), ("/camera/image", False),
    ("/camera/image_rect", True), ("/camera/image_rect_color", True), ("/camera/depth/image_rect_raw", True),
    ("/camera/image_rect/compressed", True), ("/rectifier/image_raw", False),
])
def test_auto_reads_rectification_from_the_image_topic(topic, rectified):
    assert rectified_image("auto", topic) is rectified
    assert rectified_image("P", topic) is True and rectified_image("K", topic) is False
    with pytest.raises(ValueError, match="camera_matrix must be auto, K or P"):
        rectified_image("rect", topic)
