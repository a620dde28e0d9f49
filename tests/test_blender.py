"""A creative tool opens what text-to-3D writes: Blender (the `bpy` wheel from PyPI, headless)
imports the `.glb`, `.obj` and point-cloud `.ply` of a coloured world shape with every vertex and
the right colours.

bpy runs in a subprocess: it replaces the process's scene state and prints its own logging, and
its wheel pins an older numpy than ours (it runs with ours, but stays out of the test process).
Skipped with the reason where bpy cannot be imported (`pip install bpy`: Python 3.11 wheels).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest
import trimesh

from pipelines.t23d.files import read_point_cloud, write_point_cloud
from pipelines.t23d.mesh import mesh_from_points, write_mesh
from world.shapes3d import colour_rgb, sample_shape3d

# Imports each file given on the command line into an empty scene and writes what Blender holds:
# vertices, faces, and each colour attribute per vertex (linear and sRGB-encoded) as JSON.
INSPECT = r"""
import json, sys
import numpy as np
try:
    import bpy
except Exception as err:
    print(f"cannot import bpy: {type(err).__name__}: {err}", file=sys.stderr)
    sys.exit(77)

IMPORTERS = {".glb": lambda p: bpy.ops.import_scene.gltf(filepath=p),
             ".obj": lambda p: bpy.ops.wm.obj_import(filepath=p),
             ".ply": lambda p: bpy.ops.wm.ply_import(filepath=p)}
out = {}
for path in sys.argv[2:]:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    assert IMPORTERS[path[path.rindex("."):]](path) == {"FINISHED"}, path
    meshes = [o for o in bpy.context.scene.objects if o.type == "MESH"]
    me = meshes[0].data
    n = len(me.vertices)
    co = np.zeros(n * 3)
    me.vertices.foreach_get("co", co)
    loop_vertex = np.zeros(len(me.loops), dtype=np.int64)
    me.loops.foreach_get("vertex_index", loop_vertex)
    colours = {}
    for attr in me.color_attributes:
        per = {}
        for key in ("color", "color_srgb"):
            values = np.zeros(len(attr.data) * 4)
            attr.data.foreach_get(key, values)
            values = values.reshape(-1, 4)
            if attr.domain == "CORNER":  # per face corner: take each vertex's value from a corner of it
                by_vertex = np.zeros((n, 4))
                by_vertex[loop_vertex] = values
                values = by_vertex
            per[key] = values[:, :3].tolist()
        colours[attr.name] = {"domain": attr.domain, **per}
    out[path] = {"objects": len(meshes), "vertices": n, "faces": len(me.polygons), "co": co.reshape(-1, 3).tolist(),
                 "colours": colours}
with open(sys.argv[1], "w") as f:
    json.dump(out, f)
"""


@pytest.fixture(scope="module")
def blender_view(tmp_path_factory):
    if importlib.util.find_spec("bpy") is None:
        pytest.skip("bpy is not installed (pip install bpy: Blender as a Python module, CPython 3.11 wheels)")
    folder = tmp_path_factory.mktemp("blender")
    sample = sample_shape3d("a tall red cone", 3)
    colours = sample.colours.copy()
    colours[sample.points[:, 1] < 0] = colour_rgb("blue")  # two colours, so a mix-up would show
    mesh = mesh_from_points(sample.points, colours)
    files = {"ply": folder / "cone.ply", "glb": folder / "cone.glb", "obj": folder / "cone.obj"}
    write_point_cloud(files["ply"], sample.points, colours)
    write_mesh(files["glb"], mesh)
    write_mesh(files["obj"], mesh)
    report = folder / "blender.json"
    run = subprocess.run([sys.executable, "-c", INSPECT, str(report), *map(str, files.values())],
                         capture_output=True, text=True, timeout=300, cwd=folder)
    if run.returncode == 77:
        pytest.skip(run.stderr.strip().splitlines()[-1])
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(report.read_text())
    return {k: seen[str(p)] for k, p in files.items()}, files, mesh


def _colour(view: dict, key: str) -> np.ndarray:
    assert len(view["colours"]) == 1, view["colours"].keys()
    return np.asarray(next(iter(view["colours"].values()))[key])


def test_blender_opens_the_point_cloud_ply_with_every_point_and_its_colour(blender_view):
    views, files, _ = blender_view
    points, colours = read_point_cloud(files["ply"])
    ply = views["ply"]
    assert ply["objects"] == 1 and ply["vertices"] == len(points) == 2048 and ply["faces"] == 0
    assert np.allclose(ply["co"], points, atol=1e-6)  # .ply has no axis convention: taken as is
    # the file's uchar colours are sRGB; Blender keeps them as such
    assert np.abs(_colour(ply, "color_srgb") - colours).max() <= 1 / 255


def test_blender_opens_the_glb_and_obj_meshes_with_their_vertices_and_colours(blender_view):
    views, files, mesh = blender_view
    expected = np.asarray(mesh.visual.vertex_colors)[:, :3] / 255  # sRGB, as the points
    glb = views["glb"]
    assert glb["objects"] == 1 and glb["vertices"] == len(mesh.vertices) and glb["faces"] == len(mesh.faces)
    # glTF is y-up, Blender z-up: its importer maps (x, y, z) to (x, -z, y)
    v = mesh.vertices
    assert np.allclose(glb["co"], np.stack([v[:, 0], -v[:, 2], v[:, 1]], 1), atol=1e-5)
    stored = trimesh.load(files["glb"], force="mesh", process=False).visual.vertex_colors[:, :3] / 255
    assert np.abs(_colour(glb, "color") - stored).max() <= 1 / 255  # COLOR_0 read as linear, as stored
    assert np.abs(_colour(glb, "color_srgb") - expected).max() <= 2.5 / 255  # and shown as the points' colours
    obj = views["obj"]
    assert obj["vertices"] == len(mesh.vertices) and obj["faces"] == len(mesh.faces)
    assert np.abs(_colour(obj, "color_srgb") - expected).max() <= 1 / 255
