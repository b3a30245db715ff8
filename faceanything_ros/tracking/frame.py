"""One frame's network outputs as the canonical tracker needs them."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from faceanything_ros.geometry.camera import validate_intrinsics
from faceanything_ros.tracking.visibility import DEPTH_WINDOW

# Pixels kept around a face's region in its TrackingFrame: the tracker's widest look around a pixel
# (the depth-step window) then sees what it would see in the whole image, so the tracks are the same.
REGION_MARGIN = DEPTH_WINDOW


@dataclass
class TrackingFrame:
    """Per-pixel canonical map of one frame (all maps share one ``(H, W)`` pixel grid).

    canonical: ``(H, W, 3)`` float32 canonical face coordinate in ``[-1, 1]^3``.
    confidence: ``(H, W)`` float32 confidence of the canonical map (the network's is >= 1, higher =
        more certain; NaN = none).
    mask: ``(H, W)`` bool face mask.
    depth: ``(H, W)`` float32 z-depth in metres (optical frame; NaN = none), or None.
    intrinsics: ``(3, 3)`` float64 pinhole ``K`` of this pixel grid, or None.
    origin: ``(u, v)`` image pixel of the grid's pixel ``(0, 0)``: a frame may hold only a region of
        its image (the face's), so the work scales with the face, not the image. The tracker takes
        and reports image pixels; ``intrinsics`` are the region's own (principal point moved by ``-origin``).
    Arrays are converted to these dtypes on construction (C-contiguous); shapes are checked (``ValueError``).
    """

    canonical: np.ndarray
    confidence: np.ndarray
    mask: np.ndarray
    depth: np.ndarray | None = None
    intrinsics: np.ndarray | None = None
    origin: tuple[int, int] = (0, 0)
    _searchable: dict[float, np.ndarray] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.canonical = np.ascontiguousarray(self.canonical, dtype=np.float32)
        if self.canonical.ndim != 3 or self.canonical.shape[2] != 3 or 0 in self.canonical.shape:
            raise ValueError(f"canonical map must have shape (H, W, 3) with H, W >= 1, got {self.canonical.shape}")
        grid = self.canonical.shape[:2]
        self.confidence = _map(self.confidence, "confidence", grid, np.float32)
        self.mask = np.asarray(self.mask)
        if self.mask.dtype != np.bool_ or self.mask.shape != grid:
            raise ValueError(f"mask must be a bool array of shape {grid}, got {self.mask.dtype} {self.mask.shape}")
        if self.depth is not None:
            self.depth = _map(self.depth, "depth", grid, np.float32)
        if self.intrinsics is not None:
            self.intrinsics = validate_intrinsics(self.intrinsics, "TrackingFrame.intrinsics")
        self.origin = (int(self.origin[0]), int(self.origin[1]))

    @property
    def height(self) -> int:
        """Rows of the pixel grid."""
        return self.canonical.shape[0]

    @property
    def width(self) -> int:
        """Columns of the pixel grid."""
        return self.canonical.shape[1]

    def to_grid(self, pixels: np.ndarray) -> np.ndarray:
        """``(N, 2)`` image pixels ``(u, v)`` -> pixels of this frame's grid (minus ``origin``)."""
        return pixels - np.asarray(self.origin, dtype=pixels.dtype)

    def to_image(self, pixels: np.ndarray) -> np.ndarray:
        """``(N, 2)`` pixels ``(u, v)`` of this frame's grid -> image pixels (plus ``origin``)."""
        return pixels + np.asarray(self.origin, dtype=pixels.dtype)

    def searchable(self, min_confidence: float) -> np.ndarray:
        """``(H, W)`` bool (read-only, computed once per threshold): face pixels with confidence >=
        ``min_confidence`` and a finite canonical value."""
        if min_confidence not in self._searchable:
            # Per channel: ~30x faster than isfinite(...).all(axis=2) on a 720p map.
            finite = [np.isfinite(self.canonical[..., axis]) for axis in range(3)]
            searchable = self.mask & (self.confidence >= min_confidence) & finite[0] & finite[1] & finite[2]
            searchable.flags.writeable = False
            self._searchable[min_confidence] = searchable
        return self._searchable[min_confidence]


def grown_region(region: tuple[slice, slice], image_size: tuple[int, int], margin: int = REGION_MARGIN
                 ) -> tuple[slice, slice]:
    """``(rows, cols)`` slices grown by ``margin`` pixels on every side, clipped to the ``(H, W)`` image;
    an empty region becomes the image's first pixel (a frame has at least one)."""
    rows, cols = region
    if rows.stop <= rows.start or cols.stop <= cols.start:
        return slice(0, 1), slice(0, 1)
    height, width = image_size
    return (slice(max(rows.start - margin, 0), min(rows.stop + margin, height)),
            slice(max(cols.start - margin, 0), min(cols.stop + margin, width)))


def _map(values: np.ndarray, name: str, shape: tuple[int, int], dtype: type) -> np.ndarray:
    """``values`` as a ``dtype`` array of ``shape``, else ``ValueError`` naming ``name``."""
    array = np.ascontiguousarray(values, dtype=dtype)
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {shape} (the canonical map's grid), got {array.shape}")
    return array
