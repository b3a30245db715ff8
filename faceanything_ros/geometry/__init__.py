"""Camera geometry: intrinsics, per-pixel rays, (un)projection, sampling and point clouds.

Frame: camera optical frame (x right, y down, z forward), metres; pixel ``(u, v)`` with the
centre of pixel (row 0, col 0) at ``(0, 0)``.
"""
from faceanything_ros.geometry.camera import (
    crop_resize_intrinsics,
    intrinsics_from_fov,
    intrinsics_matrix,
    pixel_grid,
    uncrop_intrinsics,
    validate_intrinsics,
)
from faceanything_ros.geometry.pointcloud import PointCloud, mask_region, point_cloud_from_depth
from faceanything_ros.geometry.projection import (
    project_points,
    sample_bilinear,
    sample_bilinear_or_nearest,
    sample_nearest,
    unproject_depth,
    unproject_pixels,
)
from faceanything_ros.geometry.rays import rays_from_intrinsics

__all__ = [
    "PointCloud",
    "crop_resize_intrinsics",
    "intrinsics_from_fov",
    "intrinsics_matrix",
    "mask_region",
    "pixel_grid",
    "point_cloud_from_depth",
    "project_points",
    "rays_from_intrinsics",
    "sample_bilinear",
    "sample_bilinear_or_nearest",
    "sample_nearest",
    "uncrop_intrinsics",
    "unproject_depth",
    "unproject_pixels",
    "validate_intrinsics",
]
