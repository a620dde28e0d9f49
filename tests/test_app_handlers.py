"""The Gradio app's handlers, in-process: results and reports, bad input as `gr.Error` naming the
value, one shared model per name (loaded once, one call at a time), safe output names, and the
API shape of `build_app`. The served app (browser, load) is in test_app_served.py."""

from __future__ import annotations

import json
import os
import re
import threading
import time

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from apps.app import build_app
from apps.handlers import Handlers
from apps.models import ModelRegistry, add_folders, pipeline_folders
from apps.outputs import OutputFolder
from tests.world_stand_in import WorldRenderPipeline

STEPS = 3


class Progress:
    """Stands in for gr.Progress: records (done, total) of every update."""

    def __init__(self):
        self.updates = []

    def __call__(self, value, desc=None, total=None, unit="steps"):
        self.updates.append(value)


@pytest.fixture(scope="module")
def handlers(tiny_model_dir, tmp_path_factory):
    registry = ModelRegistry()
    add_folders(registry, tiny_model_dir)
    registry.add("world-render", "t2i", WorldRenderPipeline, "test stand-in")
    return Handlers(registry, OutputFolder(tmp_path_factory.mktemp("app-out")))


def t2i(handlers, prompt="a red circle", **kw):
    kw = {"steps": STEPS, "model": "tiny-t2i", "progress": Progress(), **kw}
    return handlers.t2i(prompt, **kw)


def t2v(handlers, prompt="a red circle moving left", **kw):
    kw = {"steps": STEPS, "model": "tiny-t2v", "progress": Progress(), **kw}
    return handlers.t2v(prompt, **kw)


# ---------------------------------------------------------------- models

def test_model_dir_discovery(tiny_model_dir, tmp_path):
    (tmp_path / "zoo" / "nested").mkdir(parents=True)
    (tmp_path / "zoo" / "nested" / "t2i").symlink_to(tiny_model_dir / "tiny-t2i")
    (tmp_path / "zoo" / "t2v").symlink_to(tiny_model_dir / "tiny-t2v")
    for name, index in (("sd", '{"_class_name": "StableDiffusionPipeline"}'), ("broken", "{not json")):
        (tmp_path / "zoo" / name).mkdir()
        (tmp_path / "zoo" / name / "model_index.json").write_text(index)
    found = [(p.relative_to(tmp_path / "zoo").as_posix(), kind) for p, kind in pipeline_folders(tmp_path / "zoo")]
    assert found == [("nested/t2i", "t2i"), ("t2v", "t2v")]
    registry = ModelRegistry()
    add_folders(registry, tmp_path / "zoo")
    assert registry.names("t2i") == ["nested/t2i"] and registry.names("t2v") == ["t2v"]


