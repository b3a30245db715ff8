"""The one result type of the product: what a frame's reconstruction holds.

Every producer (the learned model through ``Predictor``, the face-mesh reference method through
``reference.MeshReference``)
returns ``Reconstruction`` objects, and every consumer (export, tracking, ROS, evaluation) reads
only these, so methods are compared side by side with the same code.

A face's maps cover the face's part of the image (``FaceReconstruction.region``); the frame-level
maps are full-image (the frame's own pixel grid, ``H x W``), computed where the faces are; depth is
z-depth in metres in the camera optical frame (x right, y down, z forward); canonical coordinates
are in the shared canonical face space, normalised to ``[-1, 1]^3``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .geometry.camera import crop_resize_intrinsics
from .geometry.pointcloud import PointCloud, budget_stride, mask_region, point_cloud_from_depth
from .io.crop import CropBox
from .io.face_detector import FaceBox
from .tracking import TrackingFrame
from .tracking.frame import grown_region


@dataclass
class FaceReconstruction:
    """One face in one frame: its maps over ``region``, the part of the image around the face.

    Every map covers ``region`` only (``(rows, cols)`` slices inside the image; ``(h, w)`` below is
    its size), so a face costs what its size costs, whatever the image's; ``over`` gives a map on
    another part of the image grid (``full``: the whole image). Its point cloud is made on demand
    (``point_cloud``), on a pixel grid sampled before unprojection.
    """

    face: FaceBox  # detection (pixels, image coordinates)
    crop: CropBox  # the square crop the model saw (the face mesh: the grid it was rasterised on)
    region: tuple[slice, slice]  # (rows, cols) of the image that the maps below cover
    depth: np.ndarray  # (h, w) float32 metres, finite on the face mask, NaN outside it
    depth_confidence: np.ndarray  # (h, w) float32 >= 1 inside the crop, NaN outside it
    canonical: np.ndarray  # (h, w, 3) float32 in [-1, 1] on the face mask, NaN outside it
    canonical_confidence: np.ndarray  # (h, w) float32 >= 1 inside the crop, NaN outside it
    mask: np.ndarray  # (h, w) bool face pixels
    intrinsics: np.ndarray  # (3, 3) float64 pinhole K of the image, pixels
    image: np.ndarray  # (H, W, 3) uint8 RGB frame: the points' colours
    cloud_mask: np.ndarray  # (h, w) bool face pixels confident enough to become points

    def __post_init__(self) -> None:
        rows, cols = self.region
        height, width = self.image.shape[:2]
        if not (0 <= rows.start <= rows.stop <= height and 0 <= cols.start <= cols.stop <= width):
            raise ValueError(f"FaceReconstruction.region {self.region} is not inside the {width}x{height} image")
        shape = (rows.stop - rows.start, cols.stop - cols.start)
        for name in MAP_NAMES:
            if getattr(self, name).shape[:2] != shape:
                raise ValueError(f"FaceReconstruction.{name} has shape {getattr(self, name).shape}; its region "
                                 f"{self.region} is {shape}")

    @property
    def origin(self) -> tuple[int, int]:
        """Image pixel ``(u, v)`` of the maps' pixel ``(0, 0)``."""
        return self.region[1].start, self.region[0].start

    @property
    def num_pixels(self) -> int:
        """Number of face pixels in the mask."""
        return int(np.count_nonzero(self.mask))

    @cached_property
    def num_cloud_pixels(self) -> int:
        """Pixels of ``cloud_mask``: the points of ``point_cloud(1)`` with a finite depth."""
        return int(np.count_nonzero(self.cloud_mask))

    @cached_property
    def mask_box(self) -> tuple[slice, slice]:
        """``(rows, cols)`` of the image holding the face's mask (empty when it has no pixel)."""
        rows, cols = mask_region(self.mask)
        if rows.stop == rows.start:
            return rows, cols
        u0, v0 = self.origin
        return slice(rows.start + v0, rows.stop + v0), slice(cols.start + u0, cols.stop + u0)

    def over(self, name: str, region: tuple[slice, slice]) -> np.ndarray:
        """Map ``name`` (one of ``MAP_NAMES``) on ``region`` of the image: its values where the two regions
        overlap, NaN (False for the masks) elsewhere (a new array; ``region`` as ``image_region`` reads it)."""
        return placed(getattr(self, name), self.region, image_region(region, self.image.shape[:2]))

    def full(self, name: str) -> np.ndarray:
        """Map ``name`` on the whole image grid, ``(H, W[, 3])`` (``over`` the image)."""
        height, width = self.image.shape[:2]
        return self.over(name, (slice(0, height), slice(0, width)))

    def point_cloud(self, stride: int = 1) -> PointCloud:
        """``(N, ...)`` metric points of the face in the camera optical frame, with colour, canonical
        coordinate and depth confidence, on every ``stride``-th image row and column (sampled, then
        only those pixels unprojected: ``point_cloud_from_depth``)."""
        u0, v0 = self.origin
        return point_cloud_from_depth(self.depth, crop_resize_intrinsics(self.intrinsics, u0, v0, 1.0),
                                      valid=self.cloud_mask, image=self.image[self.region], canonical=self.canonical,
                                      confidence=self.depth_confidence, stride=stride, origin=self.origin)

    @cached_property
    def cloud(self) -> PointCloud:
        """Every point of the face (``point_cloud(1)``), made once."""
        return self.point_cloud()


