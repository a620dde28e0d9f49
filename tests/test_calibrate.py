"""samplers.calibrate and --quality-target: the cheapest cache above a PSNR target, else none."""

from __future__ import annotations

import pytest
import torch

from pipelines.t2i.cli import main as t2i_main
from pipelines.t2v.cli import main as t2v_main
from samplers import FBCacheConfig, IntervalCacheConfig, TaylorSeerConfig
import samplers
from samplers.calibrate import Trial, WorkCosts, calibrate, fits, pick, timed_reference, trial_cost

from .sampler_helpers import build, trajectory

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_pick_takes_the_cheapest_above_the_target():
    a, b, c = FBCacheConfig(0.05), FBCacheConfig(0.2), IntervalCacheConfig(2)
    trials = [Trial(a, 40.0, 0.8), Trial(b, 31.0, 0.4), Trial(c, 25.0, 0.5), Trial(a, 45.0, 0.4)]
    assert pick(trials, 30) == Trial(a, 45.0, 0.4)  # ties on cost: the more faithful one
    assert pick(trials, 42) == Trial(a, 45.0, 0.4)
    assert pick(trials, 50) == Trial(None, float("inf"), 1.0)  # nothing reaches it: no cache
    assert pick([], 10).config is None


def test_calibrate_on_a_pipeline(tiny_t2i):
    def sample(config):
        return tiny_t2i("a red circle", num_inference_steps=6, generator=torch.Generator().manual_seed(0),
                        output_type="pt", acceleration=config).images

    candidates = [FBCacheConfig(threshold=0.0), IntervalCacheConfig(2), TaylorSeerConfig(interval=3)]
    choice, trials = calibrate(sample, tiny_t2i.transformer, target_psnr=1.0, candidates=candidates)
    assert [t.config for t in trials] == candidates
    assert trials[0].psnr == 100.0 and trials[0].cost_fraction == 1.0  # never reuses: identical
    assert choice == min(trials[1:], key=lambda t: t.cost_fraction) and choice.cost_fraction < 1
    strict, _ = calibrate(sample, tiny_t2i.transformer, target_psnr=1000.0, candidates=candidates[1:])
    assert strict.config is None


def test_work_costs_weigh_blocks_heads_and_the_rest():
    costs = WorkCosts(block=1.0, head=2.0, rest=1.0, blocks=10, heads=5, forwards=5)
    assert costs.fraction(10, 5) == 1.0
    assert costs.fraction(5, 0) == pytest.approx((1 + 5) / (1 + 10 + 10))


def test_a_cache_that_forecasts_the_head_is_charged_for_the_heads_it_ran_only():
    """On a model with a refine branch, the reference run times blocks and head; a trial is charged
    for the blocks it computed plus the heads that ran: all of them unless the policy forecasts them."""
    model, shape, fwd = build("multires", std=0.05)

    def sample(config):
        if config is None:
            return trajectory(model, fwd, shape, steps=8, speed=0.2)
        with samplers.accelerated(model, config):
            samplers.set_num_steps(model, 8)
            return trajectory(model, fwd, shape, steps=8, speed=0.2)

    _, costs = timed_reference(sample, model)
    assert (costs.forwards, costs.blocks, costs.heads) == (16, 16 * len(model.transformer_blocks), 16 * len(model.branches))
    assert costs.block > 0 and costs.head > 0
    charged = {}
    for forecast_head in (True, False):
        config = FBCacheConfig(threshold=0.5, forecast_head=forecast_head)
        sample(config)
        st = samplers.stats(model)
        assert st.skipped > 0
        heads = st.head_computed if forecast_head else costs.heads
        if forecast_head:
            assert 0 < st.head_computed < costs.heads
        charged[forecast_head] = trial_cost(costs, model, config)
        assert charged[forecast_head] == costs.fraction(st.total - st.skipped, heads) < 1
    assert charged[True] < charged[False]


def test_fits_knows_which_policies_need_two_blocks(tiny_t2i):
    assert fits(tiny_t2i.transformer, FBCacheConfig())
    tiny_t2i.transformer.transformer_blocks = tiny_t2i.transformer.transformer_blocks[:1]
    assert not fits(tiny_t2i.transformer, FBCacheConfig()) and fits(tiny_t2i.transformer, IntervalCacheConfig())


def test_t2i_cli_quality_target_picks_and_says_so(tiny_t2i_dir, tmp_path, capsys):
    code = t2i_main(["--model", str(tiny_t2i_dir), "--prompt", "a red circle", "--out", str(tmp_path / "x.png"),
                     "--steps", "4", "--quality-target", "1"])
    err = capsys.readouterr().err
    assert code == 0 and "quality target 1 dB: " in err and "of the uncached time" in err, err
    assert (tmp_path / "x.png").exists()


def test_t2v_cli_quality_target_out_of_reach_runs_uncached(tiny_t2v_dir, tmp_path, capsys):
    code = t2v_main(["--model", str(tiny_t2v_dir), "--prompt", "a red circle moving up", "--out",
                     str(tmp_path / "c.gif"), "--steps", "3", "--quality-target", "1000"])
    err = capsys.readouterr().err
    assert code == 0 and "quality target 1000 dB: no cache reaches it" in err, err


@pytest.mark.parametrize("flags,expected", [
    (["--quality-target", "abc"], "--quality-target must be a number of dB, got 'abc'"),
    (["--quality-target", "0"], "--quality-target must be > 0 dB, got 0"),
    (["--quality-target", "30", "--cache", "fbcache"], "--quality-target picks the cache itself; drop --cache"),
])
def test_bad_quality_targets_are_one_error_line(tiny_t2i_dir, tmp_path, capsys, flags, expected):
    code = t2i_main(["--model", str(tiny_t2i_dir), "--prompt", "a red circle", "--out", str(tmp_path / "x.png"),
                     *flags])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and lines == [f"error: {expected}"], lines
