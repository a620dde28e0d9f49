"""The app's "Text to 3D" tab, in-process: the mesh to show and the three files to download, a
stand-in that draws the world (read back as its prompt), a tiny VoxelDiT found under --model-dir,
bad input as a named `gr.Error`, the `/t23d` API shape, and a clear note when no model is shipped."""

from __future__ import annotations

import gradio as gr
import numpy as np
import pytest
import trimesh
from diffusers import FlowMatchEulerDiscreteScheduler

from apps import app as app_module
from apps.app import build_app
from apps.handlers import Handlers
from apps.models import ModelRegistry, add_folders, default_registry, pipeline_folders, t23d_not_shipped
from apps.outputs import OutputFolder
from dit import VoxelDiT
from pipelines.core.text_encoder import MINILM_PACKAGE
from pipelines.t23d import T23DPipeline
from pipelines.t23d.files import read_point_cloud
from tests.world_stand_in import WorldShapePipeline
from world.reader3d import read_shape3d
from world.shapes3d import parse_caption3d

from .tiny_models import randomize

pytestmark = pytest.mark.usefixtures("one_thread")


class Progress:
    def __init__(self):
        self.updates = []

    def __call__(self, value, desc=None, total=None, unit="steps"):
        self.updates.append(value)


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """A folder holding one tiny text-to-3D pipeline, as --model-dir would name it."""
    root = tmp_path_factory.mktemp("zoo")
    transformer = randomize(VoxelDiT(sample_size=8, patch_size=2, in_channels=6, hidden_size=32, depth=2, num_heads=2,
                                     window_size=2, window_blocks=[0], text_dim=384, pooled_dim=384, adaln="single",
                                     point_head_channels=8), std=0.1)
    T23DPipeline(transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(), text_max_length=16,
                 text_encoder_package=MINILM_PACKAGE).save_pretrained(root / "tiny-t23d", safe_serialization=True)
    return root


@pytest.fixture(scope="module")
def handlers(zoo, tmp_path_factory):
    registry = ModelRegistry()
    registry.add("world-shape", "t23d", WorldShapePipeline, "test stand-in: draws the prompt's world sample")
    add_folders(registry, zoo)
    return Handlers(registry, OutputFolder(tmp_path_factory.mktemp("app-out")))


def t23d(handlers, prompt="a tall red cone", **kw):
    return handlers.t23d(prompt, **{"steps": 3, "model": "world-shape", "progress": Progress(), **kw})


def test_the_mesh_and_three_files_of_the_prompts_shape(handlers):
    progress = Progress()
    glb, ply, obj, info = t23d(handlers, seed=4, progress=progress)
    assert glb.endswith(".glb") and ply.endswith(".ply") and obj.endswith(".obj")
    points, colours = read_point_cloud(ply)
    assert points.shape == (2048, 3) and read_shape3d(points, colours).matches(parse_caption3d("a tall red cone"))
    for path in (glb, obj):
        mesh = trimesh.load(path, force="mesh", process=False)
        assert mesh.is_watertight and mesh.visual.kind == "vertex", path
    assert info.startswith("Seed 4, 2048 points, coloured; mesh of") and "Generated in" in info
    assert progress.updates[-1] == (3, 3)
    again = t23d(handlers, seed=4, points=512)
    assert again[1] != ply and read_point_cloud(again[1])[0].shape == (512, 3)


def test_a_saved_text_to_3d_pipeline_is_found_and_served(zoo, handlers):
    assert [(p.name, kind) for p, kind in pipeline_folders(zoo)] == [("tiny-t23d", "t23d")]
    glb, ply, _, info = t23d(handlers, "a wide torus", model="tiny-t23d", points=256, seed=1)
    assert read_point_cloud(ply)[0].shape == (256, 3) and len(trimesh.load(glb, force="mesh").faces) > 0
    assert np.array_equal(read_point_cloud(t23d(handlers, "a wide torus", model="tiny-t23d", points=256,
                                                seed=1)[1])[0], read_point_cloud(ply)[0]), "same seed, same cloud"


@pytest.mark.parametrize("overrides, message", [
    (dict(prompt=""), "the prompt is empty"),
    (dict(steps=0), "steps must be between 1 and 1000, got 0"),
    (dict(guidance=-1), "guidance must be between 0 and 30, got -1"),
    (dict(seed=-1), "seed must be between 0 and 4294967295, got -1"),
    (dict(points=10), "points must be between 256 and 16384, got 10"),
    (dict(points=300.5), "points must be a whole number, got 300.5"),
    (dict(model="nope"), "unknown text-to-3D model 'nope'; choose one of: world-shape, tiny-t23d"),
    (dict(method="magic"), "unknown acceleration method 'magic'"),
    (dict(prompt="a purple blob"), "not a 3D Shapes World caption"),
])
def test_bad_input_is_a_named_gr_error(handlers, overrides, message):
    kw = dict(overrides)
    with pytest.raises(gr.Error) as err:
        t23d(handlers, kw.pop("prompt", "a tall red cone"), **kw)
    assert message in err.value.message and "Traceback" not in err.value.message


def test_without_a_text_to_3d_model_the_tab_says_why(tmp_path, monkeypatch):
    h = Handlers(ModelRegistry(), OutputFolder(tmp_path))
    with pytest.raises(gr.Error, match="text-to-3D model"):
        h.t23d("a tall red cone", model=None, progress=Progress())
    note = "The text-to-3D model is not shipped yet: train it with `python -m training.train …`."
    monkeypatch.setattr(app_module, "t23d_not_shipped", lambda: note)
    config = build_app(handlers=h).get_config_file()
    shown = [c["props"].get("value") for c in config["components"] if c["props"].get("elem_id") == "t23d-missing"]
    assert shown == [f"**No text-to-3D model here.** {note}"]
    assert "t23d" in [c["props"].get("id") for c in config["components"] if c.get("type") == "tabitem"]


def test_the_shipped_model_is_offered_exactly_when_it_is_there():
    names = default_registry().names("t23d")
    assert names == ([] if t23d_not_shipped() else ["shapes-t23d"])


def test_the_api_takes_the_prompt_first_and_defaults_the_rest(handlers):
    params = build_app(handlers=handlers).get_api_info()["named_endpoints"]["/t23d"]["parameters"]
    assert [p["parameter_name"] for p in params] == ["prompt", "negative_prompt", "seed", "steps", "guidance", "points",
                                                     "model", "method", "threshold", "interval"]
    assert not params[0]["parameter_has_default"] and all(p["parameter_has_default"] for p in params[1:])
    assert params[6]["parameter_default"] == "world-shape"
