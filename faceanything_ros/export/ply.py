"""Binary PLY point clouds (readable by MeshLab, CloudCompare, Open3D, Blender)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..geometry.pointcloud import PointCloud

_VERTEX_DTYPE = np.dtype([
    ("x", "<f4"), ("y", "<f4"), ("z", "<f4"),
    ("red", "u1"), ("green", "u1"), ("blue", "u1"),
    ("canonical_u", "<f4"), ("canonical_v", "<f4"), ("canonical_w", "<f4"),
    ("confidence", "<f4"),
])
_PLY_TYPES = {"<f4": "float", "u1": "uchar"}


def write_ply(path: str | Path, cloud: PointCloud) -> None:
    """Write a cloud as binary little-endian PLY: x, y, z (metres, optical frame), RGB,
    canonical u, v, w (NaN when absent) and confidence (NaN when absent)."""
    vertices = np.zeros(len(cloud), dtype=_VERTEX_DTYPE)
    for axis, name in enumerate("xyz"):
        vertices[name] = cloud.points[:, axis]
    for channel, name in enumerate(("red", "green", "blue")):
        vertices[name] = cloud.colors[:, channel]
    canonical = cloud.canonical if cloud.canonical is not None else np.full((len(cloud), 3), np.nan)
    for axis, name in enumerate(("canonical_u", "canonical_v", "canonical_w")):
        vertices[name] = canonical[:, axis]
    vertices["confidence"] = cloud.confidence if cloud.confidence is not None else np.nan
    properties = "".join(f"property {_PLY_TYPES[_VERTEX_DTYPE[n].str.replace('|', '')]} {n}\n"
                         for n in _VERTEX_DTYPE.names)
    header = f"ply\nformat binary_little_endian 1.0\nelement vertex {len(cloud)}\n{properties}end_header\n"
    with open(path, "wb") as stream:
        stream.write(header.encode("ascii"))
        stream.write(vertices.tobytes())


def read_ply(path: str | Path) -> np.ndarray:
    """Read a PLY written by ``write_ply`` -> structured array with the fields above."""
    data = Path(path).read_bytes()
    end = data.find(b"end_header\n")
    if not data.startswith(b"ply\n") or end < 0:
        raise ValueError(f"{path} is not a PLY file")
    header = data[:end].decode("ascii").splitlines()
    if "format binary_little_endian 1.0" not in header:
        raise ValueError(f"{path}: only binary little-endian PLY written by write_ply is supported")
    count = next(int(line.split()[2]) for line in header if line.startswith("element vertex"))
    body = data[end + len(b"end_header\n"):]
    if len(body) != count * _VERTEX_DTYPE.itemsize:
        raise ValueError(f"{path}: expected {count} vertices ({count * _VERTEX_DTYPE.itemsize} bytes), "
                         f"found {len(body)} bytes")
    return np.frombuffer(body, dtype=_VERTEX_DTYPE)
