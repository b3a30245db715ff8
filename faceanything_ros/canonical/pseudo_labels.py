"""Face-mesh pseudo-labels: posed metric mesh per face and its rasterised depth / canonical map / mask / visibility.

``FaceMeshLabeler.label(rgb, K)`` runs mediapipe FaceMesh (``io.face_mesh``), fits each face's
pose against the canonical template and lifts the landmarks to a metric mesh in the camera
optical frame (model in ``canonical.fitting``), giving ``MeshLabel`` objects;
``MeshLabel.render(H, W)`` rasterises the mesh (``geometry.rasterizer``) into per-pixel labels.
The canonical coordinate of a mesh vertex is the normalised template position of the same
landmark, so the same facial point has the same canonical value in every frame; inside a
triangle it is interpolated perspective-correctly. The iris landmarks (468-477) have no triangles:
they never cover pixels, but have a pose, canonical coordinates and a visibility like the others.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from faceanything_ros.canonical.fitting import fit_face_pose
from faceanything_ros.canonical.space import CanonicalSpace, load_canonical_space
from faceanything_ros.canonical.topology import NUM_SURFACE_LANDMARKS
from faceanything_ros.config import FaceMeshConfig
from faceanything_ros.geometry.camera import intrinsics_from_fov, intrinsics_matrix, mean_focal, validate_intrinsics
from faceanything_ros.geometry.projection import project_points
from faceanything_ros.geometry.rasterizer import rasterize
from faceanything_ros.geometry.virtual_camera import rotation_onto, virtual_view_homography
from faceanything_ros.io.face_mesh import NUM_LANDMARKS, FaceLandmarks, FaceMesh
from faceanything_ros.io.validation import validate_rgb

FACE_VIEW_MIN_DEG = 10.0  # faces farther off the optical axis are found again in a view rotated to look at them
FACE_VIEW_SIZE = 256  # side of that view, pixels
FACE_VIEW_SCALE = 1.8  # view side / the face's landmark extent
VISIBILITY_TOLERANCE_M = 0.005  # a vertex up to 5 mm behind the rendered surface at its pixel still counts as visible


@dataclass
class PixelLabels:
    """Per-pixel labels of one face in an ``H x W`` image (``MeshLabel.render``).

    ``depth``: (H, W) float32 z-depth in metres, NaN background; ``canonical``: (H, W, 3) float32
    in ``[-1, 1]``, NaN background; ``mask``: (H, W) bool face pixels; ``visible``: (V,) bool,
    vertices inside the image and not occluded (z-buffer test with ``VISIBILITY_TOLERANCE_M``).
    """

    depth: np.ndarray
    canonical: np.ndarray
    mask: np.ndarray
    visible: np.ndarray


@dataclass
class MeshLabel:
    """One face's fitted mesh in one frame (camera optical frame: x right, y down, z forward; metres).

    ``landmarks_px``: (V, 2) float64 face-mesh landmarks ``(u, v)``, image pixels;
    ``vertices``: (V, 3) float64 posed metric mesh (projects exactly onto ``landmarks_px``);
    ``intrinsics``: (3, 3) float64 K used, pixels; ``rotation`` (3, 3), ``translation`` (3,) metres
    and ``scale``: the template -> camera similarity ``scale * rotation @ template + translation``;
    ``triangles``: (F, 3) int32 mesh topology; ``canonical_vertices``: (V, 3) float64 canonical
    coordinates of the vertices in ``[-1, 1]``.
    """

    landmarks_px: np.ndarray
    vertices: np.ndarray
    intrinsics: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    scale: float
    triangles: np.ndarray
    canonical_vertices: np.ndarray

    def render(self, height: int, width: int) -> PixelLabels:
        """Rasterise the mesh into ``H x W`` depth, canonical map, mask and per-vertex visibility."""
        raster = rasterize(self.vertices, self.triangles, self.intrinsics, height, width,
                           attributes=self.canonical_vertices)
        pixels, depth = project_points(self.vertices, self.intrinsics)
        column, row = np.round(np.nan_to_num(pixels, nan=-1.0)).astype(np.int64).T
        inside = (column >= 0) & (column < width) & (row >= 0) & (row < height)
        surface = np.full(len(depth), np.nan)
        surface[inside] = raster.depth[row[inside], column[inside]]
        visible = inside & ~(depth > surface + VISIBILITY_TOLERANCE_M)
        return PixelLabels(depth=raster.depth, canonical=raster.attributes, mask=raster.mask, visible=visible)


def label_from_landmarks(landmarks: FaceLandmarks, intrinsics: np.ndarray, space: CanonicalSpace,
                         face_scale: float = 1.0) -> MeshLabel:
    """``MeshLabel`` of one face's landmarks seen through ``(3, 3)`` ``intrinsics`` (fit model: ``canonical.fitting``)."""
    pose = fit_face_pose(landmarks.pixels, landmarks.relative_depth_px, space.template, intrinsics, face_scale)
    return MeshLabel(landmarks_px=landmarks.pixels, vertices=pose.vertices, intrinsics=validate_intrinsics(intrinsics),
                     rotation=pose.rotation, translation=pose.translation, scale=pose.scale,
                     triangles=space.topology, canonical_vertices=space.canonical_template)


