"""The one result type of the product: what a frame's reconstruction holds.

Every producer (the learned model through ``Predictor``, the face-mesh reference method through
``reference.MeshReference``)
returns ``Reconstruction`` objects, and every consumer (export, tracking, ROS, evaluation) reads
only these, so methods are compared side by side with the same code.

All maps are full-image (the frame's own pixel grid, ``H x W``); depth is z-depth in metres in
the camera optical frame (x right, y down, z forward); canonical coordinates are in the shared
canonical face space, normalised to ``[-1, 1]^3``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .geometry.pointcloud import PointCloud, mask_region, point_cloud_from_depth
from .io.crop import CropBox
from .io.face_detector import FaceBox
from .tracking import TrackingFrame


@dataclass
class FaceReconstruction:
    """One face in one frame, pasted back into full-image coordinates.

    Its point cloud is made on demand (``point_cloud``), from the pixels of ``cloud_mask`` on a
    pixel grid sampled before unprojection, inside the face's region only.
    """

    face: FaceBox  # detection (pixels, image coordinates)
    crop: CropBox  # the square crop the model saw
    depth: np.ndarray  # (H, W) float32 metres, NaN outside the face mask
    depth_confidence: np.ndarray  # (H, W) float32 >= 1 inside the crop, NaN outside it
    canonical: np.ndarray  # (H, W, 3) float32 in [-1, 1], NaN outside the face mask
    canonical_confidence: np.ndarray  # (H, W) float32 >= 1 inside the crop, NaN outside it
    mask: np.ndarray  # (H, W) bool face pixels
    intrinsics: np.ndarray  # (3, 3) float64 pinhole K of the image, pixels
    image: np.ndarray  # (H, W, 3) uint8 RGB frame: the points' colours
    cloud_mask: np.ndarray  # (H, W) bool face pixels confident enough to become points

    @property
    def num_pixels(self) -> int:
        """Number of face pixels in the mask."""
        return int(self.mask.sum())

    @cached_property
    def region(self) -> tuple[slice, slice]:
        """``(rows, cols)`` of the image holding the face's mask (``geometry.pointcloud.mask_region``)."""
        return mask_region(self.mask)

    def point_cloud(self, stride: int = 1) -> PointCloud:
        """``(N, ...)`` metric points of the face in the camera optical frame, with colour, canonical
        coordinate and depth confidence, on every ``stride``-th image row and column (sampled, then
        only those pixels unprojected: ``point_cloud_from_depth``)."""
        return point_cloud_from_depth(self.depth, self.intrinsics, valid=self.cloud_mask, image=self.image,
                                      canonical=self.canonical, confidence=self.depth_confidence, stride=stride,
                                      region=self.region)

    @cached_property
    def cloud(self) -> PointCloud:
        """Every point of the face (``point_cloud(1)``), made once."""
        return self.point_cloud()


@dataclass
class Reconstruction:
    """A frame's reconstruction: camera intrinsics and zero or more faces (largest first).

    ``faces`` is empty when no face was found; ``message`` then says why. Frame-level maps
    (``depth``, ``canonical``, ``mask``) merge the faces, the nearest surface winning; each is
    computed once, on first use, and read-only (``faces`` must not change afterwards).
    """

    frame_index: int
    image_size: tuple[int, int]  # (H, W) pixels
    intrinsics: np.ndarray  # (3, 3) float64 pinhole K of the full image, pixels
    # "given" (e.g. CameraInfo), "rays" (focal length estimated from the stream's predicted rays,
    # principal point at the image centre) or "default-fov" (assumed: no face has given a focal length yet)
    intrinsics_source: str
    faces: list[FaceReconstruction] = field(default_factory=list)
    message: str = "ok"

    @property
    def intrinsics_estimated(self) -> bool:
        """True when ``intrinsics`` is an estimate or an assumption (no K was given), False when given."""
        return self.intrinsics_source != "given"

    @property
    def found(self) -> bool:
        """True when at least one face was reconstructed."""
        return bool(self.faces)

    @cached_property
    def depth(self) -> np.ndarray:
        """(H, W) float32 metres (read-only), NaN where no face; the nearest face wins where faces overlap."""
        return self._merged("depth")

    @cached_property
    def face_index(self) -> np.ndarray:
        """(H, W) int16 (read-only): index into ``faces`` of the visible face at each pixel, -1 where none.

        Computed once: ``mask``, ``depth``, ``canonical`` and the confidences all select pixels by it.
        """
        height, width = self.image_size
        index = np.full((height, width), -1, dtype=np.int16)
        depth = np.full((height, width), np.inf, dtype=np.float32)
        for i, face in enumerate(self.faces):
            closer = face.mask & (face.depth < depth)
            index = np.where(closer, np.int16(i), index)
            depth = np.where(closer, face.depth, depth)
        index.flags.writeable = False
        return index

    @property
    def mask(self) -> np.ndarray:
        """(H, W) bool: pixels of any face."""
        return self.face_index >= 0

    @cached_property
    def canonical(self) -> np.ndarray:
        """(H, W, 3) float32 canonical coordinates of the visible face, NaN where none (read-only)."""
        return self._merged("canonical", channels=3)

    @cached_property
    def canonical_confidence(self) -> np.ndarray:
        """(H, W) float32 canonical confidence of the visible face, NaN where none (read-only)."""
        return self._merged("canonical_confidence")

    @cached_property
    def depth_confidence(self) -> np.ndarray:
        """(H, W) float32 depth confidence of the visible face, NaN where none (read-only)."""
        return self._merged("depth_confidence")

    @property
    def cloud(self) -> PointCloud:
        """All faces' points, concatenated (faces may overlap in 3D where they occlude)."""
        return PointCloud.concatenate([face.cloud for face in self.faces])

    def point_cloud(self, stride: int = 1) -> PointCloud:
        """All faces' points on every ``stride``-th image row and column (``FaceReconstruction.point_cloud``)."""
        return PointCloud.concatenate([face.point_cloud(stride) for face in self.faces])

    def tracking_frames(self) -> list[TrackingFrame]:
        """The frame as the canonical tracker sees it: one ``TrackingFrame`` per face, in ``faces`` order.

        Each holds only the pixels where that face is the visible one (``face_index``), with its
        own canonical map, confidence and depth and the frame's intrinsics, so each face is
        tracked on its own (``tracking.MultiFaceTracker``) and no track can move to another face.
        """
        index = self.face_index
        return [TrackingFrame(canonical=face.canonical, confidence=face.canonical_confidence,
                              mask=face.mask & (index == i), depth=face.depth, intrinsics=self.intrinsics)
                for i, face in enumerate(self.faces)]

    def _merged(self, name: str, channels: int = 0) -> np.ndarray:
        """Read-only (H, W[, C]) float32 map ``name`` of the visible face at each pixel (``face_index``), NaN where none.

        Computed once per property (``cached_property``): the faces of a reconstruction do not change.
        """
        index = self.face_index
        shape = self.image_size + ((channels,) if channels else ())
        merged = np.full(shape, np.nan, dtype=np.float32)
        for i, face in enumerate(self.faces):
            where = index == i
            merged = np.where(where[..., None] if channels else where, getattr(face, name), merged)
        merged = merged.astype(np.float32, copy=False)
        merged.flags.writeable = False
        return merged
