"""Square face crops, their intrinsics, and pasting per-pixel crop maps back into the full image.

One affine map links the two pixel grids, the one of ``geometry.camera.crop_resize_intrinsics``:
an image pixel centre ``u`` lands at ``u_crop = (u - x0 + 0.5) * scale - 0.5`` in the crop
(same for ``v`` with ``y0``), where ``(x0, y0)`` is the crop's top-left corner in pixel-*edge*
coordinates (``0`` = the image's left/top border, so an integer ``x0`` at ``scale = 1`` is the
first cropped column) and ``scale`` is crop pixels per image pixel. Resampling uses OpenCV,
whose bilinear interpolation resolves positions to 1/32 pixel.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from faceanything_ros.geometry.camera import crop_resize_intrinsics, uncrop_intrinsics
from faceanything_ros.geometry.pointcloud import mask_region
from faceanything_ros.io.face_detector import FaceBox
from faceanything_ros.io.validation import validate_rgb

_INTERPOLATIONS = {"linear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST}


@dataclass(frozen=True)
class CropBox:
    """A square crop of ``side`` image pixels resampled to ``output_size x output_size`` pixels.

    ``x0, y0``: top-left corner in image pixel-edge coordinates (see module docstring; may be
    negative or beyond the image); ``side``: crop side in image pixels (> 0); ``output_size``:
    crop side in crop pixels (>= 1).
    """

    x0: float
    y0: float
    side: float
    output_size: int

    def __post_init__(self) -> None:
        if not (math.isfinite(self.x0) and math.isfinite(self.y0) and math.isfinite(self.side) and self.side > 0):
            raise ValueError(f"CropBox needs finite x0, y0 and side > 0, got x0={self.x0}, y0={self.y0}, side={self.side}")
        if self.output_size < 1:
            raise ValueError(f"CropBox.output_size must be >= 1, got {self.output_size}")

    @property
    def scale(self) -> float:
        """Crop pixels per image pixel, ``output_size / side``."""
        return self.output_size / self.side

    @classmethod
    def centred(cls, centre_u: float, centre_v: float, side: float, output_size: int) -> "CropBox":
        """The square box of ``side`` image pixels centred on pixel coordinates ``(centre_u, centre_v)``."""
        return cls(x0=centre_u - side / 2.0 + 0.5, y0=centre_v - side / 2.0 + 0.5, side=side, output_size=output_size)

    def intrinsics(self, intrinsics: np.ndarray) -> np.ndarray:
        """``(..., 3, 3)`` float64 intrinsics of the crop, given the image's ``(..., 3, 3)`` intrinsics (pixels)."""
        return crop_resize_intrinsics(intrinsics, self.x0, self.y0, self.scale)

    def uncrop_intrinsics(self, crop_intrinsics: np.ndarray) -> np.ndarray:
        """``(3, 3)`` float64 image intrinsics from the crop's ``(3, 3)`` intrinsics (inverse of ``intrinsics``)."""
        return uncrop_intrinsics(crop_intrinsics, self.x0, self.y0, self.scale)

    def crop_pixels_to_image(self, pixels: np.ndarray) -> np.ndarray:
        """``(N, 2)`` crop pixel coordinates ``(u, v)`` -> ``(N, 2)`` float64 image pixel coordinates."""
        return (_pixels(pixels) + 0.5) / self.scale - 0.5 + np.array([self.x0, self.y0])

    def image_pixels_to_crop(self, pixels: np.ndarray) -> np.ndarray:
        """``(N, 2)`` image pixel coordinates ``(u, v)`` -> ``(N, 2)`` float64 crop pixel coordinates."""
        return (_pixels(pixels) - np.array([self.x0, self.y0]) + 0.5) * self.scale - 0.5


def crop_box_for_face(face: FaceBox, scale: float, output_size: int) -> CropBox:
    """Square ``CropBox`` centred on ``face``'s box centre with side ``scale * max(width, height)``.

    ``scale`` (> 0) is crop side / face box side (``DetectorConfig.crop_scale``); ``output_size`` is
    the crop's side in pixels (the model's ``image_size``). The box may extend beyond the image.
    """
    if not scale > 0:
        raise ValueError(f"crop scale must be > 0, got {scale}")
    return CropBox.centred(*face.center, scale * max(face.width, face.height), output_size)