MAP_NAMES = ("depth", "depth_confidence", "canonical", "canonical_confidence", "mask", "cloud_mask")
REGION_MAP_NAMES = MAP_NAMES[:4]  # the float maps a Reconstruction merges (Reconstruction.in_region)
NAN_OFF_MASK_MAPS = ("depth", "canonical")  # a face's maps that are NaN off its mask, finite on it (FaceReconstruction)


def image_region(region: tuple[slice, slice], image_size: tuple[int, int]) -> tuple[slice, slice]:
    """``(rows, cols)`` slices as plain ``start:stop`` slices inside an ``(H, W)`` image, read as numpy
    indexing reads them (None = the image's edge, negative = from the end, clipped to the image);
    ``ValueError`` for a step other than 1."""
    plain = []
    for axis, length in zip(region, image_size):
        start, stop, step = axis.indices(length)
        if step != 1:
            raise ValueError(f"a region's slices have step 1, got {region}")
        plain.append(slice(start, max(start, stop)))
    return plain[0], plain[1]


def placed(values: np.ndarray, source: tuple[slice, slice], region: tuple[slice, slice]) -> np.ndarray:
    """``values``, a map over the image's ``source`` ``(rows, cols)``, on the image's ``region``: a new
    array holding them where the two overlap, NaN (False for a bool map) elsewhere."""
    rows, cols = region
    out = np.full((rows.stop - rows.start, cols.stop - cols.start) + values.shape[2:],
                  False if values.dtype == np.bool_ else np.nan, dtype=values.dtype)
    top, bottom = max(rows.start, source[0].start), min(rows.stop, source[0].stop)
    left, right = max(cols.start, source[1].start), min(cols.stop, source[1].stop)
    if top < bottom and left < right:
        out[top - rows.start:bottom - rows.start, left - cols.start:right - cols.start] = \
            values[top - source[0].start:bottom - source[0].start, left - source[1].start:right - source[1].start]
    return out


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
    _region_maps: dict[str, np.ndarray] = field(default_factory=dict, init=False, repr=False, compare=False)

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
    def region(self) -> tuple[slice, slice]:
        """``(rows, cols)`` of the image holding every face's mask (their ``mask_box``es' bounding box; empty
        when no face): the frame-level maps are computed there only, so their cost follows the faces."""
        boxes = [face.mask_box for face in self.faces if face.mask_box[0].stop > face.mask_box[0].start]
        if not boxes:
            return slice(0, 0), slice(0, 0)
        return (slice(min(r.start for r, _ in boxes), max(r.stop for r, _ in boxes)),
                slice(min(c.start for _, c in boxes), max(c.stop for _, c in boxes)))

    @cached_property
    def face_index(self) -> np.ndarray:
        """(H, W) int16 (read-only): index into ``faces`` of the visible face at each pixel, -1 where none.

        Computed once (inside ``region``): ``mask``, ``depth``, ``canonical`` and the confidences all
        select pixels by it.
        """
        index = np.full(self.image_size, -1, dtype=np.int16)
        region = self.region
        nearest = np.full(index[region].shape, np.inf, dtype=np.float32)
        for i, face in enumerate(self.faces):
            depth = face.over("depth", region)
            closer = face.over("mask", region) & (depth < nearest)
            index[region][closer] = i
            nearest[closer] = depth[closer]
        index.flags.writeable = False
        return index

    @property
    def mask(self) -> np.ndarray:
        """(H, W) bool: pixels of any face."""
        return self.face_index >= 0

    @cached_property
    def canonical(self) -> np.ndarray:
        """(H, W, 3) float32 canonical coordinates of the visible face, NaN where none (read-only)."""
        return self._merged("canonical")

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

    def point_cloud(self, stride: int = 1, max_points: int = 0) -> PointCloud:
        """All faces' points on every ``stride``-th image row and column (``FaceReconstruction.point_cloud``),
        or on a sparser grid when that leaves more than about ``max_points`` points (0 = no cap:
        ``geometry.pointcloud.budget_stride`` over all faces' cloud pixels)."""
        stride = budget_stride(sum(face.num_cloud_pixels for face in self.faces), stride, max_points)
        return PointCloud.concatenate([face.point_cloud(stride) for face in self.faces])

    def tracking_frames(self) -> list[TrackingFrame]:
        """The frame as the canonical tracker sees it: one ``TrackingFrame`` per face, in ``faces`` order.

        Each covers the face's region only (and ``tracking.frame.REGION_MARGIN`` pixels around it;
        ``origin`` = its corner, intrinsics moved with it) and holds
        the pixels where that face is the visible one (``face_index``), with its own canonical map,
        confidence and depth, so each face is tracked on its own (``tracking.MultiFaceTracker``), no
        track can move to another face, and the cost follows the face's size, not the image's.
        """
        index = self.face_index
        frames = []
        for i, face in enumerate(self.faces):
            region = rows, cols = grown_region(face.mask_box, self.image_size)
            frames.append(TrackingFrame(
                canonical=face.over("canonical", region), confidence=face.over("canonical_confidence", region),
                mask=face.over("mask", region) & (index[region] == i), depth=face.over("depth", region),
                intrinsics=crop_resize_intrinsics(self.intrinsics, cols.start, rows.start, 1.0),
                origin=(cols.start, rows.start)))
        return frames

    def in_region(self, name: str) -> np.ndarray:
        """Read-only (h, w[, 3]) float32 map ``name`` (``depth``, ``depth_confidence``, ``canonical``,
        ``canonical_confidence``) of the visible face at each pixel of ``region`` (``face_index``), NaN
        where none: the frame map's content at the cost of the faces' box. Computed once per name."""
        if name not in self._region_maps:
            if name not in REGION_MAP_NAMES:
                raise ValueError(f"no frame map {name!r}: one of {', '.join(REGION_MAP_NAMES)}")
            region = self.region
            if len(self.faces) == 1 and name in NAN_OFF_MASK_MAPS:
                # a lone face is the visible one on all its mask, and these maps are NaN off it already
                values = self.faces[0].over(name, region).astype(np.float32, copy=False)
            else:
                index = self.face_index[region]
                values = np.full(index.shape + ((3,) if name == "canonical" else ()), np.nan, dtype=np.float32)
                for i, face in enumerate(self.faces):
                    where = index == i
                    np.copyto(values, face.over(name, region), where=where[..., None] if values.ndim == 3 else where)
            values.flags.writeable = False
            self._region_maps[name] = values
        return self._region_maps[name]

    def over(self, name: str, region: tuple[slice, slice]) -> np.ndarray:
        """Read-only float32 frame map ``name`` (as ``in_region``) on ``region`` ``(rows, cols)`` of the image,
        NaN outside the faces' ``region``: the cached ``in_region`` map itself when ``region`` is that box,
        else made at ``region``'s size (never a whole-image map unless ``region`` is the image); ``region``
        as ``image_region`` reads it."""
        inside = self.in_region(name)
        region = image_region(region, self.image_size)
        if region == self.region:
            return inside
        values = placed(inside, self.region, region)
        values.flags.writeable = False
        return values

    def _merged(self, name: str) -> np.ndarray:
        """Read-only (H, W[, 3]) float32 frame map ``name``: ``over`` the whole image."""
        height, width = self.image_size
        return self.over(name, (slice(0, height), slice(0, width)))
