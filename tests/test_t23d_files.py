"""Text-to-3D files: point-cloud `.ply` round trips, and meshes from world clouds that are closed,
of the right volume, and keep their colours through `.glb` and `.obj`."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import trimesh
from plyfile import PlyData

from pipelines.t23d.files import read_point_cloud, write_point_cloud
from pipelines.t23d.mesh import linear_to_srgb, mesh_bytes, mesh_from_points, srgb_to_linear, write_mesh
from world.shapes3d import SHAPES3D, Shape3DSpec, colour_rgb, occupancy, sample_shape3d


def test_ply_round_trip_with_and_without_colour(tmp_path):
    sample = sample_shape3d("a wide green torus", 4)
    path = tmp_path / "torus.ply"
    write_point_cloud(path, sample.points, sample.colours)
    data = PlyData.read(str(path))
    assert data.byte_order == "<" and not data.text
    assert [p.name for p in data["vertex"].properties] == ["x", "y", "z", "red", "green", "blue"]
    assert data["vertex"].data.dtype["x"] == np.dtype("<f4") and data["vertex"].data.dtype["red"] == np.uint8
    points, colours = read_point_cloud(path)
    assert np.array_equal(points, sample.points)
    assert np.abs(colours - sample.colours).max() <= 0.5 / 255 + 1e-7
    write_point_cloud(path, sample.points)  # replaces it, uncoloured
    points, colours = read_point_cloud(path)
    assert colours is None and np.array_equal(points, sample.points)
    assert [p.name for p in PlyData.read(str(path))["vertex"].properties] == ["x", "y", "z"]
    assert [f.name for f in tmp_path.iterdir()] == ["torus.ply"]  # no temp file left beside it
    with pytest.raises(ValueError, match="shape"):
        write_point_cloud(tmp_path / "bad.ply", np.zeros((4, 2)))
    with pytest.raises(ValueError, match="non-finite"):
        write_point_cloud(tmp_path / "bad.ply", np.full((4, 3), np.nan))


@pytest.mark.parametrize("shape", SHAPES3D)
def test_mesh_of_a_world_shape_is_closed_and_has_the_solids_volume(shape):
    for proportion in (None, "tall"):
        sample = sample_shape3d(Shape3DSpec(shape, proportion), 7)
        mesh = mesh_from_points(sample.points)
        assert mesh.is_watertight and mesh.volume > 0  # closed, faces wound outward
        exact = occupancy(shape, proportion, grid=128).sum() * (2 / 128) ** 3
        assert mesh.volume == pytest.approx(exact, rel=0.1), (shape, proportion)
        assert np.abs(mesh.vertices).max() <= 1.05
        assert mesh.visual.kind is None  # no colours asked, none made


def _glb_json(data: bytes) -> dict:
    length = struct.unpack("<I", data[12:16])[0]
    return json.loads(data[20:20 + length])


def test_mesh_colours_survive_glb_and_obj(tmp_path):
    sample = sample_shape3d("a tall red cone", 2)
    mesh = mesh_from_points(sample.points, sample.colours)
    red = np.append(np.rint(colour_rgb("red") * 255), 255)
    assert np.all(mesh.visual.vertex_colors == red)
    gltf = _glb_json(mesh_bytes(mesh, ".glb"))
    assert "COLOR_0" in gltf["meshes"][0]["primitives"][0]["attributes"]
    for suffix in (".glb", ".obj"):
        path = tmp_path / f"cone{suffix}"
        write_mesh(path, mesh)
        back = trimesh.load(path, force="mesh", process=False)
        assert len(back.vertices) == len(mesh.vertices) and len(back.faces) == len(mesh.faces)
        assert np.allclose(back.vertices, mesh.vertices, atol=1e-6)
        assert back.visual.kind == "vertex", suffix
        rgb = back.visual.vertex_colors[:, :3] / 255
        if suffix == ".glb":  # glTF's COLOR_0 is linear: stored linearised, within 2/255 once encoded back
            assert np.allclose(rgb, np.rint(srgb_to_linear(red[:3] / 255) * 255) / 255)
            rgb = linear_to_srgb(rgb)
        assert np.abs(rgb * 255 - red[:3]).max() <= (2 if suffix == ".glb" else 0), suffix
    assert all(line.count(" ") == 6 for line in (tmp_path / "cone.obj").read_text().splitlines()
               if line.startswith("v "))  # v x y z r g b
    with pytest.raises(ValueError, match="suffix"):
        mesh_bytes(mesh, ".stl")


def test_the_srgb_curve_round_trips():
    c = np.linspace(0, 1, 101)
    assert np.allclose(linear_to_srgb(srgb_to_linear(c)), c)
    assert srgb_to_linear(0.5) == pytest.approx(0.2140, abs=1e-4)


def test_colours_follow_the_nearest_points():
    top = sample_shape3d("a blue cube", 1)
    colours = top.colours.copy()
    colours[top.points[:, 1] < 0] = colour_rgb("yellow")  # lower half yellow
    mesh = mesh_from_points(top.points, colours)
    rgb = mesh.visual.vertex_colors[:, :3]
    low, high = mesh.vertices[:, 1] < -0.2, mesh.vertices[:, 1] > 0.2
    assert np.all(rgb[low] == np.rint(colour_rgb("yellow") * 255))
    assert np.all(rgb[high] == np.rint(colour_rgb("blue") * 255))


def test_an_open_or_tiny_cloud_still_meshes_or_says_why():
    rng = np.random.default_rng(0)
    patch = np.stack([rng.uniform(-0.5, 0.5, 500), np.zeros(500), rng.uniform(-0.5, 0.5, 500)], 1)
    mesh = mesh_from_points(patch)  # a flat square: no inside, meshed as a thick sheet
    assert len(mesh.faces) > 0 and np.ptp(mesh.vertices[:, 1]) < 0.5
    with pytest.raises(ValueError, match="grid"):
        mesh_from_points(patch, grid=2)
