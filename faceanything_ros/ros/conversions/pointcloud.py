"""``PointCloud`` <-> ``sensor_msgs/PointCloud2`` (unorganised, little-endian float32 fields)."""
from __future__ import annotations

from typing import Any

import numpy as np

from faceanything_ros.geometry.pointcloud import PointCloud

from .images import ImageConversionError, Types, message_with_bytes

# Every field is one float32; ``rgb`` holds 0x00RRGGBB reinterpreted as float32, as rviz expects.
POINT_FIELDS = ("x", "y", "z", "rgb", "canonical_u", "canonical_v", "canonical_w", "confidence")
POINT_STEP = 4 * len(POINT_FIELDS)  # bytes per point

# sensor_msgs/PointField datatype codes -> little-endian numpy dtypes
_DATATYPES = {1: "i1", 2: "u1", 3: "<i2", 4: "<u2", 5: "<i4", 6: "<u4", 7: "<f4", 8: "<f8"}


def point_cloud2(types: Types, header: Any, cloud: PointCloud) -> Any:
    """``(N, ...)`` ``PointCloud`` (metres, optical frame) -> ``sensor_msgs/PointCloud2`` with ``POINT_FIELDS``.

    ``height = 1``, ``width`` = points, ``point_step = 32``, ``row_step = 32 * width``. Missing
    canonical/confidence are NaN. ``is_dense`` is True when every point has finite x, y, z. A
    sparser cloud is sampled before unprojection (``Reconstruction.point_cloud(stride)``).
    """
    count = len(cloud)
    values = np.full((count, len(POINT_FIELDS)), np.nan, dtype="<f4")
    values[:, :3] = cloud.points
    colors = cloud.colors.astype(np.uint32)
    values[:, 3] = ((colors[:, 0] << 16) | (colors[:, 1] << 8) | colors[:, 2]).view(np.float32)
    if cloud.canonical is not None:
        values[:, 4:7] = cloud.canonical
    if cloud.confidence is not None:
        values[:, 7] = cloud.confidence
    field_type = types["sensor_msgs/msg/PointField"]
    fields = [field_type(name=name, offset=4 * i, datatype=field_type.FLOAT32, count=1)
              for i, name in enumerate(POINT_FIELDS)]
    return message_with_bytes(
        types["sensor_msgs/msg/PointCloud2"], values, header=header, height=1, width=count, fields=fields,
        is_bigendian=False, point_step=POINT_STEP, row_step=POINT_STEP * count,
        is_dense=bool(np.isfinite(values[:, :3]).all()),
    )


def point_cloud2_to_arrays(msg: Any) -> dict[str, np.ndarray]:
    """``sensor_msgs/PointCloud2`` -> ``{field name: (N,) array}`` in the fields' dtypes (native order).

    ``N = height * width``. A float32 ``rgb`` field is also unpacked into ``"colors"``: ``(N, 3)``
    uint8 RGB. Raises ``ImageConversionError("bad_point_cloud", ...)`` on inconsistent sizes,
    big-endian data, fields beyond ``point_step`` or unknown datatypes.
    """
    height, width, point_step = int(msg.height), int(msg.width), int(msg.point_step)
    if msg.is_bigendian:
        raise ImageConversionError("bad_point_cloud", "big-endian point clouds are not supported")
    if width and point_step * width > int(msg.row_step):
        raise ImageConversionError("bad_point_cloud", f"row_step {msg.row_step} < point_step {point_step} x width {width}")
    data = np.frombuffer(msg.data, dtype=np.uint8)
    if data.size != int(msg.row_step) * height:
        raise ImageConversionError("bad_point_cloud", f"data has {data.size} bytes; row_step {msg.row_step} x "
                                   f"height {height} = {int(msg.row_step) * height}")
    names, formats, offsets = [], [], []
    for field in msg.fields:
        if int(field.datatype) not in _DATATYPES:
            raise ImageConversionError("bad_point_cloud", f"field {field.name!r} has unknown datatype {field.datatype}")
        names.append(str(field.name))
        formats.append((_DATATYPES[int(field.datatype)], (int(field.count),)) if field.count > 1
                       else _DATATYPES[int(field.datatype)])
        offsets.append(int(field.offset))
    try:
        dtype = np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": point_step})
    except ValueError as error:
        raise ImageConversionError("bad_point_cloud", f"fields do not fit point_step {point_step}: {error}") from None
    rows = data.reshape(height, -1)[:, :point_step * width]
    points = np.ascontiguousarray(rows).view(dtype).reshape(-1)
    arrays = {name: points[name].astype(points.dtype[name].newbyteorder("=")) for name in names}
    if "rgb" in arrays and arrays["rgb"].dtype == np.float32:
        packed = arrays["rgb"].view(np.uint32)
        arrays["colors"] = np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], axis=1).astype(np.uint8)
    return arrays
