"""VideoDiT: shapes, positions in space and time, given frames, limits, save/load, cache hooks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from diffusers.hooks import FirstBlockCacheConfig

from dit import VIDEO_DIT_PRESETS, VideoDiT, video_dit_config
from pipelines.t2v import SHIPPED_T2V

from .tiny_models import randomize

REPO = Path(__file__).resolve().parents[1]


def tiny(**overrides) -> VideoDiT:
    cfg = dict(sample_size=8, num_frames=6, patch_size=2, hidden_size=32, depth=2, num_heads=2, text_dim=16,
               pooled_dim=16, branch_channels=(8,), branch_depths=(1,))
    cfg.update(overrides)
    return randomize(VideoDiT(**cfg), std=0.1).eval()


def inputs(b=2, f=4, size=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return dict(hidden_states=torch.randn(b, 3, f, size, size, generator=g), timestep=torch.tensor([300.0, 700.0][:b]),
                encoder_hidden_states=torch.randn(b, 5, 16, generator=g),
                encoder_attention_mask=torch.tensor([[1, 1, 1, 0, 0]] * b), pooled_text=torch.randn(b, 16, generator=g))


@pytest.mark.parametrize("overrides", [dict(), dict(branch_channels=(), branch_depths=()),
                                       dict(attention_layout="full"), dict(patch_size=4, branch_channels=(8, 8),
                                                                           branch_depths=(1, 1))])
def test_output_shapes(overrides):
    model = tiny(**overrides)
    with torch.no_grad():
        out = model(**inputs())
        (tup,) = model(**inputs(f=6), return_dict=False)
        scalar_t = model(**{**inputs(f=1), "timestep": 500.0}).sample
    assert out.sample.shape == (2, 3, 4, 8, 8) and tup.shape == (2, 3, 6, 8, 8) and scalar_t.shape == (2, 3, 1, 8, 8)
    branches = model.config.branch_channels
    if branches:
        sides = [8 // 2 ** (len(branches) - i) for i in range(len(branches))]
        assert [tuple(b.shape) for b in out.branch_samples] == [(2, 3, 4, r, r) for r in sides]
    else:
        assert out.branch_samples is None


def test_positions_share_space_across_frames_and_time_across_locations():
    model = tiny()
    pos = model.pos_embed(4, 3, 5, "cpu", torch.float32)  # (1, F, S, D)
    assert pos.shape == (1, 4, 15, 32)
    step = pos[0, 1] - pos[0, 0]  # the temporal part: one row, the same at every location
    assert torch.allclose(step, step[:1].expand_as(step), atol=1e-6) and step.abs().max() > 1e-3
    assert not torch.allclose(pos[0, 0, 0], pos[0, 0, 1])  # locations differ within a frame


def test_interpolation_scale_puts_a_coarse_grid_on_every_other_fine_position():
    """interpolation_scale 0.5 at 2x coarser patches: token (i, j) of the coarse grid gets the
    spatial position of token (2i, 2j) of the fine one (default 1.0 keeps saved models as they were)."""
    fine = tiny(sample_size=16, patch_size=2, branch_channels=(8,), branch_depths=(1,))
    coarse = tiny(sample_size=16, patch_size=4, branch_channels=(8, 8), branch_depths=(1, 1), interpolation_scale=0.5)
    fine_pos = fine.pos_embed(1, 8, 8, "cpu", torch.float32)[0, 0].reshape(8, 8, -1)
    coarse_pos = coarse.pos_embed(1, 4, 4, "cpu", torch.float32)[0, 0].reshape(4, 4, -1)
    torch.testing.assert_close(coarse_pos, fine_pos[::2, ::2])
    plain = tiny(sample_size=16, patch_size=4, branch_channels=(8, 8), branch_depths=(1, 1))
    assert not torch.allclose(plain.pos_embed(1, 4, 4, "cpu", torch.float32)[0, 0].reshape(4, 4, -1), coarse_pos)
    with pytest.raises(ValueError, match="interpolation_scale"):
        tiny(interpolation_scale=0)


@pytest.mark.parametrize("layout", ["factorised", "full"])
def test_frames_talk_to_each_other_and_know_their_order(layout):
    model = tiny(attention_layout=layout)
    x = inputs()
    with torch.no_grad():
        base = model(**x).sample
        changed = dict(x, hidden_states=x["hidden_states"].clone())
        changed["hidden_states"][:, :, 0] += 1.0
        moved = model(**changed).sample
        flipped = model(**dict(x, hidden_states=x["hidden_states"].flip(2))).sample.flip(2)
    assert (moved[:, :, 3] - base[:, :, 3]).abs().max() > 1e-4  # frame 0 reaches frame 3
    assert (flipped - base).abs().max() > 1e-4  # not blind to frame order (temporal positions)


def test_given_mask_is_seen_and_all_zero_means_none():
    model = tiny()
    x = inputs()
    with torch.no_grad():
        none = model(**x).sample
        zeros = model(**x, given_mask=torch.zeros(2, 4, dtype=torch.bool)).sample
        first = torch.tensor([[True, False, False, False]] * 2)
        frame_mask = model(**x, given_mask=first).sample
        token_mask = model(**x, given_mask=first[:, :, None, None].expand(-1, -1, 4, 4)).sample
    assert torch.equal(none, zeros)
    assert (frame_mask - none).abs().max() > 1e-4
    assert torch.allclose(frame_mask, token_mask)
    with pytest.raises(ValueError, match="given_mask must be"):
        model(**x, given_mask=torch.zeros(2, 3))


def test_limits_are_clear_errors():
    model = tiny()
    with pytest.raises(ValueError, match="7 frames is beyond this model's limit of 6"):
        model(**inputs(f=7))
    with pytest.raises(ValueError, match="not a multiple of the patch size 2"):
        model(**inputs(size=7))
    with pytest.raises(ValueError, match="attention_layout"):
        VideoDiT(attention_layout="diagonal")
    with pytest.raises(ValueError, match="patch_size 4 must be 2\\*\\*1"):
        VideoDiT(patch_size=4, branch_channels=(8,), branch_depths=(1,))


def test_gradient_checkpointing_gives_the_same_gradients():
    model = tiny().train()
    grads = []
    for checkpointing in (False, True):
        model.zero_grad()
        if checkpointing:
            model.enable_gradient_checkpointing()
        model(**inputs()).sample.square().mean().backward()
        grads.append(model.transformer_blocks[0].attn_temporal.to_q.weight.grad.clone())
    assert torch.allclose(grads[0], grads[1], atol=1e-6)


def test_shipped_preset_fits_the_budget():
    cfg = video_dit_config("shapes")
    # WORLD.md: at least 16 frames of 32x32 (here latents of the Shapes World autoencoder, which
    # downsamples by 2 per block after the first)
    from dit import SHAPES_AUTOENCODER

    latent = cfg["in_channels"] == SHAPES_AUTOENCODER["latent_channels"]
    factor = 2 ** (len(SHAPES_AUTOENCODER["block_out_channels"]) - 1) if latent else 1
    assert cfg["num_frames"] >= 16 and cfg["sample_size"] * factor >= 32
    model = VideoDiT(**cfg)
    assert sum(p.numel() for p in model.parameters()) * 4 <= 30e6
    assert video_dit_config("shapes", depth=2)["depth"] == 2 and "tiny" in VIDEO_DIT_PRESETS
    with pytest.raises(ValueError, match="unknown VideoDiT preset"):
        video_dit_config("huge")


def test_shapes_preset_is_the_shipped_model():
    """The "shapes" preset names what ships: the same config as the installed model folder."""
    shipped = json.loads((SHIPPED_T2V / "transformer" / "config.json").read_text())
    built = dict(VideoDiT(**video_dit_config("shapes")).config)
    for key, value in shipped.items():
        if not key.startswith("_"):
            assert built[key] == (tuple(value) if isinstance(value, list) else value) or \
                list(built[key]) == value, key


def public(cfg) -> dict:
    return json.loads(json.dumps({k: v for k, v in cfg.items() if not k.startswith("_")}))


def test_save_and_load_round_trip_here_and_in_a_fresh_process(tmp_path):
    model = tiny(attention_layout="full")
    x = inputs()
    mask = torch.tensor([[True, False, True, False]] * 2)
    with torch.no_grad():
        expected = model(**x, given_mask=mask).sample
    model.save_pretrained(tmp_path / "m")
    loaded = VideoDiT.from_pretrained(tmp_path / "m").eval()
    assert public(loaded.config) == public(model.config)
    with torch.no_grad():
        assert torch.equal(loaded(**x, given_mask=mask).sample, expected)

    torch.save({"x": x, "mask": mask}, tmp_path / "inputs.pt")
    script = (f"import torch, dit; m = dit.VideoDiT.from_pretrained({str(tmp_path / 'm')!r}).eval(); "
              f"d = torch.load({str(tmp_path / 'inputs.pt')!r}); "
              f"torch.save(m(**d['x'], given_mask=d['mask']).sample.detach(), {str(tmp_path / 'out.pt')!r})")
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert torch.equal(torch.load(tmp_path / "out.pt"), expected)


def count_runs(module) -> dict:
    runs = {"n": 0}
    module.register_forward_hook(lambda *a: runs.__setitem__("n", runs["n"] + 1))
    return runs


@pytest.mark.parametrize("layout", ["factorised", "full"])
def test_first_block_cache_attaches_and_threshold_zero_is_exact(layout):
    model = tiny(depth=3, attention_layout=layout)
    x, nudged = inputs(), inputs()
    nudged["hidden_states"] = nudged["hidden_states"] + 1e-3
    with torch.no_grad():
        reference = [model(**x).sample, model(**nudged).sample]
    tail = count_runs(model.transformer_blocks[-1].mlp)

    model.enable_cache(FirstBlockCacheConfig(threshold=0.0))  # never reuse
    with torch.no_grad(), model.cache_context("cond"):
        exact = [model(**x).sample, model(**nudged).sample]
    assert tail["n"] == 2
    for got, want in zip(exact, reference):
        assert torch.allclose(got, want, atol=1e-6)
    model.disable_cache()

    model.enable_cache(FirstBlockCacheConfig(threshold=1e9))  # reuse whenever possible
    tail["n"] = 0
    with torch.no_grad(), model.cache_context("cond"):
        first = model(**x).sample
        second = model(**nudged).sample  # first block barely changed → the tail's residual is reused
    assert tail["n"] == 1
    assert first.shape == second.shape and torch.isfinite(second).all()


# ------------------------------------------------------------------ starting from an image model

def _image_and_video(video_overrides=None, **extra):
    """A randomised 16x16 image MultiResDiT at patch 4 and an 8x8 VideoDiT at patch 2: the same 4x4 token grid."""
    from dit import MultiResDiT

    common = dict(hidden_size=32, depth=2, num_heads=2, text_dim=16, pooled_dim=16, text_standardization=True,
                  **extra)
    image = randomize(MultiResDiT(sample_size=16, patch_size=4, branch_channels=(8, 8), branch_depths=(1, 1),
                                  **common), seed=1, std=0.1).eval()
    for s in (image.text_standardizer, image.pooled_standardizer):
        s.fit(torch.randn(64, 16) * 3 + 1)
    video_kw = dict(sample_size=8, num_frames=4, patch_size=2, branch_channels=(8,), branch_depths=(1,), **common)
    video_kw.update(video_overrides or {})
    return image, randomize(VideoDiT(**video_kw), seed=2, std=0.1).eval()


@pytest.mark.parametrize("extra", [{}, dict(qk_norm=True, cross_attention_heads=4)])
def test_inflated_video_model_is_the_image_model_per_frame(monkeypatch, extra):
    """With its temporal positions removed, the inflated video model's 8x8 prediction for each frame equals
    the image model's 8x8 (second-level) prediction for that frame up-sampled 2x: the same function."""
    from dit import video as video_module
    from dit.inflate import inflate_image_to_video

    image, video = _image_and_video(**extra)
    if extra:  # the q/k norms' scales are weights too: make them differ from their init so copying shows
        with torch.no_grad():
            for block in image.transformer_blocks:
                block.attn2.norm_q.weight.uniform_(0.5, 1.5)
        assert video.transformer_blocks[0].attn2.num_heads == 4
    left = inflate_image_to_video(image, video)
    assert "given_embedding" in left and "transformer_blocks.0.attn_temporal" in left
    monkeypatch.setattr(video_module, "sincos_1d", lambda d, pos: torch.zeros(len(pos), d))
    video._pos_cache.clear()
    args = inputs(b=2, f=4, size=8)
    with torch.no_grad():
        clip = video(**args).sample  # (B, C, F, 8, 8)
        for f in range(4):
            frame = args["hidden_states"][:, :, f]
            up = torch.nn.functional.interpolate(frame, scale_factor=2, mode="nearest")
            out = image(up, args["timestep"], encoder_hidden_states=args["encoder_hidden_states"],
                        encoder_attention_mask=args["encoder_attention_mask"], pooled_text=args["pooled_text"])
            torch.testing.assert_close(clip[:, :, f], out.branch_samples[1], rtol=1e-4, atol=1e-5)
    # and the frames do not talk to each other yet: changing frame 0 leaves frame 3 as it was
    args["hidden_states"][:, :, 0] += 1.0
    with torch.no_grad():
        torch.testing.assert_close(video(**args).sample[:, :, 3], clip[:, :, 3], rtol=1e-4, atol=1e-5)