def test_model_loaded_once_and_calls_never_overlap(tmp_path):
    stand_in, loads = WorldRenderPipeline(step_seconds=0.005), []
    registry = ModelRegistry()
    registry.add("world", "t2i", lambda: loads.append(1) or stand_in, "test")
    h = Handlers(registry, OutputFolder(tmp_path))
    threads = [threading.Thread(target=h.t2i, args=("a blue square",), kwargs=dict(steps=5, progress=Progress()))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(loads) == 1 and stand_in.calls == 4 and stand_in.max_inside == 1


# ---------------------------------------------------------------- results

def test_t2i_image_report_and_progress(handlers):
    progress = Progress()
    path, info = t2i(handlers, seed=3, progress=progress)
    assert Image.open(path).size == (8, 8) and path.endswith(".png")
    assert info.startswith("Seed 3.") and "Generated in" in info
    assert progress.updates[-1] == (STEPS, STEPS), "progress follows the denoising steps"
    again, _ = t2i(handlers, seed=3)
    assert again != path and Image.open(again).tobytes() == Image.open(path).tobytes(), "same seed, same image"


def test_stand_in_renders_its_prompt(handlers):
    import world

    prompt = "a small green triangle in the bottom right on a gray background"
    path, _ = t2i(handlers, prompt, model="world-render")
    assert world.score([prompt], [np.array(Image.open(path).convert("RGB"))])["joint"] == 1.0


def test_acceleration_reports_measured_speedup(tiny_model_dir, tmp_path):
    registry = ModelRegistry()
    add_folders(registry, tiny_model_dir)
    h = Handlers(registry, OutputFolder(tmp_path))  # a fresh model: its first run is the warm-up
    fbcache = dict(steps=6, method="fbcache", threshold=0.5)
    assert "first run includes one-time warm-up" in t2i(h, steps=6)[1]
    assert "No run without acceleration at these settings yet" in t2i(h, **fbcache)[1]
    assert "try an acceleration method" in t2i(h, steps=6)[1]
    fast = t2i(h, **fbcache)[1]
    assert re.search(r"\*\*\d+\.\d\d×\*\* the speed of the last run without acceleration at these settings", fast)
    assert re.search(r"fbcache skipped \d+% of block evaluations \(\d+ of \d+\)", fast)
    assert "×** the speed" in t2i(h, steps=6, bottleneck=True)[1]
    assert "No run without acceleration" in t2i(h, steps=7, bottleneck=True)[1], "other settings, other baseline"


def test_t2v_clip_in_mp4_and_gif(handlers):
    mp4, gif, info = t2v(handlers, seed=1)
    assert mp4.endswith(".mp4") and gif.endswith(".gif")
    with Image.open(gif) as clip:
        assert clip.n_frames == 4 and clip.size == (8, 8)
    assert "4 frames at 12 fps" in info


def test_output_names_are_safe(tmp_path):
    out = OutputFolder(tmp_path)
    path = out.save_image(Image.new("RGB", (4, 4)), "../../etc/passwd <b>A Red   circle</b>!", 7)
    assert path.parent == tmp_path and re.fullmatch(r"\d{5}-etc-passwd-b-a-red-circle-b-seed7\.png", path.name)
    assert out.save_image(Image.new("RGB", (4, 4)), "日本", 0).name.endswith("-sample-seed0.png")


def test_old_outputs_are_pruned(tmp_path):
    out = OutputFolder(tmp_path, max_age=60)
    old, new = out.save_image(Image.new("RGB", (4, 4)), "old", 0), out.save_image(Image.new("RGB", (4, 4)), "new", 0)
    os.utime(old, (time.time() - 120,) * 2)
    out.prune()
    assert not old.exists() and new.exists()


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("overrides, message", [
    (dict(prompt=""), "the prompt is empty"),
    (dict(prompt="   "), "the prompt is empty"),
    (dict(prompt="x" * 1001), "the prompt is 1001 characters long; the limit is 1000"),
    (dict(negative_prompt=3), "negative prompt must be text, got 3"),
    (dict(steps=0), "steps must be between 1 and 1000, got 0"),
    (dict(steps=2.5), "steps must be a whole number, got 2.5"),
    (dict(guidance=-1), "guidance must be between 0 and 30, got -1"),
    (dict(guidance=float("nan")), "guidance must be a finite number, got nan"),
    (dict(seed=-1), "seed must be between 0 and 4294967295, got -1"),
    (dict(seed="abc"), "seed must be a whole number, got 'abc'"),
    (dict(height=7), "height 7 must be a positive multiple of 2"),
    (dict(width=5000), "width must be between 0 and 4096, got 5000"),
    (dict(model="nope"), "unknown text-to-image model 'nope'; choose one of: tiny-t2i, world-render"),
    (dict(model="tiny-t2v"), "unknown text-to-image model 'tiny-t2v'"),
    (dict(method="magic"), "unknown acceleration method 'magic'"),
    (dict(method="fbcache", threshold=-1), "threshold must be >= 0, got -1"),
    (dict(method="interval", interval=0), "interval must be between 1 and 1000, got 0"),
    (dict(bottleneck="yes"), "bottleneck must be true or false, got 'yes'"),
    (dict(steps=2, bottleneck=True), "bottleneck sampling with 3 stages needs at least 3 steps, got 2"),
    (dict(prompt="a purple blob", model="world-render"), "not a canonical Shapes World image caption"),
])
def test_t2i_bad_input_is_a_named_gr_error(handlers, overrides, message):
    kw = dict(overrides)
    with pytest.raises(gr.Error) as err:
        t2i(handlers, kw.pop("prompt", "a red circle"), **kw)
    assert message in err.value.message and "Traceback" not in err.value.message


@pytest.mark.parametrize("overrides, message", [
    (dict(frames=99), "num_frames 99 is beyond this model's limit of 6 frames"),
    (dict(frames=-2), "frames must be between 0 and 1024, got -2"),
    (dict(model="world-render"), "unknown text-to-video model 'world-render'; choose one of: tiny-t2v"),
])
def test_t2v_bad_input_is_a_named_gr_error(handlers, overrides, message):
    with pytest.raises(gr.Error, match=re.escape(message)):
        t2v(handlers, **overrides)


def test_unexpected_failure_is_one_line(tmp_path):
    def broken(*args, **kwargs):
        raise RuntimeError("boom\nsecond line")

    registry = ModelRegistry()
    registry.add("broken", "t2i", lambda: broken, "test")
    with pytest.raises(gr.Error) as err:
        Handlers(registry, OutputFolder(tmp_path)).t2i("a red circle", progress=Progress())
    assert err.value.message == "generation failed: RuntimeError: boom"


# ---------------------------------------------------------------- the app's API

def test_api_endpoints_take_the_prompt_first_and_default_the_rest(handlers):
    info = build_app(handlers=handlers).get_api_info()["named_endpoints"]
    assert set(info) == {"/t2i", "/t2v", "/t23d"}
    for name, sizes in (("/t2i", ["height", "width"]), ("/t2v", ["frames", "height", "width"])):
        params = info[name]["parameters"]
        assert [p["parameter_name"] for p in params] == ["prompt", "negative_prompt", "seed", "steps", "guidance",
                                                         *sizes, "model", "method", "threshold", "interval",
                                                         "bottleneck"]
        assert not params[0]["parameter_has_default"]
        assert all(p["parameter_has_default"] for p in params[1:]), json.dumps(params[1:])
    assert info["/t2i"]["parameters"][-5]["parameter_default"] == "tiny-t2i"


def test_t2v_acceleration_reports_what_it_skipped(handlers):
    t2v(handlers, steps=6)
    t2v(handlers, steps=6)
    *_, info = t2v(handlers, steps=6, method="interval", interval=2)
    assert "×** the speed" in info and re.search(r"interval skipped \d+% of block evaluations", info)


def test_the_threshold_default_is_the_first_block_caches_own():
    """The API's (and the slider's) starting threshold is FBCacheConfig's default, chosen by bench/cache.py."""
    from pipelines.core import inputs
    from samplers import FBCacheConfig

    assert inputs.DEFAULT_THRESHOLD == FBCacheConfig().threshold
