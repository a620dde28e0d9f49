"""samplers through TextToVideoPipeline and `python -m pipelines.t2v`: caches for one call,
bottleneck sampling (with given frames shrunk and put back at every step), and the CLI flags."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler

import samplers
from pipelines.core.errors import UserError
from pipelines.t2v.cli import main as cli_main
from samplers import BottleneckConfig, FBCacheConfig
from samplers.resize import resize

from .sampler_helpers import ALWAYS_REUSE, HALF_SIZE_PLAN, NEVER_REUSE, ids
from .tiny_models import TINY_T2V_FRAMES as FRAMES, TINY_T2V_SIZE as SIZE, clip_uint8

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py; tiny_t2v is a fixture there too

PROMPT = "a red square moving left"


def run(pipe, seed=0, **kw):
    kw.setdefault("num_inference_steps", 5)
    kw.setdefault("num_frames", 4)
    return pipe(PROMPT, generator=torch.Generator().manual_seed(seed), **kw).frames


# ---------------------------------------------------------------- caches for one call


@pytest.mark.parametrize("config", NEVER_REUSE, ids=ids(NEVER_REUSE))
def test_never_reusing_is_bit_exact(tiny_t2v, config):
    plain = run(tiny_t2v)
    cached = run(tiny_t2v, acceleration=config)
    assert np.array_equal(plain, cached)
    assert samplers.attached_config(tiny_t2v.transformer) is None  # applied for the call only
    st = samplers.stats(tiny_t2v.transformer)
    assert st.skipped == 0 and set(st.per_context) == {"cond", "uncond"} and st.forwards == 10


@pytest.mark.parametrize("config", ALWAYS_REUSE, ids=ids(ALWAYS_REUSE))
def test_reuse_skips_and_a_second_call_repeats_the_first(tiny_t2v, config):
    plain = run(tiny_t2v, num_inference_steps=8)
    first = run(tiny_t2v, num_inference_steps=8, acceleration=config)
    stats_first = samplers.stats(tiny_t2v.transformer)
    second = run(tiny_t2v, num_inference_steps=8, acceleration=config)
    assert stats_first.skipped > 0 and stats_first.computed < stats_first.total
    assert stats_first.per_context["cond"] == stats_first.per_context["uncond"]
    assert np.array_equal(first, second) and samplers.stats(tiny_t2v.transformer) == stats_first
    assert not np.array_equal(first, plain)


def test_a_cache_keeps_the_given_frames_exactly(tiny_t2v):
    init = clip_uint8(2)
    out = run(tiny_t2v, init_frames=init, num_inference_steps=6, acceleration=FBCacheConfig(float("inf")))
    assert samplers.stats(tiny_t2v.transformer).skipped > 0
    assert np.array_equal((out[0, :2] * 255).round().astype(np.uint8), init)


# ---------------------------------------------------------------- bottleneck sampling


def test_bottleneck_runs_high_low_high_and_is_repeatable(tiny_t2v):
    shapes = []
    hook = tiny_t2v.transformer.register_forward_pre_hook(lambda m, args: shapes.append(tuple(args[0].shape[-3:])))
    a = run(tiny_t2v, num_inference_steps=10, acceleration=HALF_SIZE_PLAN)
    hook.remove()
    assert a.shape == (1, 4, SIZE, SIZE, 3) and np.isfinite(a).all()
    assert shapes == [(4, 8, 8)] * 4 + [(4, 4, 4)] * 10 + [(4, 8, 8)] * 6  # 2 + 5 + 3 steps, cond and uncond
    b = run(tiny_t2v, num_inference_steps=10, acceleration=HALF_SIZE_PLAN)
    c = run(tiny_t2v, seed=1, num_inference_steps=10, acceleration=HALF_SIZE_PLAN)
    plain = run(tiny_t2v, num_inference_steps=10)
    assert np.array_equal(a, b) and not np.array_equal(a, c) and not np.array_equal(a, plain)
    pt = run(tiny_t2v, num_frames=FRAMES, height=16, width=8, num_inference_steps=4, output_type="pt",
             num_videos_per_prompt=2, acceleration=BottleneckConfig())
    assert pt.shape == (2, FRAMES, 3, 16, 8)


def test_bottleneck_puts_the_given_frames_back_at_every_step_at_the_stage_size(tiny_t2v):
    """The model sees given frames clean at every step, shrunk like the rest in the low stage."""
    init, key = clip_uint8(1, seed=1), clip_uint8(1, seed=2)[0]
    clean = (torch.from_numpy(np.concatenate([init, key[None]])).permute(3, 0, 1, 2).float() / 255 * 2 - 1)[None]
    given = [0, 3]  # frames of the (1, 3, F, H, W) latents the user gave
    seen = []

    def check(tensor):
        frames = tensor[:, :, given]
        expected = resize(clean, tuple(frames.shape[-2:]), "area").expand_as(frames)
        seen.append(tuple(frames.shape[-2:]))
        return torch.allclose(frames, expected, atol=1e-6)

    model_inputs_ok = []
    hook = tiny_t2v.transformer.register_forward_pre_hook(lambda m, args: model_inputs_ok.append(check(args[0])))
    steps_ok = []
    callback = lambda pipe, i, t, tensors: steps_ok.append(check(tensors["latents"])) or {}  # noqa: E731
    out = run(tiny_t2v, init_frames=init, keyframes={3: key}, num_inference_steps=10,
              acceleration=BottleneckConfig(), callback_on_step_end=callback)
    hook.remove()
    assert len(model_inputs_ok) == 20 and all(model_inputs_ok) and len(steps_ok) == 10 and all(steps_ok)
    assert (4, 4) in seen and (8, 8) in seen
    assert np.array_equal((out[0, 0] * 255).round().astype(np.uint8), init[0])
    assert np.array_equal((out[0, 3] * 255).round().astype(np.uint8), key)


def test_bottleneck_with_a_cache_restarts_it_at_each_stage(tiny_t2v):
    out = run(tiny_t2v, num_inference_steps=10, acceleration=[FBCacheConfig(threshold=float("inf")),
                                                               BottleneckConfig()])
    st = samplers.stats(tiny_t2v.transformer)
    assert out.shape == (1, 4, SIZE, SIZE, 3) and st.forwards == 20
    # two blocks: the first runs every step, the second only at each stage's first step (3 stages);
    # the refine branch likewise (FBCache forecasts it on reused steps)
    assert st.per_context["cond"] == {"computed": 10 + 3, "skipped": 7, "forwards": 10, "head_computed": 3,
                                     "head_skipped": 7}


def test_bad_acceleration_is_refused_before_any_work(tiny_t2v):
    with pytest.raises(UserError, match="needs at least 3 steps, got 2"):
        run(tiny_t2v, num_inference_steps=2, acceleration=BottleneckConfig())
    with pytest.raises(UserError, match="needs at least 3 steps, got 2"):
        tiny_t2v.check_inputs("x", num_inference_steps=2, acceleration=BottleneckConfig())
    with pytest.raises(UserError, match="at most one cache config"):
        run(tiny_t2v, acceleration=[FBCacheConfig(), FBCacheConfig()])
    tiny_t2v.scheduler = DDIMScheduler()
    with pytest.raises(UserError, match="needs a flow-matching scheduler, not DDIMScheduler"):
        run(tiny_t2v, acceleration=BottleneckConfig())


# ---------------------------------------------------------------- CLI


def cli(capsys, *argv):
    code = cli_main([str(a) for a in argv])
    return code, capsys.readouterr().err


def test_cli_cache_flags_report_and_never_reuse_matches_plain(tiny_t2v_dir, tmp_path, capsys):
    base = ["--model", tiny_t2v_dir, "--prompt", "a red circle moving up", "--steps", 4, "--format", "frames"]
    code, err = cli(capsys, *base, "--out", tmp_path / "iv", "--cache", "interval", "--cache-interval", 2)
    assert code == 0 and "interval: skipped 50%" in err, err  # steps 1 and 3 reuse those before them
    assert cli(capsys, *base, "--out", tmp_path / "plain")[0] == 0
    code, err = cli(capsys, *base, "--out", tmp_path / "ts", "--cache", "taylorseer", "--cache-interval", 1,
                    "--cache-order", 2)
    assert code == 0 and "taylorseer: skipped 0%" in err, err
    plain = sorted((tmp_path / "plain").iterdir())
    assert len(plain) == 4 and [p.read_bytes() for p in plain] == \
        [p.read_bytes() for p in sorted((tmp_path / "ts").iterdir())]
    code, err = cli(capsys, *base, "--out", tmp_path / "bn", "--bottleneck", "--cache", "interval",
                    "--cache-interval", 2)
    assert code == 0 and len(list((tmp_path / "bn").iterdir())) == 4, err
    code, err = cli(capsys, *base, "--out", tmp_path / "fb", "--cache", "fbcache")
    assert code == 2 and err.strip() == "error: fbcache needs at least 2 transformer blocks; found 1 in VideoDiT"


@pytest.mark.parametrize("flags,expected", [
    (["--cache", "magic"], "unknown --cache 'magic'; choose one of none, interval, bwcache"),
    (["--cache", "fbcache", "--cache-threshold", "-1"], "--cache-threshold must be >= 0, got -1"),
    (["--cache", "bwcache", "--cache-threshold", "abc"], "--cache-threshold must be a number, got 'abc'"),
    (["--cache", "interval", "--cache-threshold", "0.1"], "--cache interval takes no --cache-threshold (it takes "
                                                           "--cache-interval)"),
    (["--cache", "taylorseer", "--cache-interval", "0"], "--cache-interval must be between 1 and 1000, got 0"),
    (["--cache", "taylorseer", "--cache-order", "x"], "--cache-order must be an integer, got 'x'"),
    (["--cache-interval", "2"], "--cache none takes no --cache-interval (it takes no knobs)"),
    (["--bottleneck", "--steps", "2"], "bottleneck sampling with 3 stages needs at least 3 steps, got 2"),
])
def test_cli_bad_acceleration_flags_are_one_error_line(tiny_t2v_dir, tmp_path, capsys, flags, expected):
    code, err = cli(capsys, "--model", tiny_t2v_dir, "--prompt", "a red circle", "--out", tmp_path / "x.mp4", *flags)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], err
    assert not (tmp_path / "x.mp4").exists()
