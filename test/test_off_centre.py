"""Faces at the centre and in the corners of a 90-degree field of view, rendered exactly with a known K.

The model path runs the real predictor (crop, focal fit, virtual camera, paste-back, cloud) with
``SceneNet`` answering for the network: every point lies within 2 % of the true surface and of
its true distance from the camera. The mesh path's geometry (pose against the template, lifting along the view of the face) is exact
at every point given exact landmarks; run with mediapipe on a textured render, its points lie
within 2 % of their true distance as far as mediapipe's landmarks allow (the median point).
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import face_image
from scipy.spatial import cKDTree

from faceanything_ros.canonical import label_from_landmarks, load_canonical_space
from faceanything_ros.config import PredictorConfig
from faceanything_ros.geometry.camera import crop_resize_intrinsics
from faceanything_ros.geometry.projection import unproject_depth, unproject_pixels
from faceanything_ros.io.crop import crop_box_for_face
from faceanything_ros.io.frames import read_image
from faceanything_ros.predictor import Predictor
from faceanything_ros.reconstruction import FaceReconstruction
from faceanything_ros.reference import MeshReference
from scene_net import FaceScene, SceneNet, corner_camera, exact_landmarks, face_scene

HEIGHT, WIDTH = 480, 640
K = corner_camera(HEIGHT, WIDTH)  # 90 degrees horizontally, principal point at the image centre
PLACES = {  # face centre pixels: the image centre and its four corners (38 to 42 degrees off the axis)
    "centre": ((WIDTH - 1) / 2, (HEIGHT - 1) / 2),
    "top_left": (95.0, 85.0), "top_right": (545.0, 85.0), "bottom_left": (95.0, 395.0), "bottom_right": (545.0, 395.0),
}
MESH_TEXTURE = "deca_aflw2000_image00202.jpg"  # a frontal photo whose skin the rendered template wears
DISTANCE = 0.6  # metres from the camera centre to the face
TOLERANCE = 0.02  # relative error of a point's distance
WARM_UP_FRAMES = 10  # frames the running focal estimate needs before it is held to 1 %
SURFACE_SAMPLING = 3  # the true surface is sampled at this many points per pixel and axis


def distance_errors(face: FaceReconstruction, scene: FaceScene, min_overlap: float = 0.97
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Relative errors of the cloud points that have a true surface point at their pixel: along the
    pixel's ray (distance from the camera) and to the nearest point of the true surface (sampled at
    a third of a pixel), both divided by the true distance. At least ``min_overlap`` of the cloud
    lies on the true face, and the cloud covers at least 90 % of it.

    A point's ray distance is as good as the surface's slope allows: where the surface grazes the
    ray (the face's outline) a pixel's worth of resampling moves the point far along the ray but
    not off the surface.
    """
    truth = scene.render(K, HEIGHT, WIDTH)
    cloud = face.cloud
    rows, cols = cloud.pixels[:, 1], cloud.pixels[:, 0]
    on_truth = truth.mask[rows, cols]
    assert on_truth.mean() > min_overlap and on_truth.sum() > 0.9 * truth.mask.sum()
    true_points = unproject_pixels(cloud.pixels[on_truth].astype(float), truth.depth[rows, cols][on_truth], K)
    true_distance = np.linalg.norm(true_points, axis=1)
    along_ray = np.abs(np.linalg.norm(cloud.points[on_truth], axis=1) - true_distance) / true_distance
    fine_K = crop_resize_intrinsics(K, 0.0, 0.0, SURFACE_SAMPLING)
    fine = scene.render(fine_K, HEIGHT * SURFACE_SAMPLING, WIDTH * SURFACE_SAMPLING)
    surface = cKDTree(unproject_depth(fine.depth, fine_K)[fine.mask])
    to_surface = surface.query(cloud.points[on_truth])[0] / true_distance
    return along_ray, to_surface


