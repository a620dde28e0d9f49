"""samplers on bare transformers: ours (DiT, MultiResDiT, VideoDiT) and diffusers' DiT, PixArt and Latte.

Every model is tiny and built here with random non-zero weights. N(0, 0.2) everywhere, except
where a test needs a smooth trajectory: at that scale these nets are chaotic (an input change of
1e-5 moves the output by several %), so "caching changes the output only a bit" is checked at
N(0, 0.05).
"""

from __future__ import annotations

import copy
import logging

import pytest
import torch
from diffusers.hooks import FirstBlockCacheConfig
from diffusers.hooks._helpers import TransformerBlockMetadata, TransformerBlockRegistry
from torch import nn

import samplers
from pipelines.core.hooks_state import reset_hook_state
from samplers import (BottleneckConfig, BottleneckStage, BWCacheConfig, CGTaylorConfig, FBCacheConfig,
                      IntervalCacheConfig, TaylorSeerConfig)
from samplers.taylor import Forecaster

from .sampler_helpers import ALWAYS_REUSE, NEVER_REUSE, build, ids, trajectory
from .tiny_models import randomize

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


# ---------------------------------------------------------------- tiny models (built by tests/sampler_helpers.py)


MODELS = ["dit", "multires", "video", "diffusers-dit", "pixart", "latte"]


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().mean() / b.abs().mean()).item()


# ---------------------------------------------------------------- exactness and skipping


@pytest.mark.parametrize("config", NEVER_REUSE, ids=ids(NEVER_REUSE))
@pytest.mark.parametrize("name", MODELS)
def test_never_reusing_is_bit_exact(name, config):
    model, shape, fwd = build(name)
    reference = trajectory(model, fwd, shape)
    with samplers.accelerated(model, config):
        samplers.set_num_steps(model, 6)
        cached = trajectory(model, fwd, shape)
        st = samplers.stats(model)
    assert torch.equal(cached, reference)
    assert st.skipped == 0 and st.computed == 6 * 2 * len(samplers.blocks.find_blocks(model))
    assert samplers.attached_config(model) is None
    assert torch.equal(trajectory(model, fwd, shape), reference)  # removal restores the plain model


@pytest.mark.parametrize("config", ALWAYS_REUSE, ids=ids(ALWAYS_REUSE))
@pytest.mark.parametrize("name", MODELS)
def test_reuse_skips_blocks_and_changes_a_smooth_trajectory_only_a_bit(name, config):
    model, shape, fwd = build(name, std=0.05)
    reference = trajectory(model, fwd, shape, steps=8, speed=0.2)
    with samplers.accelerated(model, config):
        samplers.set_num_steps(model, 8)
        cached = trajectory(model, fwd, shape, steps=8, speed=0.2)
        st = samplers.stats(model)
    assert 0 < st.skipped and st.computed < st.total
    assert set(st.per_context) == {"cond", "uncond"} and st.forwards == 16
    assert 0 < relative(cached, reference) < 0.1


def test_each_schedule_computes_exactly_the_steps_it_should():
    model, shape, fwd = build("dit")
    blocks = len(model.transformer_blocks)
    expected = {  # 10 steps of one context → (computed, skipped)
        IntervalCacheConfig(interval=3): (4 * blocks, 6 * blocks),  # steps 0, 3, 6, 9
        FBCacheConfig(threshold=float("inf")): (10 + blocks - 1, 9 * (blocks - 1)),  # first block always
        BWCacheConfig(threshold=float("inf"), max_reuse=2, final_steps_full=2, per_block=True):
            (6 * blocks, 4 * blocks),  # 0 1 4 7 8 9
        BWCacheConfig(threshold=float("inf"), max_reuse=2, final_steps_full=2, per_block=False):
            (6 * blocks, 4 * blocks),
        TaylorSeerConfig(interval=3, warmup_steps=2): (4 * blocks, 6 * blocks),  # 0 1 4 7
        CGTaylorConfig(threshold=float("inf")): (2 * blocks + 8, 8 * (blocks - 1)),  # 0 and 9 full, first block always
    }
    for config, counts in expected.items():
        with samplers.accelerated(model, config):
            samplers.set_num_steps(model, 10)
            trajectory(model, fwd, shape, steps=10, contexts=("cond",))
            st = samplers.stats(model)
        assert (st.computed, st.skipped) == counts, config


