"""Point-cloud `.ply` files: what Blender, MeshLab, Open3D and CloudCompare open as coloured points.

One `vertex` element, binary little-endian: `x y z` as float32, then `red green blue` as uchar
(0–255) when the cloud is coloured. No faces. Writes are atomic (`pipelines.core.atomic`): a
reader sees the whole file or none of it.
"""

from __future__ import annotations

import os

import numpy as np
from plyfile import PlyData, PlyElement

from ..core.atomic import atomic_write

POINT_SUFFIX = ".ply"


def colours_to_uint8(colours: np.ndarray) -> np.ndarray:
    """RGB (N, 3) floats in [0, 1] → uint8 (N, 3), rounded, values outside clipped."""
    return np.clip(np.rint(np.asarray(colours, dtype=np.float64) * 255), 0, 255).astype(np.uint8)


def check_cloud(points: np.ndarray, colours: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """points (N, 3) and optional colours (N, 3) as float32 arrays, or ValueError naming the problem."""
    points = np.asarray(points, dtype=np.float32)
    if points.ndim != 2 or points.shape[1] != 3 or len(points) == 0:
        raise ValueError(f"expected points of shape (N >= 1, 3), got {points.shape}")
    if not np.isfinite(points).all():
        raise ValueError("the point cloud holds non-finite coordinates")
    if colours is not None:
        colours = np.asarray(colours, dtype=np.float32)
        if colours.shape != points.shape:
            raise ValueError(f"expected colours of shape {points.shape}, got {colours.shape}")
    return points, colours


def point_cloud_ply(points: np.ndarray, colours: np.ndarray | None = None) -> PlyData:
    """The PlyData of a cloud: points (N, 3), colours (N, 3) in [0, 1] or None."""
    points, colours = check_cloud(points, colours)
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if colours is not None:
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    vertex = np.empty(len(points), dtype=fields)
    for i, axis in enumerate("xyz"):
        vertex[axis] = points[:, i]
    if colours is not None:
        rgb = colours_to_uint8(colours)
        for i, channel in enumerate(("red", "green", "blue")):
            vertex[channel] = rgb[:, i]
    return PlyData([PlyElement.describe(vertex, "vertex")], text=False, byte_order="<")


def write_point_cloud(path: str | os.PathLike, points: np.ndarray, colours: np.ndarray | None = None) -> None:
    """Writes a cloud (points (N, 3), colours (N, 3) in [0, 1] or None) as a binary `.ply`, atomically."""
    data = point_cloud_ply(points, colours)
    atomic_write(path, lambda tmp: data.write(str(tmp)))


def read_point_cloud(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """(points (N, 3) float32, colours (N, 3) float32 in [0, 1] or None) from any point `.ply`
    (ASCII or binary, either byte order; colours read from uchar red/green/blue, or from float ones
    taken as already in [0, 1])."""
    data = PlyData.read(str(path))
    if "vertex" not in data:
        raise ValueError(f"{path}: no 'vertex' element; not a point-cloud .ply")
    v = data["vertex"].data
    names = set(v.dtype.names)
    if not {"x", "y", "z"} <= names:
        raise ValueError(f"{path}: vertices lack x, y, z")
    points = np.stack([np.asarray(v[a], dtype=np.float32) for a in "xyz"], axis=1)
    if not {"red", "green", "blue"} <= names:
        return points, None
    rgb = np.stack([np.asarray(v[c]) for c in ("red", "green", "blue")], axis=1)
    colours = rgb.astype(np.float32) / 255 if np.issubdtype(rgb.dtype, np.integer) else rgb.astype(np.float32)
    return points, colours
