"""The Shapes World autoencoder trainer (training/train_autoencoder.py) on a tiny AutoencoderKL."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL

import world
from training.autoencoder_eval import reconstruction_report
from training.train_autoencoder import (AutoencoderConfig, AutoencoderConfigError, export_vae,
                                        load_autoencoder_config, train, world_frames)

TINY = dict(in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 2,
            up_block_types=["UpDecoderBlock2D"] * 2, block_out_channels=[8, 16], layers_per_block=1,
            latent_channels=4, norm_num_groups=4, sample_size=32, mid_block_add_attention=False)


def tiny_config(**overrides) -> AutoencoderConfig:
    cfg = dict(model_kwargs=TINY, resolution=32, batch_size=4, lr=3e-3, warmup_steps=0, total_steps=1000,
               log_every=5, eval_every=0, eval_images=4, eval_clips=1, scale_samples=16, threads=1)
    cfg.update(overrides)
    return AutoencoderConfig.from_dict(cfg)


def test_round_trip_shapes():
    vae = tiny_config().build_model().eval()
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        posterior = vae.encode(x).latent_dist
        assert posterior.mean.shape == (3, 4, 16, 16)  # 2 blocks: 2x downsampling, 4 latent channels
        assert vae.decode(posterior.mode()).sample.shape == x.shape


@pytest.mark.parametrize("shift", [False, True])
def test_scaling_factor_saved_and_read_back(tmp_path, shift):
    cfg = tiny_config(shift_latents=shift)
    stats = export_vae(cfg.build_model(), cfg, tmp_path)
    assert (tmp_path / "vae" / "diffusion_pytorch_model.safetensors").is_file()
    loaded = AutoencoderKL.from_pretrained(tmp_path / "vae")
    assert loaded.config.scaling_factor == pytest.approx(1 / stats["std"])
    assert loaded.config.shift_factor == (pytest.approx(stats["mean"]) if shift else None)
    # the factor does what it promises: scaled latents (sampled, as export measures them; an
    # untrained posterior's noise dwarfs its mean) of other world frames have about unit std
    frames, _ = world_frames(np.random.default_rng(5), 8, 2, 4, "any", 32, 16)
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        z = loaded.encode(x).latent_dist.sample(generator=torch.Generator().manual_seed(1))
    z = (z - (loaded.config.shift_factor or 0.0)) * loaded.config.scaling_factor
    assert 0.8 < float(z.std()) < 1.25


def test_training_reduces_the_loss(tmp_path):
    result = train(tiny_config(), tmp_path, max_steps=40, echo=lambda m: None)
    first, last = np.mean(result["losses"][:5]), np.mean(result["losses"][-5:])
    assert last < 0.7 * first, (first, last)


def test_resume_continues_the_step_count_and_the_run(tmp_path):
    cfg = tiny_config()
    whole = train(cfg, tmp_path / "whole", max_steps=4, echo=lambda m: None)
    train(cfg, tmp_path / "split", max_steps=2, echo=lambda m: None)
    resumed = train(cfg, tmp_path / "split", max_steps=2, echo=lambda m: None)
    assert resumed["step"] == 4
    # same batches (a function of seed and step) and restored RNG: the same losses as one run
    np.testing.assert_allclose(resumed["losses"], whole["losses"][2:], rtol=1e-4)
    kinds = [json.loads(line)["kind"] for line in (tmp_path / "split" / "log.jsonl").read_text().splitlines()]
    assert "resume" in kinds


def test_budget_end_exports_with_eval(tmp_path):
    cfg = dataclasses.replace(tiny_config(), total_steps=3)
    result = train(cfg, tmp_path, echo=lambda m: None)
    assert result["step"] == 3 and set(result["eval"]) == {"image", "frame"}
    assert AutoencoderKL.from_pretrained(tmp_path / "vae").config.scaling_factor > 0


def test_config_refuses_unknown_keys_and_the_shipped_recipe_loads():
    with pytest.raises(AutoencoderConfigError, match="kl_wieght"):
        AutoencoderConfig.from_dict({"model_kwargs": TINY, "kl_wieght": 1e-6})
    cfg = load_autoencoder_config("configs/vae_shapes.json")
    assert cfg.resolution == 64 and cfg.threads == 1


def test_fidelity_figures_on_references_and_degraded_copies():
    frames, upright = world_frames(np.random.default_rng(0), 8, 2, 4, "heldout", 64, 16)
    perfect = reconstruction_report(frames, frames, upright)
    assert perfect["psnr"] == 60.0 and perfect["noise"] == 0.0 and perfect["clean"] == 1.0
    assert perfect["iou"] == perfect["ref_iou"] > 0.95  # the strict reader reads world renders back ~1.0
    noisy = np.clip(frames + np.random.default_rng(1).normal(0, 4, frames.shape), 0, 255).astype(np.uint8)
    grainy = reconstruction_report(frames, noisy, upright)
    assert grainy["noise"] > 3 and grainy["psnr"] < 45
    # the figures are the strict reader's own, not a copy of its definitions
    assert grainy["noise"] == pytest.approx(np.mean([world.read_image(im).noise for im in noisy]))
    blank = reconstruction_report(frames[:1], np.zeros_like(frames[:1]))
    assert blank["iou"] == 0.0 and blank["shape_kept"] == 0.0 and blank["clean"] == 0.0


def test_spinning_frames_are_read_with_turned_templates():
    rng = np.random.default_rng(0)
    spec = world.sample_video_spec(rng, "any")
    while spec.motion != "spinning" or spec.shape not in ("square", "cross"):
        spec = world.sample_video_spec(rng, "any")
    clip = world.render_video(spec, num_frames=16, resolution=64, rng=rng)
    turned = clip[3:4]  # a few steps into the turn: no longer axis-aligned
    as_spinning = reconstruction_report(turned, turned, np.array([False]))
    as_upright = reconstruction_report(turned, turned, np.array([True]))
    assert as_spinning["ref_iou"] > 0.9 > as_upright["ref_iou"], (as_spinning, as_upright)


def test_decoder_fine_tune_keeps_the_latent_space(tmp_path):
    """init_from + train_encoder false + latent_noise: the encoder, quant_conv and scaling factor
    stay exactly the trained autoencoder's (so DiTs trained on its latents stay valid); only the
    decoder learns."""
    base = tiny_config(total_steps=3)
    train(base, tmp_path / "base", echo=lambda m: None)
    trained = AutoencoderKL.from_pretrained(tmp_path / "base" / "vae")
    fine = tiny_config(init_from=str(tmp_path / "base" / "vae"), train_encoder=False, latent_noise=0.3,
                       total_steps=6)
    result = train(fine, tmp_path / "fine", echo=lambda m: None)
    tuned = AutoencoderKL.from_pretrained(tmp_path / "fine" / "vae")
    assert tuned.config.scaling_factor == trained.config.scaling_factor
    before, after = trained.state_dict(), tuned.state_dict()
    for name in before:
        same = torch.equal(before[name], after[name])
        if name.startswith(("encoder.", "quant_conv.")):
            assert same, f"{name} changed although the encoder is frozen"
    assert any(not torch.equal(before[n], after[n]) for n in before if n.startswith("decoder.")), "decoder never trained"
    assert result["step"] == 6


def test_decoder_fine_tune_options_are_checked(tmp_path):
    with pytest.raises(AutoencoderConfigError, match="train_encoder false needs init_from"):
        tiny_config(train_encoder=False)
    with pytest.raises(AutoencoderConfigError, match="latent_noise needs init_from"):
        tiny_config(latent_noise=0.2)
    with pytest.raises(AutoencoderConfigError, match="not a saved autoencoder folder"):
        tiny_config(init_from=str(tmp_path / "nowhere"))
    with pytest.raises(AutoencoderConfigError, match="latent_noise must be >= 0"):
        tiny_config(init_from=str(tmp_path), latent_noise=-1)