class FaceMeshLabeler:
    """Pseudo-labels of real frames from mediapipe FaceMesh fitted to a canonical space.

    ``space`` must have mediapipe's 478-landmark topology (default: the shipped space);
    ``config`` (``FaceMeshConfig``) sets the number of faces, detection threshold, default field
    of view and face scale; ``tracking`` runs the face mesh in its tracking mode (``io.face_mesh``), for
    the frames of one video in order; the rotated views of off-centre faces (``_seen_face_on``) then go
    to a tracking graph of their own, so neither stream disturbs the other. Not thread-safe; release
    with ``close()`` or a ``with`` block.
    """

    def __init__(self, space: CanonicalSpace | None = None, config: FaceMeshConfig | None = None,
                 tracking: bool = False) -> None:
        self.space = space if space is not None else load_canonical_space()
        self.config = config if config is not None else FaceMeshConfig()
        if self.space.num_vertices != NUM_LANDMARKS:
            raise ValueError(f"FaceMeshLabeler needs a 478-vertex face-mesh space, {self.space.id!r} has "
                             f"{self.space.num_vertices}")
        self._mesh = FaceMesh(self.config.max_faces, self.config.min_confidence, tracking=tracking)
        self._view_mesh = FaceMesh(self.config.max_faces, self.config.min_confidence, tracking=True) if tracking \
            else self._mesh

    def intrinsics_for(self, height: int, width: int, intrinsics: np.ndarray | None) -> np.ndarray:
        """``intrinsics`` validated, or the default ``config.default_fov_deg`` camera of an ``H x W`` image."""
        if intrinsics is None:
            return intrinsics_from_fov(width, height, self.config.default_fov_deg)
        return validate_intrinsics(intrinsics)

    def label(self, rgb: np.ndarray, intrinsics: np.ndarray | None = None) -> list[MeshLabel]:
        """Faces of one ``(H, W, 3)`` uint8 RGB frame, largest first (``[]`` without a face).

        ``intrinsics``: ``(3, 3)`` K in pixels, or None for the default field of view.
        """
        rgb = validate_rgb(rgb)
        K = self.intrinsics_for(rgb.shape[0], rgb.shape[1], intrinsics)
        return [label_from_landmarks(self._seen_face_on(rgb, face, K), K, self.space, self.config.face_scale)
                for face in self._mesh.landmarks(rgb)]

    def _seen_face_on(self, rgb: np.ndarray, face: FaceLandmarks, K: np.ndarray) -> FaceLandmarks:
        """``face``'s landmarks found again in the view of a camera rotated to look at it.

        An off-centre face is seen obliquely: stretched towards the image border, which FaceMesh
        reads as a smaller, farther face. Rotated about its centre to look at the face (the
        virtual camera of ``geometry.virtual_camera``, zoomed to a ``FACE_VIEW_SIZE`` view), the
        camera sees it as if centred; its landmarks are mapped back into the image, and the
        relative depth (converted to image pixels) runs along the view of the face, as
        ``canonical.fitting`` lifts it. Faces within ``FACE_VIEW_MIN_DEG`` of the optical axis,
        or not found again, keep their landmarks.
        """
        surface = face.pixels[:NUM_SURFACE_LANDMARKS]
        direction = np.linalg.solve(K, np.append(surface.mean(axis=0), 1.0))
        if np.degrees(np.arccos(direction[2] / np.linalg.norm(direction))) < FACE_VIEW_MIN_DEG:
            return face
        view_focal = mean_focal(K) * FACE_VIEW_SIZE / (FACE_VIEW_SCALE * np.ptp(surface, axis=0).max())
        view_K = intrinsics_matrix(view_focal, view_focal, (FACE_VIEW_SIZE - 1) / 2, (FACE_VIEW_SIZE - 1) / 2)
        to_image = virtual_view_homography(K, rotation_onto(direction), view_K)
        view = cv2.warpPerspective(rgb, to_image, (FACE_VIEW_SIZE, FACE_VIEW_SIZE),
                                   flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
        found = self._view_mesh.landmarks(view)
        if not found:
            return face
        centred = min(found, key=lambda f: np.linalg.norm(f.pixels[:NUM_SURFACE_LANDMARKS].mean(axis=0) - view_K[:2, 2]))
        pixels = np.concatenate([centred.pixels, np.ones((len(centred.pixels), 1))], axis=1) @ to_image.T
        return FaceLandmarks(pixels=pixels[:, :2] / pixels[:, 2:],
                             relative_depth_px=centred.relative_depth_px * mean_focal(K) / view_focal)

    def reset(self) -> None:
        """Forget the tracked faces (tracking mode): the next frame is a new stream's first."""
        self._mesh.reset()
        self._view_mesh.reset()

    def close(self) -> None:
        """Release mediapipe (safe to call repeatedly)."""
        self._mesh.close()
        self._view_mesh.close()

    def __enter__(self) -> "FaceMeshLabeler":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