def assert_on_true_surface(face: FaceReconstruction, scene: FaceScene) -> None:
    """Every point within 2 % of the true surface; 99 % of them within 2 % of their true distance."""
    along_ray, to_surface = distance_errors(face, scene)
    assert to_surface.max() < TOLERANCE, to_surface.max()
    assert np.quantile(along_ray, 0.99) < TOLERANCE, np.quantile(along_ray, 0.99)


@pytest.fixture(scope="module")
def predictor(tiny_checkpoint):
    with Predictor(tiny_checkpoint) as predictor:
        yield predictor


def predict_scene(predictor: Predictor, scene: FaceScene, intrinsics: np.ndarray | None, net: SceneNet | None = None):
    """One frame of ``scene`` through ``predictor`` with ``net`` (default: exact) as its network."""
    net = net or SceneNet(scene, K, predictor.input_size)
    face = scene.face_box(K, HEIGHT, WIDTH)
    net.boxes = [crop_box_for_face(face, predictor.config.detector.crop_scale, predictor.input_size)]
    predictor.engine = net
    (reconstruction,) = predictor.predict(np.zeros((HEIGHT, WIDTH, 3), np.uint8), intrinsics, detections=[[face]])
    return reconstruction


@pytest.mark.parametrize("place", sorted(PLACES))
@pytest.mark.parametrize("given", [True, False], ids=["given_K", "estimated_K"])
def test_model_points_lie_at_the_true_distance(predictor, place, given):
    predictor.focal_estimate.reset()
    scene = face_scene(K, PLACES[place], DISTANCE)
    reconstruction = predict_scene(predictor, scene, K if given else None)
    assert reconstruction.intrinsics_source == ("given" if given else "rays")
    np.testing.assert_allclose(reconstruction.intrinsics, K, rtol=1e-4)
    assert_on_true_surface(reconstruction.faces[0], scene)


def test_given_focal_rescales_a_network_that_believes_another_focal(predictor):
    """The network sees the face as through a 15 % longer lens (rays and depth); the given K corrects it."""
    scene = face_scene(K, PLACES["top_right"], DISTANCE)
    net = SceneNet(scene, K, predictor.input_size, focal_factor=1.15)
    assert_on_true_surface(predict_scene(predictor, scene, K, net).faces[0], scene)


@pytest.mark.parametrize("metric_depth", ["face_size", "rays"])
def test_a_small_face_is_placed_by_the_metric_depth_choice(tiny_checkpoint, metric_depth):
    """A face 0.9 x the template's size, given K, the network fooled about the focal: ``rays`` puts it
    at its true distance; ``face_size`` gives it the template's size, so 1 / 0.9 farther."""
    scene = face_scene(K, PLACES["top_left"], DISTANCE)
    centre = scene.vertices.mean(axis=0)
    small = FaceScene(centre + 0.9 * (scene.vertices - centre), scene.triangles, scene.canonical)
    with Predictor(tiny_checkpoint, config=PredictorConfig(metric_depth=metric_depth)) as predictor:
        face = predict_scene(predictor, small, K, SceneNet(small, K, predictor.input_size, focal_factor=1.15)).faces[0]
    truth = small.render(K, HEIGHT, WIDTH)
    rows, cols = face.cloud.pixels[:, 1], face.cloud.pixels[:, 0]
    on_truth = truth.mask[rows, cols]
    true_points = unproject_pixels(face.cloud.pixels[on_truth].astype(float), truth.depth[rows, cols][on_truth], K)
    ratio = np.median(np.linalg.norm(face.cloud.points[on_truth], axis=1) / np.linalg.norm(true_points, axis=1))
    assert ratio == pytest.approx(1.0 if metric_depth == "rays" else 1.0 / 0.9, rel=0.01)


