"""training/: config checks, the flow-matching convention, the text cache, learning, exact resume
(in-process and across a SIGKILL of the real CLI), bf16 autocast on CPU, and the exported pipeline."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from diffusers import FlowMatchEulerDiscreteScheduler
from diffusers.utils import BaseOutput
from safetensors.torch import load_file

import dit
from tests.tiny_models import randomize
from pipelines.core.atomic import swap_in, temp_dir_for
from training.checkpoint import find_checkpoint
from training.config import ConfigError, TrainConfig, load_config
from training.data import batch_for_step
from training.flow_matching import flow_matching_loss, noisy_input, pool_to, shift_sigmas
from training.text_cache import TextEmbeddingCache
from training.train import main as train_main
from training.train import make_accelerator, train

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "t2i_tiny_test.json"
TINY_T2V = REPO / "configs" / "t2v_tiny_test.json"


def tiny_config(**changes) -> TrainConfig:
    return dataclasses.replace(load_config(TINY), **changes)


def quiet(*_args, **_kwargs):
    pass


@pytest.fixture
def text_cache(minilm):
    """A fresh (empty) cache over the session's MiniLM: each run starts cold, as a new process would."""
    return TextEmbeddingCache(*minilm, max_length=32)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, minilm):
    """40 steps of the tiny recipe (loss curve, final checkpoint, exported pipeline)."""
    out = tmp_path_factory.mktemp("run")
    cfg = tiny_config()
    result = train(cfg, out, echo=quiet, text_cache=TextEmbeddingCache(*minilm, max_length=32))
    return cfg, out, result


# ---------------------------------------------------------------------------- config


def test_shipped_configs_load_and_build():
    for path in (REPO / "configs" / "t2i_shapes.json", TINY):
        cfg = load_config(path)
        assert issubclass(cfg.model_class(), dit.DiT)
        assert cfg.model_kwargs["sample_size"] == cfg.resolution
    assert load_config(REPO / "configs" / "t2i_shapes.json").model_class() is dit.MultiResDiT
    assert load_config(TINY).build_model().config.sample_size == 32
    for path in (REPO / "configs" / "t2v_shapes.json", REPO / "configs" / "t2v_shapes_fast.json", TINY_T2V):
        cfg = load_config(path)
        assert cfg.task == "t2v" and cfg.model_class() is dit.VideoDiT
        assert cfg.model_kwargs["sample_size"] == cfg.resolution
        assert cfg.model_kwargs["num_frames"] == cfg.num_frames


def test_unknown_key_is_named(tmp_path):
    data = json.loads(TINY.read_text())
    data["ema_decy"] = 0.9
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['ema_decy'\]") as err:
        load_config(path)
    assert str(path) in str(err.value)