def test_inflated_temporal_attention_learns():
    """The silent temporal attention is not stuck: its adaLN gate gets a gradient."""
    from dit.inflate import inflate_image_to_video

    image, video = _image_and_video()
    inflate_image_to_video(image, video)
    video.train()
    video(**inputs(b=2, f=4, size=8)).sample.pow(2).mean().backward()
    gate_rows = video.transformer_blocks[0].scale_shift_table.grad[5]  # the temporal gate
    assert gate_rows.abs().sum() > 0


@pytest.mark.parametrize("overrides, named", [(dict(hidden_size=48, num_heads=2), "hidden_size"),
                                              (dict(depth=3), "depth"),
                                              (dict(patch_size=8, sample_size=32, branch_channels=(8, 8, 8),
                                                    branch_depths=(1, 1, 1)), "patch size"),
                                              (dict(text_standardization=False), "text_standardization"),
                                              (dict(qk_norm=True), "qk_norm"),
                                              (dict(cross_attention_heads=4), "cross_attention_heads")])
def test_inflate_rejects_mismatched_models(overrides, named):
    from dit.inflate import InflateError, inflate_image_to_video

    image, video = _image_and_video(overrides)
    with pytest.raises(InflateError, match=named):
        inflate_image_to_video(image, video)


def test_mlp_activation_choice():
    """'gelu' (erf) is the fast CPU choice; it computes nearly the tanh curve, and bad names are refused."""
    tanh_model, erf_model = tiny(), tiny(mlp_activation="gelu")
    erf_model.load_state_dict(tanh_model.state_dict())
    assert erf_model.transformer_blocks[0].mlp[1].approximate == "none"
    with torch.no_grad():
        a, b = tanh_model(**inputs()).sample, erf_model(**inputs()).sample
    assert not torch.equal(a, b)
    torch.testing.assert_close(a, b, rtol=0, atol=2e-2)
    with pytest.raises(ValueError, match="relu"):
        tiny(mlp_activation="relu")