def test_the_step_count_comes_from_config_context_or_pipeline(caplog):
    model, shape, fwd = build("pixart")  # no CacheMixin: samplers.cache_context carries the count
    config = BWCacheConfig(threshold=float("inf"), max_reuse=20, final_steps_full=3)
    blocks = len(model.transformer_blocks)

    def run(config, total_in_context=None):
        with samplers.accelerated(model, config), torch.no_grad():
            x = torch.randn(shape)
            for i in range(8):
                with samplers.cache_context(model, "cond", num_inference_steps=total_in_context):
                    fwd(model, x, torch.tensor(500.0), 0)
            return samplers.stats(model).computed

    assert run(BWCacheConfig(threshold=float("inf"), max_reuse=20, final_steps_full=3, num_inference_steps=8)) \
        == 5 * blocks  # 0, 1 (to measure), 5, 6, 7 (final)
    assert run(config, total_in_context=8) == 5 * blocks
    with caplog.at_level(logging.WARNING, logger="samplers.hooks"):
        assert run(config) == 2 * blocks  # unknown length: nothing forced at the end …
    assert "number of steps is unknown" in caplog.text  # … and the user is told


# ---------------------------------------------------------------- state: contexts and resets


@pytest.mark.parametrize("config", ALWAYS_REUSE, ids=ids(ALWAYS_REUSE))
@pytest.mark.parametrize("name", ["dit", "latte"])
def test_cond_and_uncond_keep_separate_states(name, config):
    """Interleaved cond/uncond calls on one model equal each context run alone on its own copy."""
    model, shape, fwd = build(name)
    with samplers.accelerated(model, config):
        samplers.set_num_steps(model, 6)
        both = trajectory(model, fwd, shape)
        states = samplers.attach._attachment(model).states.states
        assert set(states) == {"cond", "uncond"} and states["cond"].data is not states["uncond"].data
    alone = {}
    for name_ in ("cond", "uncond"):
        twin = copy.deepcopy(model)
        with samplers.accelerated(twin, config):
            samplers.set_num_steps(twin, 6)
            alone[name_] = trajectory(twin, fwd, shape, contexts=(name_,))
    assert torch.equal(both[0::2], alone["cond"]) and torch.equal(both[1::2], alone["uncond"])
    assert not torch.equal(alone["cond"], alone["uncond"])


@pytest.mark.parametrize("config", ALWAYS_REUSE, ids=ids(ALWAYS_REUSE))
def test_reset_hook_state_makes_a_rerun_identical(config):
    model, shape, fwd = build("dit")
    samplers.apply_acceleration(model, config)
    samplers.set_num_steps(model, 6)
    first, stats_first = trajectory(model, fwd, shape), samplers.stats(model)
    reset_hook_state(model)
    assert samplers.stats(model) == stats_first  # stats describe the last call until the next one starts
    second = trajectory(model, fwd, shape)
    assert torch.equal(first, second) and samplers.stats(model) == stats_first
    samplers.remove_acceleration(model)
    assert samplers.stats(model) == stats_first  # still readable after removal


def test_a_new_input_size_starts_a_fresh_state():
    """Cached residuals fit one input size: the first forward at a new size (a bottleneck stage, a
    batch change) computes every block, as the plain model does, instead of adding residuals of
    another shape; at an unchanged size the cache reuses them (threshold inf), so the equalities
    are not vacuous."""
    model, _, fwd = build("dit")
    g = torch.Generator().manual_seed(0)
    x = {size: torch.randn(2, 3, size, size, generator=g) for size in (8, 4)}
    nearby = x[8] + 0.01 * torch.randn(2, 3, 8, 8, generator=g)
    t = torch.tensor(500.0)
    with torch.no_grad():
        plain = {size: fwd(model, x[size], t, 0) for size in (8, 4)}
        plain_nearby = fwd(model, nearby, t, 0)
    blocks = len(model.transformer_blocks)
    with samplers.accelerated(model, FBCacheConfig(threshold=float("inf"))), torch.no_grad():
        samplers.set_num_steps(model, 10)
        for size in (8, 4, 8):  # every forward at another size than the last: nothing to reuse
            assert torch.equal(fwd(model, x[size], t, 0), plain[size]), size
        st = samplers.stats(model)
        assert (st.computed, st.skipped) == (3 * blocks, 0)
        reused = fwd(model, nearby, t, 0)  # the same size again: all but the first block reused
        st = samplers.stats(model)
        assert (st.computed, st.skipped) == (3 * blocks + 1, blocks - 1)
    assert not torch.equal(reused, plain_nearby)


