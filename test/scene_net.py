"""Exact face scenes with known K, and a stand-in network that answers for them.

``face_scene`` poses the canonical template (metres) so that it faces the camera from a chosen
pixel; ``SceneNet`` replaces ``Predictor.engine`` and returns, for each crop it is told of, what the
network is trained to predict there (the camera convention of ``geometry.virtual_camera``):
z-depth and unit rays in the crop's virtual camera, canonical coordinates and the face mask.
Off the face it returns values far from the face (depth ``OFF_FACE_DEPTH``, canonical
``OFF_FACE_CANONICAL``), so any leak of them into face pixels shows. ``exact_landmarks`` is what a
perfect face mesh would report for posed points.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from faceanything_ros.canonical.space import load_canonical_space
from faceanything_ros.canonical.topology import NUM_SURFACE_LANDMARKS
from faceanything_ros.geometry.camera import intrinsics_matrix
from faceanything_ros.geometry.projection import project_points
from faceanything_ros.geometry.rasterizer import Raster, rasterize
from faceanything_ros.geometry.virtual_camera import depth_to_virtual, virtual_rays, virtual_rotation
from faceanything_ros.io.crop import CropBox
from faceanything_ros.io.face_detector import FaceBox
from faceanything_ros.io.face_mesh import FaceLandmarks
from faceanything_ros.model.prediction import ModelPrediction

OFF_FACE_DEPTH = 3.0  # metres, virtual z-depth the stand-in reports off the face
OFF_FACE_CANONICAL = 0.9  # canonical value of every axis off the face


def exact_landmarks(points: np.ndarray, intrinsics: np.ndarray) -> FaceLandmarks:
    """Landmarks a perfect face mesh would report for camera-frame ``points``: pixels and relative depth in
    pixels, along the view of the face (the direction of its centre) and scaled at the face's distance."""
    pixels, _ = project_points(points, intrinsics)
    centre = points[:NUM_SURFACE_LANDMARKS].mean(axis=0)
    distance = np.linalg.norm(centre)
    focal = (intrinsics[0, 0] + intrinsics[1, 1]) / 2
    return FaceLandmarks(pixels=pixels, relative_depth_px=(points @ centre / distance - distance) * focal / distance)


@dataclass
class FaceScene:
    """A posed template face: ``vertices`` (V, 3) metres in the camera optical frame, ``triangles``
    (F, 3), per-vertex ``canonical`` (V, 3)."""

    vertices: np.ndarray
    triangles: np.ndarray
    canonical: np.ndarray

    def render(self, intrinsics: np.ndarray, height: int, width: int, attributes: np.ndarray | None = None) -> Raster:
        """The exact z-depth / mask (and canonical + ``attributes`` (V, C)) seen through ``intrinsics``."""
        extra = self.canonical if attributes is None else np.concatenate([self.canonical, attributes], axis=1)
        return rasterize(self.vertices, self.triangles, intrinsics, height, width, attributes=extra)

    def face_box(self, intrinsics: np.ndarray, height: int, width: int) -> FaceBox:
        """The bounding box of the face's pixels, as a detector would report it."""
        rows, cols = np.nonzero(self.render(intrinsics, height, width).mask)
        return FaceBox(cols.min() - 0.5, rows.min() - 0.5, cols.max() + 0.5, rows.max() + 0.5, 1.0, np.zeros((6, 2)))


def corner_camera(height: int, width: int, horizontal_fov_deg: float = 90.0) -> np.ndarray:
    """Square-pixel K with the principal point at the image centre."""
    focal = width / 2 / np.tan(np.radians(horizontal_fov_deg) / 2)
    return intrinsics_matrix(focal, focal, (width - 1) / 2, (height - 1) / 2)


def face_scene(intrinsics: np.ndarray, pixel: tuple[float, float], distance: float) -> FaceScene:
    """The template face at ``distance`` metres along the ray of ``pixel`` (u, v), looking at the camera."""
    space = load_canonical_space()
    direction = np.linalg.solve(intrinsics, [pixel[0], pixel[1], 1.0])
    direction /= np.linalg.norm(direction)
    rotation, _ = Rotation.align_vectors(direction[None], np.array([[0.0, 0.0, 1.0]]))
    template = space.template - space.template.mean(axis=0)
    return FaceScene(template @ rotation.as_matrix().T + distance * direction, space.topology, space.canonical_template)


class SceneNet:
    """Stand-in for the network: exact predictions of ``scene`` for the crops in ``boxes``.

    ``boxes``: the crop of each image of the next ``infer`` call, in order (one face per frame:
    the frames of a ``Predictor.predict`` window). ``focal_factor``: the network believes the
    camera's focal length is this many times the true one (rays of that camera, depth scaled with
    it, as a face of fixed size looks the same at a proportionally larger distance);
    ``ray_noise``: standard deviation of Gaussian noise added to each ray component.
    """

    def __init__(self, scene: FaceScene, intrinsics: np.ndarray, size: int, focal_factor: float = 1.0,
                 ray_noise: float = 0.0, seed: int = 0) -> None:
        self.scene, self.intrinsics, self.size = scene, np.asarray(intrinsics, dtype=np.float64), size
        self.focal_factor, self.ray_noise = focal_factor, ray_noise
        self.rng = np.random.default_rng(seed)
        self.boxes: list[CropBox] = []

    def infer(self, images: np.ndarray, flip_average: bool = False) -> ModelPrediction:
        """Exact maps of the scene (``flip_average`` is the predictor's setting; exact maps need no averaging)."""
        assert len(images) == len(self.boxes), "SceneNet needs one crop box per image"
        outputs = [self._crop(box) for box in self.boxes]
        return ModelPrediction(**{name: np.stack([o[name] for o in outputs]).astype(np.float32)
                                  for name in outputs[0]})

    def _crop(self, box: CropBox) -> dict[str, np.ndarray]:
        size = self.size
        crop_K = box.intrinsics(self.intrinsics)
        raster = self.scene.render(crop_K, size, size)
        depth = depth_to_virtual(raster.depth, crop_K, virtual_rotation(crop_K, size, size)) * self.focal_factor
        believed = self.intrinsics.copy()
        believed[[0, 1], [0, 1]] *= self.focal_factor
        believed_K = box.intrinsics(believed)
        rays = virtual_rays(believed_K, virtual_rotation(believed_K, size, size), size, size)
        rays = rays + self.rng.normal(scale=self.ray_noise, size=rays.shape) if self.ray_noise else rays
        ones = np.ones((size, size))
        return {
            "depth": np.where(raster.mask, depth, OFF_FACE_DEPTH),
            "depth_confidence": 2 * ones,
            "rays": rays / np.linalg.norm(rays, axis=-1, keepdims=True),
            "ray_confidence": 2 * ones,
            "canonical": np.where(raster.mask[..., None], raster.attributes[..., :3], OFF_FACE_CANONICAL),
            "canonical_confidence": 3 * ones,
            "mask_probability": raster.mask.astype(np.float64),
        }
