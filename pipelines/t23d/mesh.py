"""Meshes from generated point clouds: a solid occupancy field, marching cubes, vertex colours from
the nearest points, and `.glb` / `.obj` writers that keep those colours.

A generated cloud is a surface sample (2048 points by default), too sparse at 32³ for every
surface voxel to hold a point. So the field is built as a morphological closing:

1. splat: the voxels of [-1, 1]³ holding a point (`world.shapes3d.points_to_occupancy`), padded;
2. close: dilate by d voxels (26-neighbourhood) until the shell is watertight, i.e. filling its
   inside (`scipy.ndimage.binary_fill_holes`) adds voxels; d = 1, 2, 3 are tried in turn;
3. fill the inside, erode by the same d (back to the splatted size), keep the splatted voxels;
4. smooth with a Gaussian (σ = 0.8 voxel) and run marching cubes (scikit-image) at level 0.6:
   the surface voxels reach about half a voxel beyond the true surface, and 0.6 rather than 0.5
   moves the isosurface back in (volumes of world shapes within ~5 % of their exact occupancy).

When no d closes the shell (an open or very noisy cloud), the dilated shell itself is meshed: a
thick surface rather than nothing. Vertices come out in the cloud's frame ([-1, 1]³), faces wound
outward (positive volume).
"""

from __future__ import annotations

import os

import numpy as np
import trimesh
from scipy import ndimage
from scipy.spatial import cKDTree
from skimage import measure

from world.shapes3d import points_to_occupancy

from ..core.atomic import atomic_write
from .files import check_cloud, colours_to_uint8

MESH_SUFFIXES = (".glb", ".obj")
GRID = 32
PAD = 6  # empty voxels around the grid: room for the dilation and the blur, so the surface closes
MAX_DILATION = 3
SIGMA, LEVEL = 0.8, 0.6
_CUBE = ndimage.generate_binary_structure(3, 3)  # the 26-neighbourhood


def solid_field(points: np.ndarray, grid: int = GRID) -> np.ndarray:
    """float32 (grid + 2·PAD)³ field in [0, 1], indexed [x, y, z]: the closed, filled, smoothed
    occupancy of a surface cloud (N, 3) in [-1, 1]³ (steps 1–4 of the module docstring)."""
    splat = np.pad(points_to_occupancy(points, grid), PAD)
    solid = None
    for d in range(1, MAX_DILATION + 1):
        shell = ndimage.binary_dilation(splat, _CUBE, iterations=d)
        filled = ndimage.binary_fill_holes(shell)
        if filled.sum() - shell.sum() >= max(8, 0.02 * shell.sum()):  # it has an inside: closed
            solid = ndimage.binary_erosion(filled, _CUBE, iterations=d, border_value=0) | splat
            break
    if solid is None:
        solid = ndimage.binary_dilation(splat, _CUBE)
    return ndimage.gaussian_filter(solid.astype(np.float32), SIGMA)


def mesh_from_points(points: np.ndarray, colours: np.ndarray | None = None, grid: int = GRID) -> trimesh.Trimesh:
    """A closed triangle mesh of the solid a surface cloud bounds.

    points (N, 3) in [-1, 1]³ (points outside are clamped to the border voxels); colours (N, 3) in
    [0, 1] or None. Each vertex takes the colour of its nearest point (RGBA uint8 vertex colours);
    without colours the mesh has none. `grid` voxels per side (32: the world's occupancy grid).
    """
    points, colours = check_cloud(points, colours)
    if grid < 4:
        raise ValueError(f"grid must be at least 4 voxels per side, got {grid}")
    field = solid_field(points, grid)
    if field.max() <= LEVEL:
        raise ValueError("the point cloud bounds no solid to mesh")
    # marching cubes puts the surface where the field falls below LEVEL; negate so faces wind outward
    verts, faces, _, _ = measure.marching_cubes(-field, -LEVEL)
    verts = (verts - PAD + 0.5) / grid * 2 - 1  # voxel index → [-1, 1]
    vertex_colors = None
    if colours is not None:
        _, nearest = cKDTree(points).query(verts)
        rgb = colours_to_uint8(colours[nearest])
        vertex_colors = np.concatenate([rgb, np.full((len(rgb), 1), 255, np.uint8)], axis=1)  # (V, 4)
    return trimesh.Trimesh(vertices=verts.astype(np.float32), faces=faces, vertex_colors=vertex_colors,
                           process=False)


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    """sRGB-encoded values in [0, 1] → linear light (the IEC 61966-2-1 curve)."""
    c = np.asarray(c, dtype=np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(c: np.ndarray) -> np.ndarray:
    """Linear light in [0, 1] → sRGB-encoded values (the inverse of `srgb_to_linear`)."""
    c = np.asarray(c, dtype=np.float64)
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * np.clip(c, 0, None) ** (1 / 2.4) - 0.055)


def mesh_bytes(mesh: trimesh.Trimesh, suffix: str) -> bytes:
    """The mesh as `.glb` or `.obj`.

    Colours: the mesh's vertex colours are sRGB (as the world's RGB and the `.ply` are). glTF
    defines COLOR_0 as linear, so the `.glb` stores them linearised (uint8: within ~2/255 of the
    sRGB value once a viewer or Blender encodes them back); `.obj` has no colour space and stores
    them as they are, `v x y z r g b` in [0, 1], which Blender, MeshLab and trimesh read back.
    """
    suffix = suffix.lower()
    if suffix == ".glb":
        if mesh.visual.kind == "vertex":
            mesh = mesh.copy()
            rgba = np.asarray(mesh.visual.vertex_colors)
            linear = colours_to_uint8(srgb_to_linear(rgba[:, :3] / 255))
            mesh.visual.vertex_colors = np.concatenate([linear, rgba[:, 3:]], axis=1)
        return mesh.export(file_type="glb")
    if suffix == ".obj":
        return mesh.export(file_type="obj", include_color=True, include_normals=False,
                           header="ditkit text-to-3D mesh").encode("utf-8")
    raise ValueError(f"unknown mesh suffix {suffix!r}; expected one of {', '.join(MESH_SUFFIXES)}")


def write_mesh(path: str | os.PathLike, mesh: trimesh.Trimesh) -> None:
    """Writes `mesh` as `.glb` or `.obj` (by the path's suffix), atomically."""
    data = mesh_bytes(mesh, os.path.splitext(str(path))[1])
    atomic_write(path, lambda tmp: tmp.write_bytes(data))