def test_latte_blocks_are_ordered_as_they_run():
    model, shape, fwd = build("latte")
    with samplers.accelerated(model, CGTaylorConfig(threshold=float("inf"))):
        trajectory(model, fwd, shape, steps=2, contexts=("cond",))
        order = samplers.attach._attachment(model).states.states["cond"].last_order
    assert order == ["transformer_blocks.0", "temporal_transformer_blocks.0",
                     "transformer_blocks.1", "temporal_transformer_blocks.1"]


# ---------------------------------------------------------------- Taylor forecasts


@pytest.mark.parametrize("order", [0, 1, 2, 3])
def test_newton_forecast_is_exact_for_a_polynomial_of_its_order(order):
    coeffs = torch.randn(order + 1, 3, 4, dtype=torch.float64)
    poly = lambda s: sum(c * s**k for k, c in enumerate(coeffs))  # noqa: E731
    forecaster = Forecaster(order)
    for s in (0, 1, 3, 7, 8):  # uneven spacing, as after warm-up steps
        forecaster.update(s, poly(s))
    for s in (9, 10, 14):
        torch.testing.assert_close(forecaster.predict(s), poly(s), rtol=1e-9, atol=1e-9)
    if order >= 2:  # TaylorSeer's literal Σ Δ^i k^i / i! is not exact above order 1
        literal = Forecaster(order, "taylor")
        for s in (0, 2, 4, 6):
            literal.update(s, poly(s))
        assert (literal.predict(9) - poly(9)).abs().max() > 1e-3


def test_forecaster_handles_tuples_dtypes_and_restarts():
    f = Forecaster(1)
    f.update(0, (torch.zeros(2, dtype=torch.bfloat16), torch.ones(3)))
    f.update(2, (torch.full((2,), 2.0, dtype=torch.bfloat16), torch.ones(3)))
    a, b = f.predict(3)
    assert a.dtype == torch.bfloat16 and torch.equal(a, torch.full((2,), 3.0, dtype=torch.bfloat16))
    assert torch.equal(b, torch.ones(3))
    f.update(0, (torch.zeros(2, dtype=torch.bfloat16), torch.zeros(3)))  # an earlier step: a new trajectory
    assert f.steps == [0] and len(f.factors) == 1


class PolyFeature(nn.Module):
    """An 'attention' whose output is a polynomial in the step s (so forecasts can be exact)."""

    def __init__(self, degree: int, dim: int = 4):
        super().__init__()
        self.register_buffer("coeffs", torch.randn(degree + 1, dim, dtype=torch.float64))

    def forward(self, s: float) -> torch.Tensor:
        return sum(c * s**k for k, c in enumerate(self.coeffs))


class PolyBlock(nn.Module):
    def __init__(self, degree: int):
        super().__init__()
        self.attn1 = PolyFeature(degree)

    def forward(self, hidden_states, s):
        return hidden_states + self.attn1(s)


class PolyModel(nn.Module):
    def __init__(self, degree: int, depth: int = 3):
        super().__init__()
        self.transformer_blocks = nn.ModuleList([PolyBlock(degree) for _ in range(depth)])

    def forward(self, hidden_states, s):
        for block in self.transformer_blocks:
            hidden_states = block(hidden_states, s)
        return hidden_states