def crop_image(rgb: np.ndarray, box: CropBox) -> np.ndarray:
    """The ``(S, S, 3)`` uint8 RGB crop ``box`` of the ``(H, W, 3)`` uint8 image ``rgb``, ``S = output_size``.

    Crop pixels whose source position lies outside the image are 0. Bilinear resampling; when the
    crop shrinks the image by 2x or more (``scale <= 0.5``) the source region is first averaged
    over ``floor(1 / scale)``-pixel blocks so that the crop is not aliased.
    """
    rgb = validate_rgb(rgb)
    height, width = rgb.shape[:2]
    size = box.output_size
    crop = np.zeros((size, size, 3), dtype=np.uint8)
    cols = _footprint(width, box.x0, box.scale, size)
    rows = _footprint(height, box.y0, box.scale, size)
    if cols.start >= cols.stop or rows.start >= rows.stop:
        return crop
    factor = max(1, math.floor(1.0 / box.scale))
    col0, row0 = math.floor(box.x0) - factor, math.floor(box.y0) - factor
    span = factor * (math.ceil((box.side + 2 * factor + 1) / factor))
    region = _region_with_border(rgb, row0, col0, span)
    if factor > 1:
        region = cv2.resize(region, (span // factor, span // factor), interpolation=cv2.INTER_AREA)
    # crop centre u_c -> image centre u = (u_c + 0.5) / scale - 0.5 + x0 -> region centre u - col0
    # -> block-averaged centre (u - col0 + 0.5) / factor - 0.5
    step = 1.0 / (box.scale * factor)
    to_region = np.array(
        [[step, 0.0, (0.5 / box.scale + box.x0 - col0) / factor - 0.5],
         [0.0, step, (0.5 / box.scale + box.y0 - row0) / factor - 0.5]]
    )
    warped = cv2.warpAffine(
        region, to_region, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE
    )
    crop[rows, cols] = warped[rows, cols]
    return crop


def paste_back(
    crop_map: np.ndarray,
    box: CropBox,
    image_height: int,
    image_width: int,
    fill: float | bool | None = None,
    interpolation: str = "linear",
    region: tuple[slice, slice] | None = None,
) -> np.ndarray:
    """Resample a per-pixel crop map ``(S, S)`` or ``(S, S, C)`` into the full ``(H, W)`` / ``(H, W, C)`` image,
    or into its ``region`` only (``(rows, cols)`` slices of the image, e.g. ``crop_footprint``: the
    result is then ``(h, w[, C])``, the region's size, and costs what the region costs).

    Inverse of ``crop_image``'s warp: image pixel ``u`` reads the crop at
    ``u_crop = (u - x0 + 0.5) * scale - 0.5``. Image pixels whose centre lies outside the crop's
    footprint (``[x0 - 0.5, x0 + side - 0.5)`` in ``u``) get ``fill``; inside, the edge crop pixels
    extend to the footprint border. ``interpolation``: ``"linear"`` (bilinear; a NaN spreads to
    the pixels that read it) or ``"nearest"``. ``paste_surface`` pastes a face's depth and canonical
    coordinates from its face pixels only.

    dtypes: float maps (float16 comes back as float32, float32/float64 keep theirs; ``fill``
    defaults to NaN), uint8 maps (``fill`` defaults to 0) and bool masks (``fill`` defaults to
    False): ``"nearest"`` copies mask values, ``"linear"`` interpolates the mask as 0/1 and
    thresholds at 0.5, which gives smoother outlines.
    """
    data = np.asarray(crop_map)
    if data.ndim not in (2, 3) or data.shape[:2] != (box.output_size,) * 2:
        raise ValueError(f"crop_map must have shape ({box.output_size}, {box.output_size}) or "
                         f"({box.output_size}, {box.output_size}, C) for this box, got {data.shape}")
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {sorted(_INTERPOLATIONS)}, got {interpolation!r}")
    is_mask = data.dtype == np.bool_
    if is_mask:
        source = data.astype(np.float32 if interpolation == "linear" else np.uint8)
        out_dtype, default_fill = np.dtype(np.bool_), False
    elif data.dtype == np.uint8 or data.dtype in (np.float32, np.float64):
        source, out_dtype = data, data.dtype
        default_fill = 0 if data.dtype == np.uint8 else np.nan
    elif data.dtype == np.float16:
        source, out_dtype, default_fill = data.astype(np.float32), np.dtype(np.float32), np.nan
    else:
        raise TypeError(f"crop_map dtype {data.dtype} is not supported; expected float16/32/64, uint8 or bool")
    warp = _RegionWarp(box, image_height, image_width, region, interpolation)
    fill = default_fill if fill is None else fill
    if not warp.reads_crop:
        return np.full(warp.shape + data.shape[2:], fill, dtype=out_dtype)
    warped = warp(source)
    return warp.place(warped >= 0.5 if is_mask else warped, fill)


def paste_surface(
    depth: np.ndarray,
    canonical: np.ndarray,
    valid: np.ndarray,
    box: CropBox,
    image_height: int,
    image_width: int,
    region: tuple[slice, slice] | None = None,
    face: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A face's crop depth ``(S, S)`` and canonical coordinates ``(S, S, 3)`` pasted into the image (or its
    ``region``, as ``paste_back``) from its ``valid`` crop pixels only (``(S, S)`` bool, the face mask):
    the bilinear weights are normalised over the valid neighbours, so every pasted value is a convex
    combination of face values and no off-face value reaches the image (a crop pixel with a non-finite
    depth or canonical value is not valid).

    face: ``(h, w)`` bool image pixels of the face (of ``region``), or None for the pasted ``valid``
    map >= 0.5 (``paste_back``'s linear mask). Returns ``(mask (h, w) bool, depth (h, w), canonical
    (h, w, 3))``, float32, NaN off ``mask``: the face pixels that read at least one valid crop pixel.
    """
    size = box.output_size
    depth, canonical, valid = np.asarray(depth), np.asarray(canonical), np.asarray(valid)
    if depth.shape != (size, size) or canonical.shape != (size, size, 3):
        raise ValueError(f"depth and canonical must have shapes ({size}, {size}) and ({size}, {size}, 3) for this "
                         f"box, got {depth.shape} and {canonical.shape}")
    if valid.shape != (size, size) or valid.dtype != np.bool_:
        raise ValueError(f"valid must be a bool ({size}, {size}) map for this box, got {valid.dtype} {valid.shape}")
    warp = _RegionWarp(box, image_height, image_width, region, "linear")
    if face is not None:
        face = np.asarray(face)
        if face.shape != warp.shape or face.dtype != np.bool_:
            raise ValueError(f"face must be the region's {warp.shape} bool map, got {face.dtype} {face.shape}")
    if not warp.reads_crop:
        return (np.zeros(warp.shape, dtype=bool), np.full(warp.shape, np.nan, dtype=np.float32),
                np.full(warp.shape + (3,), np.nan, dtype=np.float32))
    valid = valid & np.isfinite(depth) & np.isfinite(canonical[..., 0]) & np.isfinite(canonical[..., 1]) \
        & np.isfinite(canonical[..., 2])
    weight = warp(valid.astype(np.float32))
    # cv2's bilinear weights are multiples of 1/1024: a positive one has a finite reciprocal
    keep = weight >= 0.5 if face is None else face[warp.inside] & (weight > np.finfo(np.float32).tiny)
    # values / weight as values * (1 / weight): one division per pixel, NaN off the face; channel planes
    # (contiguous products, merged once) cost a third of what an (h, w, 3) map times an (h, w, 1) one does
    reciprocal = np.divide(np.float32(1.0), weight, out=np.full_like(weight, np.nan), where=keep)
    planes = [warp(np.where(valid, plane, 0).astype(np.float32)) * reciprocal
              for plane in (depth, *np.moveaxis(canonical, -1, 0))]
    return warp.place(keep, False), warp.place(planes[0], np.nan), warp.place(cv2.merge(planes[1:]), np.nan)


class _RegionWarp:
    """``paste_back``'s resampling of crop maps into an image region: ``shape`` (h, w) of the region,
    ``inside`` its slices that the crop's footprint covers (``reads_crop``: any), and the call warps a
    crop map onto ``inside``."""

    def __init__(self, box: CropBox, image_height: int, image_width: int, region: tuple[slice, slice] | None,
                 interpolation: str) -> None:
        if image_height < 1 or image_width < 1:
            raise ValueError(f"image size must be >= 1 pixel, got {image_height}x{image_width} (HxW)")
        out_rows, out_cols = region if region is not None else (slice(0, image_height), slice(0, image_width))
        if not (0 <= out_rows.start <= out_rows.stop <= image_height
                and 0 <= out_cols.start <= out_cols.stop <= image_width):
            raise ValueError(f"region {region} is not inside the {image_width}x{image_height} image")
        self.shape = (out_rows.stop - out_rows.start, out_cols.stop - out_cols.start)
        footprint_rows, footprint_cols = crop_footprint(box, image_height, image_width)
        rows = slice(max(footprint_rows.start, out_rows.start), min(footprint_rows.stop, out_rows.stop))
        cols = slice(max(footprint_cols.start, out_cols.start), min(footprint_cols.stop, out_cols.stop))
        self.reads_crop = rows.start < rows.stop and cols.start < cols.stop
        self.inside = (slice(rows.start - out_rows.start, rows.stop - out_rows.start),
                       slice(cols.start - out_cols.start, cols.stop - out_cols.start))
        self.size = (cols.stop - cols.start, rows.stop - rows.start)
        offset_u, offset_v = box.image_pixels_to_crop(np.array([[cols.start, rows.start]], dtype=np.float64))[0]
        self.to_crop = np.array([[box.scale, 0.0, offset_u], [0.0, box.scale, offset_v]])
        self.flags = _INTERPOLATIONS[interpolation] | cv2.WARP_INVERSE_MAP

    def __call__(self, crop_map: np.ndarray) -> np.ndarray:
        warped = cv2.warpAffine(crop_map, self.to_crop, self.size, flags=self.flags, borderMode=cv2.BORDER_REPLICATE)
        return warped.reshape(self.size[::-1] + crop_map.shape[2:])

    def place(self, part: np.ndarray, fill: float | bool) -> np.ndarray:
        """``part`` (a map of ``inside``) as a map of the whole region, ``fill`` elsewhere (``part`` itself
        when ``inside`` is the whole region: a lone face's region lies inside its crop's footprint)."""
        if part.shape[:2] == self.shape:
            return part
        whole = np.full(self.shape + part.shape[2:], fill, dtype=part.dtype)
        whole[self.inside] = part
        return whole


def crop_footprint(box: CropBox, image_height: int, image_width: int) -> tuple[slice, slice]:
    """``(rows, cols)`` of the ``H x W`` image pixels whose centre lies inside the crop's footprint (what
    ``paste_back`` can fill), clipped to the image (empty slices when the crop lies outside it)."""
    # crop edge coordinate c = (e - x0) * scale, i.e. the crop grid seen from the image grid
    return (_footprint(box.output_size, -box.y0 * box.scale, 1.0 / box.scale, image_height),
            _footprint(box.output_size, -box.x0 * box.scale, 1.0 / box.scale, image_width))


def crop_pixels_footprint(box: CropBox, pixels: np.ndarray, image_height: int, image_width: int
                          ) -> tuple[slice, slice]:
    """``(rows, cols)`` of the ``H x W`` image pixels whose ``paste_back`` can read a crop pixel of
    ``pixels`` (``(S, S)`` bool): the ``crop_footprint`` cut to the box of those crop pixels grown by
    one crop pixel (a bilinear read's neighbours). All of the footprint when ``pixels`` has none."""
    footprint = crop_footprint(box, image_height, image_width)
    crop_rows, crop_cols = mask_region(pixels)
    if crop_rows.stop == crop_rows.start:
        return footprint
    (u0, v0), (u1, v1) = box.crop_pixels_to_image(np.array(
        [[crop_cols.start - 1, crop_rows.start - 1], [crop_cols.stop, crop_rows.stop]], dtype=np.float64))
    return _cut(footprint[0], math.floor(v0), math.ceil(v1) + 1), _cut(footprint[1], math.floor(u0), math.ceil(u1) + 1)


def _cut(bounds: slice, start: int, stop: int) -> slice:
    """``start:stop`` clipped to ``bounds`` (empty at its edge when they do not overlap)."""
    return slice(min(max(start, bounds.start), bounds.stop), max(min(stop, bounds.stop), bounds.start))


def _footprint(source_size: int, offset: float, scale: float, target_size: int) -> slice:
    """Target pixels whose centre lies inside a source grid mapped by ``t = (s - offset) * scale``.

    ``s``/``t`` are pixel-edge coordinates of a source grid of ``source_size`` pixels and a target
    grid of ``target_size`` pixels; the source spans ``t`` in ``[-offset * scale,
    (source_size - offset) * scale)``. Returns the slice of target indices (clipped to the grid).
    """
    low = math.ceil(-offset * scale - 0.5)
    high = math.ceil((source_size - offset) * scale - 0.5)
    return slice(min(max(low, 0), target_size), min(max(high, 0), target_size))


def _region_with_border(rgb: np.ndarray, row0: int, col0: int, span: int) -> np.ndarray:
    """The ``(span, span, 3)`` square of ``rgb`` from ``(row0, col0)``, edge pixels replicated outside.

    The square must overlap the image.
    """
    height, width = rgb.shape[:2]
    top, left = max(row0, 0), max(col0, 0)
    bottom, right = min(row0 + span, height), min(col0 + span, width)
    inside = rgb[top:bottom, left:right]
    return cv2.copyMakeBorder(
        inside, top - row0, row0 + span - bottom, left - col0, col0 + span - right, cv2.BORDER_REPLICATE
    )


def _pixels(pixels: np.ndarray) -> np.ndarray:
    points = np.asarray(pixels, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"pixels must have shape (N, 2) as (u, v), got {points.shape}")
    return points
