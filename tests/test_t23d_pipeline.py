"""T23DPipeline: output shapes and dtypes, seeds, guidance, callbacks, schedulers, cache hooks, bad
input, save/load through the loader, and the not-yet-shipped default."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from dit import VoxelDiT
from pipelines.core.errors import UserError
from pipelines.core.schedulers import make_scheduler
from pipelines.core.text_encoder import MINILM_PACKAGE
from pipelines.t23d import (RECIPE_T23D, ModelNotShipped, T23DPipeline, T23DPipelineOutput, load_default_t23d,
                            load_t23d_pipeline)
from pipelines.t23d import default_model

from .tiny_models import randomize

pytestmark = pytest.mark.usefixtures("one_thread")

N = 64  # points per cloud in these tests


def tiny_voxel_dit(in_channels: int = 6) -> VoxelDiT:
    return randomize(VoxelDiT(sample_size=8, patch_size=2, in_channels=in_channels, hidden_size=32, depth=2,
                              num_heads=2, window_size=2, window_blocks=[0], text_dim=384, pooled_dim=384,
                              adaln="single", point_head_channels=8), std=0.1)


def tiny_pipeline(minilm, in_channels: int = 6) -> T23DPipeline:
    text_encoder, tokenizer = minilm
    return T23DPipeline(transformer=tiny_voxel_dit(in_channels), scheduler=FlowMatchEulerDiscreteScheduler(),
                        text_encoder=text_encoder, tokenizer=tokenizer, text_max_length=16,
                        text_encoder_package=MINILM_PACKAGE)


@pytest.fixture
def pipe(minilm):
    return tiny_pipeline(minilm)


def run(pipe, seed=0, prompt="a tall red cone", **kw):
    kw.setdefault("num_inference_steps", 3)
    kw.setdefault("num_points", N)
    return pipe(prompt, generator=torch.Generator().manual_seed(seed), **kw)


def test_outputs_are_float32_clouds_with_colours_in_unit_range(pipe):
    out = run(pipe, prompt=["a red cube", "a wide torus"])
    assert isinstance(out, T23DPipelineOutput)
    assert len(out.points) == len(out.colours) == 2
    for points, colours in zip(out.points, out.colours):
        assert isinstance(points, np.ndarray) and points.shape == (N, 3) and points.dtype == np.float32
        assert colours.shape == (N, 3) and colours.dtype == np.float32
        assert np.isfinite(points).all() and colours.min() >= 0 and colours.max() <= 1
    pt = run(pipe, output_type="pt", num_points=32)
    assert pt.points[0].shape == (32, 3) and isinstance(pt.points[0], torch.Tensor)
    raw = run(pipe, output_type="latent")
    assert raw.points.shape == (1, N, 6) and raw.colours is None
    points, colours = run(pipe, return_dict=False)
    assert points[0].shape == (N, 3) and colours[0].shape == (N, 3)


def test_xyz_only_model_has_no_colours(minilm):
    out = run(tiny_pipeline(minilm, in_channels=3))
    assert out.colours is None and out.points[0].shape == (N, 3)


def test_same_seed_same_cloud_other_seed_differs(pipe):
    a, b, c = (run(pipe, s).points[0] for s in (1, 1, 2))
    assert np.array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3


def test_guidance_negative_prompt_and_prompt_change_the_cloud(pipe):
    plain = run(pipe, guidance_scale=1.0).points[0]
    guided = run(pipe, guidance_scale=5.0).points[0]
    negative = run(pipe, guidance_scale=5.0, negative_prompt="a blue sphere").points[0]
    other = run(pipe, guidance_scale=5.0, prompt="a wide green torus").points[0]
    assert np.abs(plain - guided).max() > 1e-4
    assert np.abs(guided - negative).max() > 1e-4
    assert np.abs(guided - other).max() > 1e-4


def test_guidance_calls_the_model_in_cond_and_uncond_contexts(pipe):
    contexts = []
    original = pipe.transformer.cache_context
    pipe.transformer.cache_context = lambda name: (contexts.append(name), original(name))[1]
    run(pipe, num_inference_steps=2, guidance_scale=4.0)
    assert contexts == ["cond", "uncond"] * 2
    contexts.clear()
    run(pipe, num_inference_steps=2, guidance_scale=1.0)  # guidance off: one call a step
    assert contexts == ["cond"] * 2


def test_given_latents_replace_the_drawn_noise(pipe):
    latents = torch.randn(1, N, 6, generator=torch.Generator().manual_seed(5))
    a = pipe("a red cube", num_inference_steps=2, num_points=N, latents=latents).points[0]
    b = pipe("a red cube", num_inference_steps=2, num_points=N, latents=latents,
             generator=torch.Generator().manual_seed(9)).points[0]
    assert np.array_equal(a, b)
    with pytest.raises(UserError, match=r"latents have shape \(1, 64, 6\), expected \(1, 2048, 6\)"):
        pipe("a red cube", num_inference_steps=2, latents=latents)  # num_points says the cloud's size


def test_callback_on_step_end_sees_and_replaces_latents(pipe):
    seen = []

    def callback(p, i, t, tensors):
        seen.append((i, tuple(tensors["latents"].shape)))
        return {"latents": torch.zeros_like(tensors["latents"])} if i == 2 else {}

    out = run(pipe, callback_on_step_end=callback)
    assert seen == [(0, (1, N, 6)), (1, (1, N, 6)), (2, (1, N, 6))]
    assert np.array_equal(out.points[0], np.zeros((N, 3), np.float32))
    np.testing.assert_allclose(out.colours[0], 0.5)  # rgb 0 in the model's [-1, 1] is mid grey


@pytest.mark.parametrize("name", ["flow-heun", "dpm++", "unipc"])
def test_fitting_schedulers_swap_in(pipe, name):
    pipe.scheduler = make_scheduler(name, FlowMatchEulerDiscreteScheduler(shift=2.0))
    a, b = run(pipe, num_inference_steps=4).points[0], run(pipe, num_inference_steps=4).points[0]
    assert np.isfinite(a).all() and np.array_equal(a, b)


def test_cache_acceleration_attaches_and_bottleneck_is_refused(pipe):
    from samplers import BottleneckConfig, make_config

    reference = run(pipe, num_inference_steps=6).points[0]
    never = run(pipe, num_inference_steps=6, acceleration=make_config("fbcache", threshold=0.0)).points[0]
    np.testing.assert_allclose(never, reference, atol=1e-5)  # a cache that never reuses changes nothing
    tail = []
    pipe.transformer.transformer_blocks[-1].mlp.register_forward_hook(lambda *a: tail.append(1))
    cached = run(pipe, num_inference_steps=6, acceleration=make_config("fbcache", threshold=10.0)).points[0]
    assert cached.shape == (N, 3) and np.isfinite(cached).all()
    assert len(tail) < 2 * 6  # the last block was skipped on some steps (cond and uncond alike)
    with pytest.raises(UserError, match="bottleneck sampling .* point clouds"):
        run(pipe, acceleration=BottleneckConfig())


@pytest.mark.parametrize("kwargs,match", [
    (dict(prompt=""), "empty prompt"),
    (dict(prompt=["a cube", "   "]), "empty prompt"),
    (dict(num_inference_steps=0), "num_inference_steps must be between 1 and 1000, got 0"),
    (dict(num_inference_steps=2.5), "num_inference_steps must be a positive integer, got 2.5"),
    (dict(guidance_scale=float("nan")), "guidance_scale must be a finite number, got nan"),
    (dict(guidance_scale=-1.0), "guidance_scale must be between 0 and 30, got -1"),
    (dict(num_points=1), "num_points must be between 2 and 65536, got 1"),
    (dict(num_points="many"), "num_points must be a whole number, got 'many'"),
    (dict(output_type="mesh"), "output_type must be 'np', 'pt' or 'latent', got 'mesh'"),
    (dict(negative_prompt=["a", "b"]), "got 2 negative prompts for 1 prompts"),
    (dict(latents=torch.zeros(1, N, 3)), r"latents have shape \(1, 64, 3\), expected \(1, 64, 6\)"),
])
def test_bad_call_arguments_raise_one_clear_user_error(pipe, kwargs, match):
    kwargs.setdefault("prompt", "a red cube")
    kwargs.setdefault("num_points", N)
    with pytest.raises(UserError, match=match):
        pipe(num_inference_steps=kwargs.pop("num_inference_steps", 2), **kwargs)


def saved_like_shipped(pipe, path):
    """Saved as the training export saves it: MiniLM named by package, not stored."""
    pipe.register_modules(text_encoder=None, tokenizer=None)
    pipe.save_pretrained(path, safe_serialization=True)
    return path


def test_save_and_load_round_trip_through_the_loader(pipe, tmp_path):
    before = run(pipe).points[0]
    text_encoder, tokenizer = pipe.text_encoder, pipe.tokenizer
    folder = saved_like_shipped(pipe, tmp_path / "t23d")
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == "T23DPipeline" and index["text_encoder_package"] == MINILM_PACKAGE
    assert index["text_encoder"] == [None, None] and not (folder / "text_encoder").exists()
    assert (folder / "transformer" / "diffusion_pytorch_model.safetensors").is_file()
    assert (folder / "scheduler" / "scheduler_config.json").is_file()
    loaded = load_t23d_pipeline(folder)
    assert isinstance(loaded.transformer, VoxelDiT) and type(loaded.text_encoder).__name__ == "BertModel"
    assert loaded.config.text_max_length == 16
    np.testing.assert_allclose(run(loaded).points[0], before, atol=1e-5)
    pipe.register_modules(text_encoder=text_encoder, tokenizer=tokenizer)


def test_loader_errors_are_one_line_user_errors(pipe, tmp_path):
    with pytest.raises(UserError, match="model path not found"):
        load_t23d_pipeline(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no model_index.json"):
        load_t23d_pipeline(tmp_path / "empty")
    other = tmp_path / "other"
    other.mkdir()
    (other / "model_index.json").write_text(json.dumps({"_class_name": "TextToImagePipeline"}))
    with pytest.raises(UserError, match="unsupported pipeline 'TextToImagePipeline'.*T23DPipeline"):
        load_t23d_pipeline(other)
    folder = saved_like_shipped(pipe, tmp_path / "broken")
    (folder / "transformer" / "diffusion_pytorch_model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(UserError, match="could not load the model in .*broken"):
        load_t23d_pipeline(folder)


def test_default_model_absent_says_it_is_not_shipped_and_how_to_make_it(tmp_path, monkeypatch):
    monkeypatch.setattr(default_model, "SHIPPED_T23D", tmp_path / "shapes-t23d")
    for load in (load_default_t23d, load_t23d_pipeline):
        with pytest.raises(ModelNotShipped, match="not shipped yet") as err:
            load()
        assert RECIPE_T23D in str(err.value) and isinstance(err.value, UserError)