@pytest.mark.parametrize("order", [1, 2, 3])
def test_taylorseer_and_cg_taylor_forecast_polynomial_features_exactly(order):
    model = PolyModel(order)
    x = torch.randn(2, 4, dtype=torch.float64)
    reference = torch.stack([model(x, float(s)) for s in range(14)])
    for config in (TaylorSeerConfig(interval=4, order=order, warmup_steps=order + 1),
                   CGTaylorConfig(threshold=1e-6, order=order, first_order=order, num_inference_steps=14)):
        with samplers.accelerated(model, config):
            out = torch.stack([model(x, float(s)) for s in range(14)])
            st = samplers.stats(model)
        assert st.skipped > 0, config
        torch.testing.assert_close(out, reference, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("forecast_head", [True, False])
@pytest.mark.parametrize("method", ["cg-taylor", "taylorseer", "fbcache", "bwcache", "bwcache-per-block"])
def test_forecasting_policies_forecast_the_refine_branch_on_skipped_steps(method, forecast_head):
    """MultiResDiT's refine branch runs after the blocks: with forecast_head a skipped step does not
    run it (its stem conv is not called), without it every forward does; both stay close."""
    model, shape, fwd = build("multires", std=0.05)
    reference = trajectory(model, fwd, shape, steps=8, speed=0.2)
    ran = []
    handle = model.branches[0].stem.register_forward_hook(lambda *_: ran.append(1))
    config = {"cg-taylor": CGTaylorConfig(threshold=float("inf"), forecast_head=forecast_head),
              "taylorseer": TaylorSeerConfig(interval=3, order=1, forecast_head=forecast_head),
              "fbcache": FBCacheConfig(threshold=0.5, forecast_head=forecast_head),
              "bwcache": BWCacheConfig(threshold=float("inf"), per_block=False, final_steps_full=1,
                                       forecast_head=forecast_head),
              "bwcache-per-block": BWCacheConfig(threshold=float("inf"), per_block=True, final_steps_full=1,
                                                 forecast_head=forecast_head)}[method]
    with samplers.accelerated(model, config):
        samplers.set_num_steps(model, 8)
        out = trajectory(model, fwd, shape, steps=8, speed=0.2)
        st = samplers.stats(model)
    handle.remove()
    depth = len(model.transformer_blocks)
    if method in ("cg-taylor", "fbcache"):
        full_forwards = (st.computed - st.forwards) // (depth - 1)  # the first block runs in every forward
    else:
        full_forwards = st.computed // depth  # TaylorSeer and BWCache (all blocks in step here): full steps only
        assert st.computed % depth == 0
    assert 0 < full_forwards < st.forwards == 16
    assert len(ran) == (full_forwards if forecast_head else 16)
    # the stats count the head as it ran: computed where the stem ran, forecast elsewhere
    n_branches = len(model.branches)
    if forecast_head:
        assert (st.head_computed, st.head_skipped) == (len(ran) * n_branches, (16 - len(ran)) * n_branches)
        assert f"head forecast on {st.head_skipped} of {16 * n_branches}" in st.summary()
    else:
        assert (st.head_computed, st.head_skipped) == (0, 0) and "head" not in st.summary()
    assert 0 < relative(out, reference) < 0.1
    assert not [m for m in model.modules() if getattr(m, "_diffusers_hook", None) is not None and m._diffusers_hook.hooks]


class ShiftBlock(nn.Module):
    """Adds s to a (large) input: its residual changes by 1/s per step, its output hardly at all."""

    def forward(self, hidden_states, s):
        return hidden_states + s


class ShiftModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.transformer_blocks = nn.ModuleList([ShiftBlock() for _ in range(3)])

    def forward(self, hidden_states, s):
        for block in self.transformer_blocks:
            hidden_states = block(hidden_states, s)
        return hidden_states


def test_fbcache_gates_on_the_first_blocks_residual_not_its_output():
    model = ShiftModel()
    x = torch.full((2, 4), 1000.0)
    # the output moves by 1/1001 per step (would reuse at 0.05); the residual by >= 1/6 (must not)
    with samplers.accelerated(model, FBCacheConfig(threshold=0.05)):
        out = torch.stack([model(x, float(s)) for s in range(1, 7)])
        st = samplers.stats(model)
    assert st.skipped == 0
    assert torch.equal(out, torch.stack([x + 3 * s for s in range(1, 7)]))
    with samplers.accelerated(model, FBCacheConfig(threshold=0.5)):  # changes below 1/2 from s=3 on: reused
        for s in range(1, 7):
            model(x, float(s))
        assert samplers.stats(model).skipped > 0


def test_fbcache_residual_order_extrapolates_the_reused_residuals():
    """Residuals linear in the step: order 1 reproduces the uncached output on reused steps, order 0
    (the residual as it was) does not. The gate's residual 1 + s changes by (s - s_ref) / (1 + s_ref):
    at threshold 0.6 steps 0, 1, 3, 6, … are computed and the others reused."""
    torch.manual_seed(0)
    model = PolyModel(degree=1).double()
    model.transformer_blocks[0].attn1.coeffs.fill_(1.0)  # the gate's residual: 1 + s
    x = torch.randn(2, 4, dtype=torch.float64)
    reference = torch.stack([model(x, float(s)) for s in range(10)])
    outs = {}
    for order in (0, 1):
        with samplers.accelerated(model, FBCacheConfig(threshold=0.6, residual_order=order, forecast_head=False)):
            outs[order] = torch.stack([model(x, float(s)) for s in range(10)])
            assert samplers.stats(model).skipped > 0
    torch.testing.assert_close(outs[1], reference, rtol=1e-9, atol=1e-9)
    assert not torch.allclose(outs[0], reference, rtol=1e-3, atol=1e-3)


# ---------------------------------------------------------------- blocks returning two streams


class JointBlock(nn.Module):
    """Flux-style: returns (text, image) streams, both updated."""

    def __init__(self, dim: int = 8):
        super().__init__()
        self.attn = nn.Linear(2 * dim, 2 * dim)

    def forward(self, hidden_states, encoder_hidden_states, temb):
        joint = torch.cat([hidden_states, encoder_hidden_states], -1)
        h, e = torch.tanh(self.attn(joint) + temb).chunk(2, -1)
        return encoder_hidden_states + e, hidden_states + h


TransformerBlockRegistry.register(JointBlock, TransformerBlockMetadata(return_hidden_states_index=1,
                                                                       return_encoder_hidden_states_index=0))


class JointModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.transformer_blocks = nn.ModuleList([JointBlock() for _ in range(3)])

    def forward(self, hidden_states, t):
        encoder = torch.ones_like(hidden_states)
        for block in self.transformer_blocks:
            encoder, hidden_states = block(hidden_states, encoder, t)
        return hidden_states + encoder


@pytest.mark.parametrize("reuse", [False, True])
def test_blocks_returning_two_streams(reuse):
    model = randomize(JointModel())
    x = torch.randn(2, 5, 8)
    with torch.no_grad():
        reference = torch.stack([model(x, 0.001 * s) for s in range(6)])
        for config in (ALWAYS_REUSE if reuse else NEVER_REUSE):
            with samplers.accelerated(model, config):
                samplers.set_num_steps(model, 6)
                out = torch.stack([model(x, 0.001 * s) for s in range(6)])
                st = samplers.stats(model)
            if reuse:
                assert st.skipped > 0 and relative(out, reference) < 0.05, config
            else:
                assert torch.equal(out, reference), config


# ---------------------------------------------------------------- configs and attachment errors


@pytest.mark.parametrize("make,match", [
    (lambda: IntervalCacheConfig(interval=0), "interval must be an integer >= 1, got 0"),
    (lambda: FBCacheConfig(threshold=-0.1), "threshold must be a number >= 0, got -0.1"),
    (lambda: BWCacheConfig(threshold=-1), "threshold must be a number >= 0, got -1"),
    (lambda: BWCacheConfig(max_reuse=-2), "max_reuse must be an integer >= 0, got -2"),
    (lambda: BWCacheConfig(num_inference_steps=0), "num_inference_steps must be an integer >= 1, got 0"),
    (lambda: BWCacheConfig(forecast_head="no"), "forecast_head must be True or False, got 'no'"),
    (lambda: BWCacheConfig(head_order=-1), "head_order must be an integer >= 0, got -1"),
    (lambda: TaylorSeerConfig(order=-1), "order must be an integer >= 0, got -1"),
    (lambda: TaylorSeerConfig(interval=0), "interval must be an integer >= 1, got 0"),
    (lambda: TaylorSeerConfig(formula="euler"), "unknown formula 'euler'"),
    (lambda: CGTaylorConfig(threshold=float("nan")), "threshold must be a number >= 0, got nan"),
    (lambda: CGTaylorConfig(target="middle"), "unknown target 'middle'"),
    (lambda: CGTaylorConfig(forecast_head="yes"), "forecast_head must be True or False, got 'yes'"),
    (lambda: TaylorSeerConfig(forecast_head=1), "forecast_head must be True or False, got 1"),
    (lambda: FBCacheConfig(forecast_head=None), "forecast_head must be True or False, got None"),
    (lambda: FBCacheConfig(head_order=-1), "head_order must be an integer >= 0, got -1"),
    (lambda: FBCacheConfig(residual_order=-1), "residual_order must be an integer >= 0, got -1"),
    (lambda: samplers.make_config("magic"), "unknown cache method 'magic'"),
    (lambda: samplers.make_config("interval", threshold=0.1), "'interval' takes no threshold"),
    (lambda: samplers.make_config("none", interval=2), "'none' takes no interval"),
    (lambda: samplers.make_config("bwcache", threshold=0.1, max_ruse=2), "no option 'max_ruse'"),
    (lambda: BottleneckStage(scale=0, steps=0.5, start_sigma=1, end_sigma=0), "scale must be in"),
    (lambda: BottleneckStage(scale=1, steps=0.5, start_sigma=0.5, end_sigma=0.6), "start 0.5 end 0.6"),
    (lambda: BottleneckConfig(stages=(BottleneckStage(1, 0.5, 1, 0),)), "sum to 1, got 0.5"),
    (lambda: BottleneckConfig(stages=(BottleneckStage(0.5, 1, 1, 0),)), "scale 0.5"),
    (lambda: BottleneckConfig(stages=(BottleneckStage(1, 0.5, 1, 0.5), BottleneckStage(1, 0.5, 0.4, 0))),
     "starts at sigma 0.4 below"),
    (lambda: BottleneckConfig(up_mode="lanczos"), "unknown up_mode 'lanczos'"),
    (lambda: samplers.split_acceleration([FBCacheConfig(), IntervalCacheConfig()]), "at most one cache config"),
    (lambda: samplers.split_acceleration("fbcache"), "unknown config 'fbcache'"),
])
def test_bad_configs_are_refused_with_the_bad_value_named(make, match):
    with pytest.raises(ValueError, match=match.replace("(", r"\(")):
        make()


def test_make_config_maps_cli_names():
    assert samplers.make_config("none") is None
    assert samplers.make_config("interval", interval=3) == IntervalCacheConfig(3)
    assert samplers.make_config("bwcache", threshold=0.2, max_reuse=4) == BWCacheConfig(0.2, max_reuse=4)
    assert samplers.make_config("fbcache") == FBCacheConfig()
    assert samplers.make_config("taylorseer", interval=5, order=1) == TaylorSeerConfig(interval=5, order=1)
    assert samplers.make_config("cg-taylor", threshold=0.02, order=2) == CGTaylorConfig(0.02, order=2)
    split = samplers.split_acceleration([None, BottleneckConfig(), FBCacheConfig()])
    assert split == (FBCacheConfig(), BottleneckConfig())


def test_attach_errors_and_clean_removal():
    model, shape, fwd = build("dit")
    samplers.apply_acceleration(model, FBCacheConfig())
    with pytest.raises(ValueError, match="fbcache is already attached"):
        samplers.apply_acceleration(model, IntervalCacheConfig())
    with pytest.raises(ValueError, match="interval was asked for"):
        with samplers.accelerated(model, IntervalCacheConfig()):
            pass
    with samplers.accelerated(model, FBCacheConfig()):  # the same config: kept, and kept after
        pass
    assert samplers.attached_config(model) == FBCacheConfig()
    samplers.remove_acceleration(model)
    samplers.remove_acceleration(model)  # a no-op
    hooked = [m for m in model.modules() if getattr(m, "_diffusers_hook", None) is not None and m._diffusers_hook.hooks]
    assert hooked == []
    with pytest.raises(ValueError, match="bottleneck sampling changes the sampling loop"):
        samplers.apply_acceleration(model, BottleneckConfig())

    model.enable_cache(FirstBlockCacheConfig(threshold=0.1))
    with pytest.raises(ValueError, match="disable_cache first"):
        samplers.apply_acceleration(model, IntervalCacheConfig())
    model.disable_cache()
    with pytest.raises(ValueError, match="found 0"):
        samplers.apply_acceleration(nn.Linear(2, 2), IntervalCacheConfig())
    with pytest.raises(ValueError, match="cg-taylor needs at least 2 transformer blocks"):
        samplers.apply_acceleration(PolyModel(1, depth=1), CGTaylorConfig())


def test_blocks_called_outside_a_forward_just_run():
    model, shape, fwd = build("dit")
    block = model.transformer_blocks[0]
    x, cond, context = torch.randn(2, 16, 64), torch.randn(2, 6 * 64), torch.randn(2, 5, 64)
    plain = block(x, cond, encoder_hidden_states=context)
    with samplers.accelerated(model, FBCacheConfig(threshold=float("inf"))):
        for _ in range(2):
            assert torch.equal(plain, block(x, cond, encoder_hidden_states=context))