def test_missing_file_bad_json_missing_key_bad_value(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.json")
    (tmp_path / "broken.json").write_text("{\"model\": ")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(tmp_path / "broken.json")
    with pytest.raises(ConfigError, match=r"missing required key\(s\) \['model_kwargs'\]"):
        TrainConfig.from_dict({"model": "DiT"})
    data = json.loads(TINY.read_text())
    with pytest.raises(ConfigError, match="cfg_dropout must be in"):
        TrainConfig.from_dict({**data, "cfg_dropout": 1.5})
    with pytest.raises(ConfigError, match="lr_schedule must be one of"):
        TrainConfig.from_dict({**data, "lr_schedule": "linear"})
    with pytest.raises(ConfigError, match="'NoSuchDiT' is not a model class of the dit package"):
        TrainConfig.from_dict({**data, "model": "NoSuchDiT"})
    with pytest.raises(ConfigError, match="model_kwargs do not fit DiT"):
        TrainConfig.from_dict({**data, "model_kwargs": {"not_an_arg": 1}}).build_model()


def test_cli_bad_config_is_one_error_line(tmp_path, capsys):
    assert train_main(["--config", str(tmp_path / "missing.json"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: config file") and "missing.json" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_model_class_is_looked_up_by_name(monkeypatch):
    """A backbone added to `dit` later (MultiResDiT) is found the same way as DiT."""
    monkeypatch.setattr(dit, "BranchDiT", BranchDiT, raising=False)
    cfg = tiny_config(model="BranchDiT")
    assert isinstance(cfg.build_model(), BranchDiT)


# ---------------------------------------------------------------------------- objective


def test_flow_matching_matches_the_scheduler_convention():
    """x_t is the scheduler's scale_noise, and an Euler step with the true v stays on the path."""
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(2, 3, 8, 8, generator=g), torch.randn(2, 3, 8, 8, generator=g)
    sched = FlowMatchEulerDiscreteScheduler(shift=1.0)
    sched.set_timesteps(10)
    t = sched.timesteps[3]
    sigma = (t / 1000).expand(2)
    assert torch.allclose(noisy_input(x0, noise, sigma), sched.scale_noise(x0, t[None], noise), atol=1e-6)
    x_t = noisy_input(x0, noise, sigma)
    x_next = sched.step(noise - x0, t, x_t, return_dict=False)[0]
    assert torch.allclose(x_next, noisy_input(x0, noise, sched.sigmas[4].expand(2)), atol=1e-5)


def test_sigma_shift_is_the_schedulers_shift():
    """Training with sigma_shift s draws the noise levels a `shift=s` scheduler samples at."""
    shifted = FlowMatchEulerDiscreteScheduler(shift=3.0).sigmas  # its table of training noise levels
    unshifted = FlowMatchEulerDiscreteScheduler(shift=1.0).sigmas
    assert torch.allclose(shift_sigmas(unshifted, 3.0), shifted, atol=1e-6)
    assert torch.equal(shift_sigmas(unshifted, 1.0), unshifted)

    plain_batch, shifted_batch = batch_for_step(tiny_config(), 7), batch_for_step(tiny_config(sigma_shift=3.0), 7)
    assert torch.allclose(shifted_batch.sigma, shift_sigmas(plain_batch.sigma, 3.0))
    assert (shifted_batch.sigma > plain_batch.sigma).all()
    assert torch.equal(shifted_batch.x0, plain_batch.x0)
    with pytest.raises(ConfigError, match="sigma_shift must be positive, got -1"):
        TrainConfig.from_dict({**tiny_config().to_dict(), "sigma_shift": -1})


def test_sample_shift_sets_the_samplers_shift_only():
    """sample_shift changes the eval/export sampler, not the training noise levels."""
    cfg = tiny_config(sigma_shift=8.0, sample_shift=3.0)
    assert cfg.sampling_shift == 3.0 and tiny_config(sigma_shift=8.0).sampling_shift == 8.0
    assert torch.equal(batch_for_step(cfg, 7).sigma, batch_for_step(tiny_config(sigma_shift=8.0), 7).sigma)
    for bad in (0, -2, "3", True):
        with pytest.raises(ConfigError, match=f"sample_shift must be positive .*got {bad!r}"):
            TrainConfig.from_dict({**tiny_config().to_dict(), "sample_shift": bad})


def test_contrast_batches_share_noise_sigma_and_dropout_within_a_pair():
    cfg = tiny_config(contrast_attribute="shape", contrast_from_step=5, batch_size=8, cfg_dropout=0.5)
    plain = batch_for_step(tiny_config(batch_size=8, cfg_dropout=0.5), 4)
    before = batch_for_step(cfg, 4)  # before contrast_from_step: the ordinary batch, unchanged
    assert torch.equal(before.x0, plain.x0) and torch.equal(before.noise, plain.noise)
    assert not torch.equal(plain.noise[0], plain.noise[1]) and not before.twins
    seen_drop = False
    for step in range(5, 25):
        batch = batch_for_step(cfg, step)
        assert batch.twins
        assert torch.equal(batch.noise[0::2], batch.noise[1::2]) and torch.equal(batch.sigma[0::2], batch.sigma[1::2])
        assert not torch.equal(batch.noise[0], batch.noise[2])
        for a, b in zip(batch.captions[0::2], batch.captions[1::2]):
            assert (a == "") == (b == "")
            seen_drop |= a == ""
            if a:
                differ = set(a.replace(",", " ").split()) ^ set(b.replace(",", " ").split())
                assert len(differ) == 2 and differ <= {"circle", "square", "triangle", "cross"}
    assert seen_drop
    with pytest.raises(ConfigError, match="contrast_attribute must be null or.*'texture'"):
        TrainConfig.from_dict({**tiny_config().to_dict(), "contrast_attribute": "texture"})
    with pytest.raises(ConfigError, match="contrast_attribute needs an even batch_size, got 7"):
        TrainConfig.from_dict({**tiny_config().to_dict(), "contrast_attribute": "shape", "batch_size": 7})


def test_video_contrast_batches_share_noise_sigma_dropout_and_given_frames():
    cfg = load_config(TINY_T2V)
    plain = batch_for_step(dataclasses.replace(cfg, batch_size=8, cfg_dropout=0.5), 4)
    cfg = dataclasses.replace(cfg, batch_size=8, cfg_dropout=0.5, contrast_attribute="motion", contrast_from_step=5)
    before = batch_for_step(cfg, 4)  # before contrast_from_step: the ordinary batch, masks included
    assert torch.equal(before.x0, plain.x0) and torch.equal(before.given_mask, plain.given_mask) and not before.twins
    seen_drop = seen_given = False
    for step in range(5, 15):
        batch = batch_for_step(cfg, step)
        assert batch.twins and batch.x0.shape[:3] == (8, 3, cfg.num_frames)
        for field in (batch.noise, batch.sigma, batch.given_mask):
            assert torch.equal(field[0::2], field[1::2])
        seen_given |= bool(batch.given_mask.any())
        for a, b in zip(batch.captions[0::2], batch.captions[1::2]):
            assert (a == "") == (b == "")
            seen_drop |= a == ""
    assert seen_drop and seen_given
    with pytest.raises(ConfigError, match="for task 't2i', one of .*got 'motion'"):
        tiny_config(contrast_attribute="motion", batch_size=8).validate()


def test_pair_term_of_clips_covers_generated_frames_only():
    g = torch.Generator().manual_seed(3)
    x0, noise = torch.randn(4, 3, 4, 8, 8, generator=g), torch.randn(4, 3, 4, 8, 8, generator=g)
    guess = torch.randn(4, 3, 4, 8, 8, generator=g)
    given = torch.tensor([[True, False, False, False]] * 2 + [[True, True, False, True]] * 2)

    _, parts = flow_matching_loss(Oracle(guess), x0, noise, torch.full((4,), 0.5), {}, given_mask=given,
                                  pair_weight=1.0)
    err = guess - (noise - x0)
    # pair 0 generates frames 1-3, pair 1 only frame 2; the given frames' differences do not count
    want = 0.25 * 0.5 * ((err[0] - err[1])[:, 1:].pow(2).mean() + (err[2] - err[3])[:, 2].pow(2).mean())
    assert parts["pair"] == pytest.approx(want.item(), rel=1e-5)
    changed = guess.clone()
    changed[0, :, 0] += 5.0  # a given frame's output: not trained, so no pair term either
    _, again = flow_matching_loss(Oracle(changed), x0, noise, torch.full((4,), 0.5), {}, given_mask=given,
                                  pair_weight=1.0)
    assert again["pair"] == pytest.approx(parts["pair"], rel=1e-6)


def test_pool_to_is_the_velocity_of_the_pooled_trajectory():
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.rand(8, 3, 64, 64, generator=g) * 2 - 1, torch.randn(8, 3, 64, 64, generator=g)
    sigma = torch.rand(8, generator=g)
    for size in (32, 16, 8):
        k = 64 // size
        pooled = pool_to(noise - x0, (size, size))
        assert pooled.shape == (8, 3, size, size)
        # pooling commutes with the flow: x_t pooled moves along pool(noise) - pool(x0)
        xt_pooled = F.avg_pool2d(noisy_input(x0, noise, sigma), k)
        assert torch.allclose(xt_pooled, noisy_input(F.avg_pool2d(x0, k), F.avg_pool2d(noise, k), sigma), atol=1e-5)
        assert torch.allclose(pooled, F.avg_pool2d(noise, k) - F.avg_pool2d(x0, k), atol=1e-5)
    # an image part keeps its scale (no ·k blow-up): a constant image pools to itself
    assert torch.allclose(pool_to(torch.full((1, 3, 64, 64), 0.7), (8, 8)), torch.full((1, 3, 8, 8), 0.7))


@dataclass
class BranchOutput(BaseOutput):
    """sample: (B, 3, H, W); branch_samples: [(B, 3, H/2, W/2)] — a stand-in for MultiResDiT's output."""

    sample: torch.Tensor
    branch_samples: list | None = None


class BranchDiT(dit.DiT):
    """A DiT that also returns a half-resolution prediction, like the planned MultiResDiT."""

    def forward(self, hidden_states, timestep, **kwargs):
        kwargs.pop("return_dict", None)
        out = super().forward(hidden_states, timestep, **kwargs).sample
        return BranchOutput(sample=out, branch_samples=[F.avg_pool2d(out, 2) * 2])


class Oracle(torch.nn.Module):
    """Predicts a fixed velocity at full resolution and zeros at half resolution."""

    def __init__(self, v):
        super().__init__()
        self.v = v

    def forward(self, x_t, t, **cond):
        return BranchOutput(sample=self.v, branch_samples=[torch.zeros(self.v.shape[0], 3, 4, 4)])


def test_branch_losses_are_weighted_against_the_pooled_target():
    g = torch.Generator().manual_seed(1)
    x0, noise = torch.randn(2, 3, 8, 8, generator=g), torch.randn(2, 3, 8, 8, generator=g)
    target = noise - x0
    loss, parts = flow_matching_loss(Oracle(target), x0, noise, torch.full((2,), 0.5), {}, [0.25])
    expected = 0.25 * pool_to(target, (4, 4)).pow(2).mean()
    assert parts["mse"] == 0 and torch.allclose(loss, expected)
    with pytest.raises(ValueError, match="branch_loss_weights has 2 entries"):
        flow_matching_loss(Oracle(target), x0, noise, torch.full((2,), 0.5), {}, [0.25, 1.0])



def test_pair_term_is_the_antisymmetric_share_of_the_mse_and_is_added_with_its_weight():
    g = torch.Generator().manual_seed(2)
    x0, noise = torch.randn(4, 3, 8, 8, generator=g), torch.randn(4, 3, 8, 8, generator=g)
    guess = torch.randn(4, 3, 8, 8, generator=g)
    err = guess - (noise - x0)
    plain, parts0 = flow_matching_loss(Oracle(guess), x0, noise, torch.full((4,), 0.5), {})
    loss, parts = flow_matching_loss(Oracle(guess), x0, noise, torch.full((4,), 0.5), {}, pair_weight=3.0)
    symmetric = 0.25 * (err[0::2] + err[1::2]).pow(2).mean()
    assert torch.allclose(symmetric + parts["pair"], plain, atol=1e-6)  # the MSE splits exactly in two
    assert torch.allclose(loss, plain + 3.0 * torch.tensor(parts["pair"]), atol=1e-6)
    # a left-out pair does not count: only pair 0's difference remains
    _, masked = flow_matching_loss(Oracle(guess), x0, noise, torch.full((4,), 0.5), {}, pair_weight=1.0,
                                   pair_mask=torch.tensor([True, False]))
    assert masked["pair"] == pytest.approx(0.25 * (err[0] - err[1]).pow(2).mean().item(), rel=1e-5)
    with pytest.raises(ValueError, match="odd batch of 3"):
        flow_matching_loss(Oracle(guess[:3]), x0[:3], noise[:3], torch.full((3,), 0.5), {}, pair_weight=1.0)


def test_contrast_loss_weight_is_checked():
    base = tiny_config().to_dict()
    with pytest.raises(ConfigError, match="contrast_loss_weight must be >= 0, got -1"):
        TrainConfig.from_dict({**base, "contrast_attribute": "shape", "batch_size": 8, "contrast_loss_weight": -1})
    with pytest.raises(ConfigError, match="contrast_loss_weight 2 needs contrast_attribute"):
        TrainConfig.from_dict({**base, "contrast_loss_weight": 2})

# ---------------------------------------------------------------------------- data and text


def test_step_batches_are_a_function_of_seed_and_step():
    cfg = tiny_config(cfg_dropout=0.5)
    a, b, c = batch_for_step(cfg, 7), batch_for_step(cfg, 7), batch_for_step(cfg, 8)
    assert torch.equal(a.x0, b.x0) and torch.equal(a.noise, b.noise) and a.captions == b.captions
    assert not torch.equal(a.x0, c.x0)
    assert a.x0.shape == (16, 3, 32, 32) and a.sigma.shape == (16,) and 0 < a.sigma.min() < a.sigma.max() < 1
    assert "" in a.captions + c.captions  # CFG dropout happens
    assert not torch.equal(batch_for_step(cfg, 7, rank=1).x0, a.x0)  # each process its own data


def test_text_cache_matches_the_pipeline_and_is_batch_independent(minilm, text_cache):
    from training.export import make_pipeline

    captions = ["a large red circle in the top left", "", "a cyan cross on a gray background"]
    got = text_cache.lookup(captions)
    pipe = make_pipeline(dit.build_dit("DiT-N/4", sample_size=32, in_channels=3, condition="text",
                                       text_dim=384, pooled_dim=384), 32, *minilm)
    want = pipe.encode_prompt(captions, "cpu")
    assert torch.equal(got["encoder_attention_mask"], want["encoder_attention_mask"])
    assert torch.allclose(got["pooled_text"], want["pooled_text"], atol=1e-5)
    assert torch.allclose(got["encoder_hidden_states"], want["encoder_hidden_states"], rtol=1e-2, atol=1e-2)
    assert len(text_cache) == 3
    alone = TextEmbeddingCache(*minilm, max_length=32).lookup(captions[2:])
    assert torch.equal(alone["encoder_hidden_states"][0], got["encoder_hidden_states"][2])


# ---------------------------------------------------------------------------- training


def test_training_reduces_the_loss(trained_run, text_cache):
    cfg, out, result = trained_run
    losses = result.losses
    assert len(losses) == cfg.total_steps
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.7 * first, (first, last)

    # and on one fixed held-out batch (same images, noise and sigmas), not just on fresh batches
    batch = batch_for_step(cfg, 10**6)
    cond = text_cache.lookup(batch.captions)
    initial, trained = cfg.build_model().eval(), cfg.build_model().eval()
    trained.load_state_dict(load_file(out / "checkpoint" / "model.safetensors"))
    with torch.no_grad():
        before = flow_matching_loss(initial, batch.x0, batch.noise, batch.sigma, cond)[0].item()
        after = flow_matching_loss(trained, batch.x0, batch.noise, batch.sigma, cond)[0].item()
    print(f"loss: first 5 steps {first:.3f}, last 5 {last:.3f}; fixed batch {before:.3f} -> {after:.3f}")
    assert after < 0.75 * before, (before, after)

    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if r["kind"] == "train"]
    assert [r["step"] for r in train_rows] == list(range(1, cfg.total_steps + 1))
    assert {"loss", "lr", "steps_per_s", "elapsed"} <= set(train_rows[-1])
    evals = [r for r in rows if r["kind"] == "eval"]
    assert evals and {"shape", "colour", "joint", "n"} <= set(evals[-1]) and evals[-1]["n"] == 2


def test_a_fresh_run_fits_text_standardization_on_training_captions(trained_run, text_cache):
    """The statistics are measured once, on captions worded like the batches, and land in both
    the raw and the EMA weights (the resume test checks they survive a restart unchanged)."""
    from dit.embeddings import TextStandardizer
    from training.text_stats import fit_text_standardization, training_captions

    cfg, out, _ = trained_run
    captions = training_captions(cfg)
    assert captions == training_captions(cfg) and len(set(captions)) > 100
    assert any(a != b for a, b in zip(captions, training_captions(tiny_config(seed=1))))  # seeded by the config
    model = cfg.build_model()
    assert fit_text_standardization(model, captions, text_cache)
    for name in ("model", "ema"):
        saved = load_file(out / "checkpoint" / f"{name}.safetensors")
        for part in ("text_standardizer", "pooled_standardizer"):
            fitted: TextStandardizer = getattr(model, part)
            assert torch.equal(saved[f"{part}.mean"], fitted.mean) and torch.equal(saved[f"{part}.std"], fitted.std)
            assert saved[f"{part}.mean"].abs().max() > 0.01  # not the identity it starts as
    plain = dataclasses.replace(cfg, model_kwargs={**cfg.model_kwargs, "text_standardization": False}).build_model()
    assert not fit_text_standardization(plain, captions, text_cache)


def test_resume_reproduces_the_uninterrupted_run(tmp_path, minilm):
    cfg = tiny_config(total_steps=16, checkpoint_every=8)
    straight = train(cfg, tmp_path / "straight", echo=quiet, text_cache=TextEmbeddingCache(*minilm))
    half = train(cfg, tmp_path / "resumed", max_steps=8, echo=quiet, text_cache=TextEmbeddingCache(*minilm))
    assert half.step == 8 and find_checkpoint(tmp_path / "resumed") is not None
    rest = train(cfg, tmp_path / "resumed", echo=quiet, text_cache=TextEmbeddingCache(*minilm))
    assert rest.step == 16 and len(rest.losses) == 8
    assert rest.losses == straight.losses[8:]
    for name in ("model", "ema"):
        a = load_file(tmp_path / "straight" / "checkpoint" / f"{name}.safetensors")
        b = load_file(tmp_path / "resumed" / "checkpoint" / f"{name}.safetensors")
        assert a.keys() == b.keys()
        for key in a:
            assert torch.allclose(a[key], b[key], atol=1e-6, rtol=0), (name, key)
    opt_a = torch.load(tmp_path / "straight" / "checkpoint" / "optimizer.pt", weights_only=True)
    opt_b = torch.load(tmp_path / "resumed" / "checkpoint" / "optimizer.pt", weights_only=True)
    assert opt_a["lr_scheduler"] == opt_b["lr_scheduler"]
    assert torch.equal(opt_a["optimizer"]["state"][0]["exp_avg_sq"], opt_b["optimizer"]["state"][0]["exp_avg_sq"])


def test_contrast_loss_weight_starts_at_its_step(tmp_path, minilm):
    base = tiny_config(total_steps=3, contrast_attribute="shape", batch_size=8, cfg_dropout=0.0, eval_every=0)
    plain = train(base, tmp_path / "plain", echo=quiet, text_cache=TextEmbeddingCache(*minilm))
    weighted = train(dataclasses.replace(base, stages=[{"from_step": 3, "contrast_loss_weight": 5.0}]),
                     tmp_path / "weighted", echo=quiet, text_cache=TextEmbeddingCache(*minilm))
    assert weighted.losses[:2] == plain.losses[:2]  # same batches, same weights until step 3
    assert weighted.losses[2] > plain.losses[2] + 1e-6  # then the twins' error difference is added


def test_stages_change_the_recipe_from_their_step_and_are_checked():
    cfg = tiny_config(stages=[{"from_step": 3, "sigma_uniform_frac": 0.5}, {"from_step": 5, "cfg_dropout": 0.0}])
    assert cfg.at_step(2) is cfg
    assert cfg.at_step(3).sigma_uniform_frac == 0.5 and cfg.at_step(4).cfg_dropout == cfg.cfg_dropout
    assert cfg.at_step(9).sigma_uniform_frac == 0.5 and cfg.at_step(9).cfg_dropout == 0.0
    assert torch.equal(batch_for_step(cfg, 2).sigma, batch_for_step(tiny_config(), 2).sigma)
    base = tiny_config().to_dict()
    for stages, message in (
            ([{"from_step": 3, "lr": 1.0}], r"stages\[0\] may not change \['lr'\]"),
            ([{"from_step": 3}, {"from_step": 3}], r"stages\[1\].from_step must be an integer above .* \(3\), got 3"),
            ([{"cfg_dropout": 0.2}], r"stages\[0\].from_step must be an integer above .* got None"),
            ([{"from_step": 2, "cfg_dropout": 2.0}], r"stages\[0\].*cfg_dropout must be in \[0, 1\], got 2.0"),
            ("later", "stages must be null or a list of objects, got 'later'")):
        with pytest.raises(ConfigError, match=message):
            TrainConfig.from_dict({**base, "stages": stages})


def test_sigma_uniform_frac_puts_training_at_low_noise():
    base = tiny_config(batch_size=64, sigma_shift=8.0)
    mixed = dataclasses.replace(base, sigma_uniform_frac=0.5)
    low = lambda cfg: sum((batch_for_step(cfg, s).sigma < 0.3).sum().item() for s in range(1, 9))
    assert low(base) < 10 < 60 < low(mixed)  # shift 8 leaves ~1% below 0.3; half uniform gives ~15%


def test_wsd_schedule_is_constant_then_linear_to_zero():
    from training.lr_schedule import lr_factor

    factors = [lr_factor(s, 2, 10, "wsd", decay_steps=4) for s in range(10)]
    assert factors == [0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.75, 0.5, 0.25]
    base = tiny_config().to_dict()
    with pytest.raises(ConfigError, match="decay_steps must be 1..total_steps for lr_schedule 'wsd'.*got 0"):
        TrainConfig.from_dict({**base, "lr_schedule": "wsd"})
    with pytest.raises(ConfigError, match="decay_steps must be .* got 5 \\(lr_schedule 'constant'\\)"):
        TrainConfig.from_dict({**base, "decay_steps": 5})


def test_a_resumed_run_follows_its_new_lr_schedule(tmp_path, minilm):
    """Extending a constant-lr run with a decay phase: the checkpoint's saved schedule must not win."""
    cfg = tiny_config(total_steps=4, checkpoint_every=4, warmup_steps=0, lr_schedule="constant", eval_every=0)
    train(cfg, tmp_path, echo=quiet, text_cache=TextEmbeddingCache(*minilm))
    longer = dataclasses.replace(cfg, total_steps=8, lr_schedule="wsd", decay_steps=4, log_every=1)
    train(longer, tmp_path, echo=quiet, text_cache=TextEmbeddingCache(*minilm))
    rows = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    lrs = {r["step"]: r["lr"] for r in rows if r["kind"] == "train" and r["step"] > 4}
    assert lrs == pytest.approx({5: 0.75 * cfg.lr, 6: 0.5 * cfg.lr, 7: 0.25 * cfg.lr, 8: 0.0})

def test_resume_refuses_a_different_model(trained_run):
    cfg, out, _ = trained_run
    other = dataclasses.replace(cfg, model_kwargs={**cfg.model_kwargs, "depth": 3})
    with pytest.raises(ConfigError, match="checkpoint of a different model"):
        train(other, out, echo=quiet)


def test_interrupted_checkpoint_swap_is_recovered(tmp_path):
    final = tmp_path / "checkpoint"
    for step in (1, 2):
        tmp = temp_dir_for(final)
        (tmp / "state.json").write_text(json.dumps({"step": step}))
        swap_in(tmp, final)
    assert json.loads((final / "state.json").read_text())["step"] == 2
    os.replace(final, tmp_path / ".checkpoint.old")          # killed between the two renames
    (temp_dir_for(final) / "model.safetensors").write_bytes(b"half")  # and a half-written next one
    assert find_checkpoint(tmp_path) == final
    assert json.loads((final / "state.json").read_text())["step"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]


def test_cli_resumes_after_sigkill(tmp_path):
    """The real CLI, killed (SIGKILL) after its first checkpoint, continues where it stopped."""
    config = tmp_path / "cfg.json"
    config.write_text(json.dumps({**json.loads(TINY.read_text()), "total_steps": 400, "checkpoint_every": 4}))
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "training.train", "--config", str(config), "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (out / "checkpoint" / "state.json").is_file():
            assert proc.poll() is None, "the training CLI exited before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.05)
        time.sleep(0.3)  # let it train a little past the checkpoint
        assert proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    saved = json.loads((out / "checkpoint" / "state.json").read_text())["step"]
    assert saved >= 4 and saved % 4 == 0

    rerun = subprocess.run(cmd + ["--max-steps", str(saved + 3)], cwd=REPO, capture_output=True, text=True,
                           timeout=120)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"resumed from {out / 'checkpoint'} at step {saved}" in rerun.stdout
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["kind"] == "train"] == list(range(1, saved + 4))
    assert [r["step"] for r in rows if r["kind"] == "resume"] == [saved]
    assert json.loads((out / "checkpoint" / "state.json").read_text())["step"] == saved + 3


# ---------------------------------------------------------------------------- precision and export


@pytest.fixture
def fresh_accelerate_state():
    """accelerate keeps one process-wide state; a test that changes mixed precision resets it."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(True)
    yield
    AcceleratorState._reset_state(True)


def test_bf16_autocasts_matmuls_on_cpu_and_keeps_branch_outputs(fresh_accelerate_state, monkeypatch, tmp_path,
                                                                 text_cache):
    monkeypatch.setattr(dit, "BranchDiT", BranchDiT, raising=False)
    cfg = tiny_config(mixed_precision="bf16", model="BranchDiT", branch_loss_weights=[0.5], total_steps=2)
    accelerator = make_accelerator(cfg)
    model = accelerator.prepare(cfg.build_model())
    seen = []
    model.transformer_blocks[0].mlp[0].register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    batch = batch_for_step(cfg, 1)
    loss, parts = flow_matching_loss(model, batch.x0, batch.noise, batch.sigma, text_cache.lookup(batch.captions),
                                     cfg.branch_loss_weights)
    loss.backward()
    assert seen == [torch.bfloat16]  # the linear really ran in bf16
    assert loss.dtype == torch.float32 and "branch0" in parts  # branch_samples survive accelerate's fp32 cast
    assert all(p.dtype == torch.float32 and p.grad.dtype == torch.float32 for p in model.parameters())
    result = train(cfg, tmp_path / "bf16", echo=quiet, accelerator=accelerator, text_cache=text_cache)
    assert result.step == 2 and all(torch.isfinite(torch.tensor(result.losses)))


def test_exported_pipeline_loads_and_generates(trained_run, tmp_path):
    from pipelines.t2i import TextToImagePipeline
    from pipelines.core.text_encoder import MINILM_PACKAGE
    from training.export import main as export_main

    cfg, out, _ = trained_run
    assert export_main(["--run", str(out), "--out", str(tmp_path / "exported")]) == 0
    for folder in (out / "pipeline", tmp_path / "exported"):
        index = json.loads((folder / "model_index.json").read_text())
        assert index["text_encoder"] == [None, None] and index["text_encoder_package"] == MINILM_PACKAGE
        assert index["text_max_length"] == cfg.text_max_length
    assert not list((tmp_path / "exported").rglob("*text_encoder*"))
    # the end-of-run export is the EMA model, as the CLI export is
    a = load_file(out / "pipeline" / "transformer" / "diffusion_pytorch_model.safetensors")
    b = load_file(tmp_path / "exported" / "transformer" / "diffusion_pytorch_model.safetensors")
    ema = load_file(out / "checkpoint" / "ema.safetensors")
    assert all(torch.equal(a[k], b[k]) and torch.equal(a[k], ema[k]) for k in ema)

    pipe = TextToImagePipeline.from_pretrained(tmp_path / "exported")
    assert pipe.text_encoder is not None and isinstance(pipe.scheduler, FlowMatchEulerDiscreteScheduler)
    pipe.set_progress_bar_config(disable=True)
    image = pipe("a large red circle in the top left", num_inference_steps=3,
                 generator=torch.Generator().manual_seed(0), output_type="np").images
    assert image.shape == (1, 32, 32, 3) and 0 <= image.min() and image.max() <= 1


def test_export_of_a_run_without_checkpoint_is_a_clear_error(tmp_path, capsys):
    from training.export import main as export_main

    assert export_main(["--run", str(tmp_path), "--out", str(tmp_path / "x")]) == 2
    assert "no checkpoint in" in capsys.readouterr().err


def test_export_sample_shift_overrides_the_recipes(trained_run, tmp_path, capsys):
    from training.export import main as export_main

    cfg, out, _ = trained_run
    shift_of = lambda folder: json.loads((folder / "scheduler" / "scheduler_config.json").read_text())["shift"]  # noqa: E731
    assert export_main(["--run", str(out), "--out", str(tmp_path / "recipe")]) == 0
    assert shift_of(tmp_path / "recipe") == cfg.sampling_shift
    assert export_main(["--run", str(out), "--out", str(tmp_path / "three"), "--sample-shift", "3"]) == 0
    assert shift_of(tmp_path / "three") == 3.0
    assert export_main(["--run", str(out), "--out", str(tmp_path / "bad"), "--sample-shift", "0"]) == 2
    assert "--sample-shift must be positive, got 0" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


# ---------------------------------------------------------------------------- text-to-video


def test_video_batches_carry_vdt_masks():
    cfg = load_config(TINY_T2V)
    batch = batch_for_step(cfg, 3)
    b, f, r = cfg.batch_size, cfg.num_frames, cfg.resolution
    assert batch.x0.shape == (b, 3, f, r, r) and batch.noise.shape == batch.x0.shape
    assert batch.given_mask.shape == (b, f) and batch.given_mask.dtype == torch.bool
    assert not batch.given_mask.all(dim=1).any()  # every clip leaves something to generate
    again = batch_for_step(cfg, 3)
    assert torch.equal(again.x0, batch.x0) and torch.equal(again.given_mask, batch.given_mask)
    wide = dataclasses.replace(cfg, batch_size=64, mask_mode_weights={"predict": 1.0})
    masks = batch_for_step(wide, 1).given_mask
    assert masks[:, 0].all() and not masks[:, -1].any()  # predict: a prefix is given, never the last frame


def test_video_loss_covers_only_generated_frames(text_cache):
    cfg = load_config(TINY_T2V)
    batch = batch_for_step(cfg, 1)
    cond = text_cache.lookup(batch.captions)
    model = randomize(cfg.build_model().eval())
    given = torch.zeros_like(batch.given_mask)
    given[:, : cfg.num_frames // 2] = True
    seen = {}

    def spy(x_t, t, **kw):
        seen["x_t"], seen["given"] = x_t, kw.get("given_mask")
        return model(x_t, t, **kw)

    with torch.no_grad():
        loss = flow_matching_loss(spy, batch.x0, batch.noise, batch.sigma, cond, cfg.branch_loss_weights, given)[0]
        # given frames enter clean and the model is told which they are
        half = cfg.num_frames // 2
        assert torch.equal(seen["x_t"][:, :, :half], batch.x0[:, :, :half])
        assert not torch.equal(seen["x_t"][:, :, half:], batch.x0[:, :, half:])
        assert seen["given"] is given
        # changing the clean frames' noise (unused there) leaves the loss alone only through the input;
        # the targets of given frames do not count: a model perfect on generated frames has 0 loss there
        noise2 = batch.noise.clone()
        noise2[:, :, :half] += 5.0
        x_t_seen = seen["x_t"]
        loss2 = flow_matching_loss(spy, batch.x0, noise2, batch.sigma, cond, cfg.branch_loss_weights, given)[0]
        assert torch.equal(seen["x_t"], x_t_seen)  # same model input...
        assert torch.allclose(loss, loss2)          # ...and the changed targets of given frames do not count


def test_video_training_reduces_the_loss_and_exports_a_t2v_pipeline(tmp_path, text_cache):
    from pipelines.t2v import TextToVideoPipeline

    cfg = dataclasses.replace(load_config(TINY_T2V), total_steps=30, checkpoint_every=30)
    result = train(cfg, tmp_path / "run", echo=quiet, text_cache=text_cache)
    first, last = sum(result.losses[:5]) / 5, sum(result.losses[-5:]) / 5
    assert last < 0.8 * first, (first, last)
    evals = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()
             if json.loads(line)["kind"] == "eval"]
    assert evals and {"motion", "colour", "shape", "joint"} <= set(evals[-1]) and evals[-1]["n"] == 2
    pipe = TextToVideoPipeline.from_pretrained(tmp_path / "run" / "pipeline")
    pipe.set_progress_bar_config(disable=True)
    frames = pipe("a red square moving left", num_inference_steps=2, output_type="np",
                  generator=torch.Generator().manual_seed(0)).frames
    assert frames.shape == (1, cfg.num_frames, cfg.resolution, cfg.resolution, 3)


def test_video_resume_reproduces_the_uninterrupted_run(tmp_path, minilm):
    cfg = dataclasses.replace(load_config(TINY_T2V), total_steps=8, checkpoint_every=4)
    straight = train(cfg, tmp_path / "straight", echo=quiet, text_cache=TextEmbeddingCache(*minilm))
    train(cfg, tmp_path / "resumed", max_steps=4, echo=quiet, text_cache=TextEmbeddingCache(*minilm))
    rest = train(cfg, tmp_path / "resumed", echo=quiet, text_cache=TextEmbeddingCache(*minilm))
    assert rest.losses == straight.losses[4:]


def test_a_video_run_can_start_from_an_image_model(tmp_path, text_cache):
    """init_from: a fresh t2v run begins with the image model's weights and text statistics (dit.inflate)."""
    from dit import MultiResDiT
    from pipelines.t2v import TextToVideoPipeline

    video_kwargs = load_config(TINY_T2V).model_kwargs
    image = MultiResDiT(sample_size=32, patch_size=8, hidden_size=32, depth=2, num_heads=2, text_dim=384,
                        pooled_dim=384, text_standardization=True, branch_channels=(16, 8, 8), branch_depths=(1, 1, 1))
    randomize(image, seed=3, std=0.05)
    image.text_standardizer.fit(torch.randn(50, 384) + 2)
    image.save_pretrained(tmp_path / "image" / "transformer")
    cfg = dataclasses.replace(load_config(TINY_T2V), init_from=str(tmp_path / "image"))
    said = []
    train(cfg, tmp_path / "run", max_steps=0, echo=said.append, text_cache=text_cache)
    assert any("started from the image model" in line for line in said), said
    video = TextToVideoPipeline.from_pretrained(tmp_path / "run" / "pipeline").transformer
    assert video.config.patch_size == video_kwargs["patch_size"] == 4
    torch.testing.assert_close(video.patch_embed.weight,
                               image.patch_embed.weight.reshape(32, 3, 4, 2, 4, 2).sum(dim=(3, 5)))
    torch.testing.assert_close(video.transformer_blocks[1].mlp[0].weight, image.transformer_blocks[1].mlp[0].weight)
    torch.testing.assert_close(video.branches[1].head.weight, image.branches[1].head.weight)
    torch.testing.assert_close(video.text_standardizer.mean, image.text_standardizer.mean)  # copied, not refitted


def test_a_video_run_can_continue_a_trained_video_model(tmp_path, text_cache):
    """init_from a video model of the same config: a second phase starts from its weights exactly;
    one of another config is refused naming the field."""
    import dit

    cfg = load_config(TINY_T2V)
    first = cfg.build_model()
    randomize(first, seed=5, std=0.05)
    first.save_pretrained(tmp_path / "phase1" / "pipeline" / "transformer")
    said = []
    train(dataclasses.replace(cfg, init_from=str(tmp_path / "phase1" / "pipeline")), tmp_path / "run", max_steps=0,
          echo=said.append, text_cache=text_cache)
    assert any("continued the model" in line for line in said), said
    second = dit.VideoDiT.from_pretrained(tmp_path / "run" / "pipeline" / "transformer")
    for name, value in first.state_dict().items():
        torch.testing.assert_close(second.state_dict()[name], value, rtol=0, atol=0, msg=name)

    other = dit.VideoDiT(**{**cfg.model_kwargs, "depth": cfg.model_kwargs["depth"] + 1})
    other.save_pretrained(tmp_path / "deeper")
    with pytest.raises(ConfigError, match=r"depth \(3 vs 2\)"):  # the tiny recipe's depth is 2
        train(dataclasses.replace(cfg, init_from=str(tmp_path / "deeper")), tmp_path / "run2", max_steps=0,
              echo=quiet, text_cache=text_cache)


def test_init_from_a_missing_or_unfitting_model_is_a_clear_error(tmp_path, text_cache):
    from dit import MultiResDiT

    cfg = dataclasses.replace(load_config(TINY_T2V), init_from=str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match="nowhere"):
        train(cfg, tmp_path / "run", max_steps=0, echo=quiet, text_cache=text_cache)
    MultiResDiT(sample_size=32, patch_size=8, hidden_size=48, depth=2, num_heads=2, text_dim=384, pooled_dim=384,
                text_standardization=True).save_pretrained(tmp_path / "wide")
    cfg = dataclasses.replace(cfg, init_from=str(tmp_path / "wide"))
    with pytest.raises(ConfigError, match="hidden_size"):
        train(cfg, tmp_path / "run2", max_steps=0, echo=quiet, text_cache=text_cache)
    with pytest.raises(ConfigError, match="init_from"):
        TrainConfig.from_dict({**load_config(REPO / "configs" / "t2i_tiny_test.json").to_dict(), "init_from": ""})


def test_an_image_run_can_continue_a_trained_image_model_only(tmp_path, text_cache):
    """init_from for t2i: an image model of the same config is continued exactly; a video model is refused."""
    import dit

    cfg = load_config(TINY)
    first = randomize(cfg.build_model(), seed=6, std=0.05)
    first.save_pretrained(tmp_path / "phase1" / "transformer")
    said = []
    train(dataclasses.replace(cfg, init_from=str(tmp_path / "phase1")), tmp_path / "run", max_steps=0,
          echo=said.append, text_cache=text_cache)
    assert any("continued the model" in line for line in said), said
    second = dit.DiT.from_pretrained(tmp_path / "run" / "pipeline" / "transformer")
    for name, value in first.state_dict().items():
        torch.testing.assert_close(second.state_dict()[name], value, rtol=0, atol=0, msg=name)
    load_config(TINY_T2V).build_model().save_pretrained(tmp_path / "video")
    with pytest.raises(ConfigError, match="can only continue a saved DiT"):
        train(dataclasses.replace(cfg, init_from=str(tmp_path / "video")), tmp_path / "run2", max_steps=0,
              echo=quiet, text_cache=text_cache)


def test_transplant_takes_every_module_that_fits_from_a_finer_video_model(tmp_path, text_cache):
    """transplant_from: after init_from, a video model at 2x coarser patches takes a finer video model's
    modules whose tensors fit (trunk, temporal attention, given embedding); the patch embedding and
    the extra refine branch stay as init_from left them. Another class or nothing fitting is refused."""
    import dit
    from dit import MultiResDiT

    cfg = load_config(TINY_T2V)  # patch 4, branches (16, 8)
    image = MultiResDiT(sample_size=32, patch_size=4, hidden_size=32, depth=2, num_heads=2, text_dim=384,
                        pooled_dim=384, text_standardization=True, branch_channels=(16, 8), branch_depths=(1, 1))
    randomize(image, seed=3, std=0.05)
    image.save_pretrained(tmp_path / "image")
    finer = dit.VideoDiT(**{**cfg.model_kwargs, "patch_size": 2, "branch_channels": [16], "branch_depths": [1]})
    randomize(finer, seed=4, std=0.05)
    finer.save_pretrained(tmp_path / "finer")
    said = []
    train(dataclasses.replace(cfg, init_from=str(tmp_path / "image"), transplant_from=[str(tmp_path / "finer")]),
          tmp_path / "run", max_steps=0, echo=said.append, text_cache=text_cache)
    took = [line for line in said if line.startswith("took from")]
    assert took and "given_embedding" in took[0] and "transformer_blocks.1" in took[0], said
    video = dit.VideoDiT.from_pretrained(tmp_path / "run" / "pipeline" / "transformer")
    for name in ("given_embedding", "transformer_blocks.1.attn_temporal.to_q.weight",
                 "transformer_blocks.0.mlp.0.weight", "adaln_single.weight", "branches.0.head.weight"):
        torch.testing.assert_close(video.state_dict()[name], finer.state_dict()[name], rtol=0, atol=0, msg=name)
    torch.testing.assert_close(video.patch_embed.weight, image.patch_embed.weight, rtol=0, atol=0)  # 4x4 kept
    torch.testing.assert_close(video.patch_embed.bias, image.patch_embed.bias, rtol=0, atol=0)  # with its weight
    torch.testing.assert_close(video.branches[1].head.weight, image.branches[1].head.weight, rtol=0, atol=0)

    image.save_pretrained(tmp_path / "image_only")
    with pytest.raises(ConfigError, match="transplant_from .*MultiResDiT"):
        train(dataclasses.replace(cfg, transplant_from=[str(tmp_path / "image_only")]), tmp_path / "run2",
              max_steps=0, echo=quiet, text_cache=text_cache)
    dit.VideoDiT(**{**cfg.model_kwargs, "hidden_size": 16, "text_dim": 16, "pooled_dim": 16,
                    "branch_channels": [12, 4], "in_channels": 1}).save_pretrained(
        tmp_path / "narrow")
    with pytest.raises(ConfigError, match="no module"):
        train(dataclasses.replace(cfg, transplant_from=[str(tmp_path / "narrow")]), tmp_path / "run3",
              max_steps=0, echo=quiet, text_cache=text_cache)
    with pytest.raises(ConfigError, match="transplant_from"):
        TrainConfig.from_dict({**cfg.to_dict(), "transplant_from": "runs/t2v"})


def test_low_res_steps_train_on_area_downsampled_renders():
    """low_res_frac: that share of steps draws the same scenes, area-averaged to low_res (noise to match)."""
    full = load_config(TINY)
    low = dataclasses.replace(full, low_res=16, low_res_frac=1.0)
    half = dataclasses.replace(full, low_res=16, low_res_frac=0.5)
    for step in (1, 2, 3):
        a, b = batch_for_step(full, step), batch_for_step(low, step)
        assert b.x0.shape == (full.batch_size, 3, 16, 16) and b.noise.shape == b.x0.shape
        torch.testing.assert_close(b.x0, torch.nn.functional.avg_pool2d(a.x0, 2))
    sides = {batch_for_step(half, step).x0.shape[-1] for step in range(1, 21)}
    assert sides == {16, 32}
    for bad, message in (({"low_res": 24}, "low_res must be null or a positive divisor"),
                         ({"low_res": 32}, "low_res must be null or a positive divisor"),
                         ({"low_res_frac": 0.5}, "low_res_frac 0.5 needs low_res"),
                         ({"low_res": 16, "low_res_frac": 1.5}, "low_res_frac must be in [0, 1]")):
        with pytest.raises(ConfigError, match=re.escape(message)):
            TrainConfig.from_dict({**full.to_dict(), **bad})


def test_a_run_with_low_res_steps_trains(tmp_path, text_cache):
    cfg = dataclasses.replace(load_config(TINY), low_res=16, low_res_frac=0.5, total_steps=4, checkpoint_every=4)
    result = train(cfg, tmp_path / "run", echo=quiet, text_cache=text_cache)
    assert result.step == 4 and all(math.isfinite(x) for x in result.losses)