def test_focal_estimate_of_a_stream_is_stable(predictor):
    """60 frames, a face wandering over the image at 0.5-0.9 m, rays with noise 0.02: after a few
    frames K stays within 1 % (one frame alone gives a few %)."""
    predictor.focal_estimate.reset()
    rng = np.random.default_rng(3)
    focals = []
    for frame in range(60):
        pixel = (rng.uniform(100, WIDTH - 100), rng.uniform(90, HEIGHT - 90))
        scene = face_scene(K, pixel, rng.uniform(0.5, 0.9))
        net = SceneNet(scene, K, predictor.input_size, ray_noise=0.02, seed=frame)
        reconstruction = predict_scene(predictor, scene, None, net)
        assert reconstruction.intrinsics_source == "rays" and reconstruction.intrinsics_estimated
        np.testing.assert_array_equal(reconstruction.intrinsics[:2, 2], [(WIDTH - 1) / 2, (HEIGHT - 1) / 2])
        focals.append(reconstruction.intrinsics[0, 0])
    focals = np.array(focals)
    settled = np.abs(focals[WARM_UP_FRAMES:] / K[0, 0] - 1)
    assert settled.max() < 0.01, settled.max()
    assert np.abs(np.diff(focals[WARM_UP_FRAMES:]) / K[0, 0]).max() < 0.005


@pytest.fixture(scope="module")
def mesh_reference():
    with MeshReference() as reference:
        yield reference


@pytest.fixture(scope="module")
def texture(mesh_reference) -> tuple[np.ndarray, np.ndarray]:
    """(photo, (478, 2) face-mesh landmark pixels of it): the skin the rendered template wears."""
    photo = read_image(face_image(MESH_TEXTURE))
    return photo, mesh_reference.labeler.label(photo)[0].landmarks_px


def textured_render(scene: FaceScene, texture: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """``(H, W, 3)`` uint8 image of ``scene`` seen through K, the photo mapped on by its landmarks, grey around."""
    photo, landmarks = texture
    raster = scene.render(K, HEIGHT, WIDTH, attributes=landmarks)
    source = np.nan_to_num(raster.attributes[..., 3:], nan=-1.0).astype(np.float32)
    image = cv2.remap(photo, source[..., 0], source[..., 1], cv2.INTER_LINEAR)
    return np.where(raster.mask[..., None], image, np.uint8(128))


@pytest.mark.parametrize("place", sorted(PLACES))
def test_mesh_fit_puts_every_point_at_its_true_place_given_exact_landmarks(place):
    """What a perfect face mesh reports, at the centre and in the corners: every vertex of the lifted
    mesh is its true point, so the spread of the mediapipe test below is mediapipe's, not the geometry's."""
    scene = face_scene(K, PLACES[place], DISTANCE)
    label = label_from_landmarks(exact_landmarks(scene.vertices, K), K, load_canonical_space())
    error = np.linalg.norm(label.vertices - scene.vertices, axis=1) / np.linalg.norm(scene.vertices, axis=1)
    assert error.max() < 1e-6, error.max()


@pytest.mark.parametrize("place", sorted(PLACES))
def test_mesh_method_points_lie_at_the_true_distance(mesh_reference, texture, place):
    """mediapipe's landmarks decide the face's distance to within about 2 %, so the median point is held
    to 2 % and nine in ten to 3 % (landmarks read off the oblique corner view itself land 3-5 % far).

    Not every point: with exact landmarks the fit is exact (the test above), but mediapipe's landmarks
    are 1.2-2.2 px off (median) here, which moves the whole face by -1.5 % (centre, seen directly) to
    +0.6..+1.7 % (corners, seen in the rotated view; the centre seen the same way: +0.8 %), and its
    relative depth misses the template's relief by 1.3-1.9 mm (median, 4.6-5 mm at the 95th
    percentile); together the 95th percentile point lies 1.5-2.6 % off."""
    scene = face_scene(K, PLACES[place], DISTANCE)
    (reconstruction,) = mesh_reference.predict(textured_render(scene, texture), K)
    along_ray, _ = distance_errors(reconstruction.faces[0], scene, min_overlap=0.95)
    assert np.median(along_ray) < TOLERANCE and np.quantile(along_ray, 0.9) < 1.5 * TOLERANCE, (
        np.median(along_ray), np.quantile(along_ray, 0.9))
