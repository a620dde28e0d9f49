"""samplers through TextToImagePipeline and `python -m pipelines.t2i`: caches for one call,
bottleneck sampling, and the CLI flags."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, FlowMatchEulerDiscreteScheduler
from diffusers.utils.torch_utils import randn_tensor
from PIL import Image

import samplers
from dit import MultiResDiT
from pipelines.core.errors import UserError
from pipelines.t2i import TextToImagePipeline
from pipelines.t2i.cli import main as cli_main
from samplers import BottleneckConfig, BottleneckStage, FBCacheConfig, IntervalCacheConfig
from samplers.bottleneck import plan_stages, sample_bottleneck, split_steps
from samplers.resize import resize

from .sampler_helpers import ALWAYS_REUSE, HALF_SIZE_PLAN, NEVER_REUSE, ids
from .tiny_models import randomize

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

PROMPT = "a large red circle in the top left"


def run(pipe, seed=0, **kw):
    kw.setdefault("num_inference_steps", 5)
    kw.setdefault("output_type", "np")
    return pipe(PROMPT, generator=torch.Generator().manual_seed(seed), **kw).images


@pytest.fixture
def multires_t2i(minilm):
    text_encoder, tokenizer = minilm
    transformer = randomize(MultiResDiT(sample_size=8, patch_size=2, hidden_size=32, depth=3, num_heads=2,
                                        branch_channels=(8,), branch_depths=(1,)))
    return TextToImagePipeline(transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(),
                               text_encoder=text_encoder, tokenizer=tokenizer, text_max_length=16)


# ---------------------------------------------------------------- caches for one call


@pytest.mark.parametrize("config", NEVER_REUSE, ids=ids(NEVER_REUSE))
@pytest.mark.parametrize("which", ["tiny_t2i", "multires_t2i"])
def test_pipeline_never_reusing_is_bit_exact(which, config, request):
    pipe = request.getfixturevalue(which)
    plain = run(pipe)
    cached = run(pipe, acceleration=config)
    assert np.array_equal(plain, cached)
    assert samplers.attached_config(pipe.transformer) is None  # applied for the call only
    st = samplers.stats(pipe.transformer)
    assert st.skipped == 0 and set(st.per_context) == {"cond", "uncond"} and st.forwards == 10


@pytest.mark.parametrize("config", ALWAYS_REUSE, ids=ids(ALWAYS_REUSE))
def test_pipeline_reuse_skips_and_a_second_call_repeats_the_first(tiny_t2i, config):
    plain = run(tiny_t2i, num_inference_steps=8)
    first = run(tiny_t2i, num_inference_steps=8, acceleration=config)
    stats_first = samplers.stats(tiny_t2i.transformer)
    second = run(tiny_t2i, num_inference_steps=8, acceleration=config)
    assert stats_first.skipped > 0 and stats_first.computed < stats_first.total
    assert stats_first.per_context["cond"] == stats_first.per_context["uncond"]
    assert np.array_equal(first, second) and samplers.stats(tiny_t2i.transformer) == stats_first
    assert not np.array_equal(first, plain)


@pytest.mark.parametrize("config", ALWAYS_REUSE, ids=ids(ALWAYS_REUSE))
def test_guided_call_equals_cond_and_uncond_each_with_its_own_fresh_cache(tiny_t2i, config):
    """Classifier-free guidance with one cached transformer = two cached copies, one per branch."""
    steps, guidance = 6, 4.0
    expected = run(tiny_t2i, num_inference_steps=steps, guidance_scale=guidance, output_type="latent",
                   acceleration=config)
    cond = tiny_t2i.encode_prompt([PROMPT], "cpu")
    uncond = tiny_t2i.encode_prompt([""], "cpu")
    branches = {}
    for name in ("cond", "uncond"):
        branches[name] = copy.deepcopy(tiny_t2i.transformer)
        samplers.apply_acceleration(branches[name], config)
        samplers.set_num_steps(branches[name], steps)
    scheduler = FlowMatchEulerDiscreteScheduler.from_config(tiny_t2i.scheduler.config)
    scheduler.set_timesteps(steps)
    latents = randn_tensor((1, 3, 8, 8), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for t in scheduler.timesteps:
            outs = {}
            for name, inputs in (("cond", cond), ("uncond", uncond)):
                with branches[name].cache_context(name):
                    outs[name] = branches[name](latents, t.expand(1), **inputs, return_dict=False)[0]
            guided = outs["uncond"] + guidance * (outs["cond"] - outs["uncond"])
            latents = scheduler.step(guided, t, latents, return_dict=False)[0]
    assert torch.equal(latents, expected)


def test_attached_before_the_call_stays_attached(tiny_t2i):
    config = FBCacheConfig(threshold=float("inf"))
    samplers.apply_acceleration(tiny_t2i.transformer, config)
    run(tiny_t2i)  # acceleration=None uses what is attached
    assert samplers.stats(tiny_t2i.transformer).skipped > 0
    run(tiny_t2i, acceleration=config)
    assert samplers.attached_config(tiny_t2i.transformer) == config
    with pytest.raises(UserError, match="fbcache is attached to this transformer and interval was asked for"):
        run(tiny_t2i, acceleration=IntervalCacheConfig(2))
    samplers.remove_acceleration(tiny_t2i.transformer)


@pytest.mark.parametrize("acceleration,match", [
    ("fbcache", "unknown config 'fbcache'"),
    ([FBCacheConfig(), IntervalCacheConfig()], "at most one cache config"),
    ([BottleneckConfig(), BottleneckConfig()], "at most one bottleneck"),
])
def test_bad_acceleration_arguments_raise_user_errors(tiny_t2i, acceleration, match):
    with pytest.raises(UserError, match=match):
        run(tiny_t2i, acceleration=acceleration)


# ---------------------------------------------------------------- bottleneck sampling

def test_bottleneck_runs_high_low_high_and_is_repeatable(tiny_t2i):
    shapes, steps = [], []
    hook = tiny_t2i.transformer.register_forward_pre_hook(lambda m, args: shapes.append(tuple(args[0].shape[-2:])))
    callback = lambda pipe, i, t, tensors: steps.append((i, tuple(tensors["latents"].shape))) or {}  # noqa: E731
    a = run(tiny_t2i, num_inference_steps=10, acceleration=BottleneckConfig(), callback_on_step_end=callback)
    hook.remove()
    assert a.shape == (1, 8, 8, 3) and np.isfinite(a).all()
    # the default plan: 1 + 6 + 3 steps, cond and uncond each; 5/8 of 8 rounds to 4 (a patch multiple)
    assert shapes == [(8, 8)] * 2 + [(4, 4)] * 12 + [(8, 8)] * 6
    assert [i for i, _ in steps] == list(range(10)) and steps[3][1] == (1, 3, 4, 4)
    b = run(tiny_t2i, num_inference_steps=10, acceleration=BottleneckConfig())
    c = run(tiny_t2i, seed=1, num_inference_steps=10, acceleration=BottleneckConfig())
    plain = run(tiny_t2i, num_inference_steps=10)
    assert np.array_equal(a, b) and not np.array_equal(a, c) and not np.array_equal(a, plain)


def test_bottleneck_with_a_cache_restarts_it_at_each_stage(tiny_t2i):
    out = run(tiny_t2i, num_inference_steps=10,
              acceleration=[FBCacheConfig(threshold=float("inf")), BottleneckConfig()])
    st = samplers.stats(tiny_t2i.transformer)
    assert out.shape == (1, 8, 8, 3) and st.forwards == 20
    # two blocks: the first runs every step, the second only at each stage's first step (3 stages)
    assert st.per_context["cond"] == {"computed": 10 + 3, "skipped": 7, "forwards": 10, "head_computed": 0,
                                     "head_skipped": 0}


def test_bottleneck_refuses_what_it_cannot_run(tiny_t2i):
    with pytest.raises(UserError, match="needs at least 3 steps, got 2"):
        run(tiny_t2i, num_inference_steps=2, acceleration=BottleneckConfig())
    tiny_t2i.scheduler = DDIMScheduler()
    with pytest.raises(UserError, match="needs a flow-matching scheduler, not DDIMScheduler"):
        run(tiny_t2i, acceleration=BottleneckConfig())


def test_stage_plan_steps_sizes_and_sigmas():
    assert split_steps([0.2, 0.5, 0.3], 10) == [2, 5, 3]
    assert split_steps([0.2, 0.5, 0.3], 3) == [1, 1, 1]
    assert sum(split_steps([0.2, 0.5, 0.3], 7)) == 7
    plans = plan_stages(HALF_SIZE_PLAN, 10, (16, 24), multiple=4)
    assert [p.size for p in plans] == [(16, 24), (8, 12), (16, 24)]
    assert [p.num_steps for p in plans] == [2, 5, 3]
    assert [(p.sigmas[0], p.sigmas[-1]) for p in plans] == [(1.0, 0.8), (0.85, 0.35), (0.7, 0.0)]
    # the default's middle stage at 5/8 size: 64x64 images draw it at 40x40, 32x32 frames at 20x20
    assert [p.size for p in plan_stages(BottleneckConfig(), 50, (64, 64), multiple=4)] == [(64, 64), (40, 40), (64, 64)]
    assert plan_stages(BottleneckConfig(), 50, (32, 32), multiple=4)[1].size == (20, 20)
    shifted = plan_stages(BottleneckConfig(stages=(BottleneckStage(1, 1, 1, 0, shift=3.0),)), 6, (8, 8))[0].sigmas
    gaps = [a - b for a, b in zip(shifted, shifted[1:])]
    assert all(g > 0 for g in gaps) and gaps[0] < gaps[-1]  # shift > 1: finer steps at high noise


def test_single_full_size_stage_is_the_plain_euler_loop():
    """The reference path: one stage at full size, no shift = Euler on an even σ grid."""
    denoise = lambda x, sigma: torch.sin(3 * x) * sigma - 0.2 * x  # noqa: E731
    latents = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    config = BottleneckConfig(stages=(BottleneckStage(scale=1.0, steps=1.0, start_sigma=1.0, end_sigma=0.0),))
    out = sample_bottleneck(denoise, latents, config, 7)
    x, sigmas = latents, [1 - j / 7 for j in range(8)]
    for sigma, nxt in zip(sigmas, sigmas[1:]):
        x = x + (nxt - sigma) * denoise(x, sigma)
    assert torch.equal(out, x)


def test_bottleneck_resizes_videos_frame_by_frame():
    video = torch.randn(2, 3, 4, 8, 8)
    small = resize(video, (4, 4), "area")
    per_frame = torch.stack([torch.nn.functional.interpolate(video[:, :, f], size=(4, 4), mode="area")
                             for f in range(4)], dim=2)
    assert torch.equal(small, per_frame)
    seen = []

    def denoise(x, sigma):
        seen.append(tuple(x.shape))
        return 0.1 * x

    out = sample_bottleneck(denoise, video, BottleneckConfig(), 5, multiple=2,
                            generator=torch.Generator().manual_seed(0))
    assert out.shape == video.shape and (2, 3, 4, 4, 4) in seen


# ---------------------------------------------------------------- CLI


def cli(capsys, *argv):
    code = cli_main([str(a) for a in argv])
    return code, capsys.readouterr().err


def test_cli_cache_flags_report_and_never_reuse_matches_plain(tiny_t2i_dir, tmp_path, capsys):
    base = ["--model", tiny_t2i_dir, "--prompt", "a red circle", "--steps", 4]
    code, err = cli(capsys, *base, "--out", tmp_path / "fb.png", "--cache", "fbcache", "--cache-threshold", 1e9)
    assert code == 0 and "fbcache: skipped" in err
    cli(capsys, *base, "--out", tmp_path / "plain.png")
    code, err = cli(capsys, *base, "--out", tmp_path / "cg.png", "--cache", "cg-taylor", "--cache-threshold", 0,
                    "--cache-order", 2)
    assert code == 0 and "cg-taylor: skipped 0%" in err
    assert (tmp_path / "cg.png").read_bytes() == (tmp_path / "plain.png").read_bytes()
    code, _ = cli(capsys, *base, "--out", tmp_path / "bn.png", "--bottleneck", "--cache", "interval",
                  "--cache-interval", 2)
    assert code == 0 and Image.open(tmp_path / "bn.png").size == (8, 8)


@pytest.mark.parametrize("flags,expected", [
    (["--cache", "magic"], "unknown --cache 'magic'; choose one of none, interval, bwcache"),
    (["--cache", "fbcache", "--cache-threshold", "-1"], "--cache-threshold must be >= 0, got -1"),
    (["--cache", "fbcache", "--cache-threshold", "abc"], "--cache-threshold must be a number, got 'abc'"),
    (["--cache", "interval", "--cache-threshold", "0.1"], "--cache interval takes no --cache-threshold (it takes "
                                                           "--cache-interval)"),
    (["--cache", "interval", "--cache-interval", "0"], "--cache-interval must be between 1 and 1000, got 0"),
    (["--cache", "taylorseer", "--cache-order", "1.5"], "--cache-order must be an integer, got '1.5'"),
    (["--cache", "cg-taylor", "--cache-order", "-1"], "--cache-order must be between 0 and 8, got -1"),
    (["--cache-threshold", "0.1"], "--cache none takes no --cache-threshold (it takes no knobs)"),
    (["--bottleneck", "--steps", "2"], "bottleneck sampling with 3 stages needs at least 3 steps, got 2"),
])
def test_cli_bad_acceleration_flags_are_one_error_line(tiny_t2i_dir, tmp_path, capsys, flags, expected):
    code, err = cli(capsys, "--model", tiny_t2i_dir, "--prompt", "a red circle", "--out", tmp_path / "x.png", *flags)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], err
    assert not (tmp_path / "x.png").exists()
