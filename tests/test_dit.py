"""The DiT backbones: shapes, presets, attention kernels, save/load, diffusers cache hooks."""

from __future__ import annotations

import json

import pytest
import torch
from diffusers.hooks import FirstBlockCacheConfig

import dit
from dit import DiT, MultiResDiT, build_dit, dit_config, set_attention_backend
from dit.attention import reference_attention, sdpa_attention

from .tiny_models import randomize


def text_inputs(b=2, size=8, channels=3, length=5, dim=16):
    g = torch.Generator().manual_seed(0)
    return dict(hidden_states=torch.randn(b, channels, size, size, generator=g), timestep=torch.tensor([10.0, 900.0])[:b],
                encoder_hidden_states=torch.randn(b, length, dim, generator=g),
                encoder_attention_mask=torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])[:b],
                pooled_text=torch.randn(b, dim, generator=g))


def test_presets_match_the_paper_sizes():
    assert dit_config("DiT-XL/2") == dict(depth=28, hidden_size=1152, num_heads=16, patch_size=2)
    assert dit_config("DiT-S/4", condition="text")["condition"] == "text"
    with pytest.raises(ValueError, match="DiT-Q/2"):
        dit_config("DiT-Q/2")


@pytest.mark.parametrize("adaln", ["zero", "single"])
def test_text_dit_shapes_and_conditioning_matters(adaln):
    model = randomize(build_dit("DiT-N/2", sample_size=8, in_channels=3, condition="text", text_dim=16,
                                pooled_dim=16, adaln=adaln)).eval()
    inputs = text_inputs()
    out = model(**inputs).sample
    assert out.shape == (2, 3, 8, 8)
    other = dict(inputs, encoder_hidden_states=inputs["encoder_hidden_states"] + 1)
    assert (model(**other).sample - out).abs().max() > 1e-3
    # masked-out tokens do not matter
    masked = inputs["encoder_hidden_states"].clone()
    masked[0, 3:] = torch.randn(2, 16)  # different content in the masked slots
    assert torch.allclose(model(**dict(inputs, encoder_hidden_states=masked)).sample[0], out[0], atol=1e-5)


def test_class_dit_and_non_native_size():
    model = randomize(build_dit("DiT-N/2", sample_size=8, num_classes=10, out_channels=8)).eval()
    out = model(torch.randn(3, 4, 12, 16), torch.tensor([1, 500, 999]), class_labels=torch.tensor([0, 9, 10])).sample
    assert out.shape == (3, 8, 12, 16)
    with pytest.raises(ValueError, match="not a multiple of the patch size"):
        model(torch.randn(1, 4, 9, 8), 5, class_labels=torch.tensor([1]))


def test_fresh_model_is_identity_like_adaln_zero():
    model = build_dit("DiT-N/2", sample_size=8, num_classes=10)
    out = model(torch.randn(2, 4, 8, 8), torch.tensor([3, 4]), class_labels=torch.tensor([1, 2])).sample
    assert torch.count_nonzero(out) == 0  # zero-initialised output layer, as in DiT


def test_attention_kernels_agree():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 7, 8, generator=g) for _ in range(3))
    bias = torch.zeros(2, 1, 1, 7)
    bias[0, ..., 5:] = -10000.0
    assert torch.allclose(sdpa_attention(q, k, v, bias), reference_attention(q, k, v, bias), atol=1e-5)
    model = randomize(build_dit("DiT-N/2", sample_size=8, in_channels=3, condition="text", text_dim=16)).eval()
    inputs = text_inputs()
    a = model(**inputs).sample
    set_attention_backend(model, "math")
    assert torch.allclose(model(**inputs).sample, a, atol=1e-4)
    with pytest.raises(ValueError, match="unknown attention backend 'flash9'"):
        set_attention_backend(model, "flash9")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="xformers"):
            set_attention_backend(model, "xformers")


def test_qk_norm_makes_attention_blind_to_the_scale_of_queries_and_keys():
    """What qk_norm is for: a head's logits cannot grow by scaling q/k, so it cannot collapse that way."""
    from dit.attention import Attention

    g = torch.Generator().manual_seed(0)
    x, ctx = torch.randn(2, 6, 32, generator=g), torch.randn(2, 4, 32, generator=g)
    for qk_norm in (True, False):
        torch.manual_seed(0)
        attn = Attention(32, 4, qk_norm=qk_norm).eval()
        before = attn(x, ctx)
        with torch.no_grad():
            for lin in (attn.to_q, attn.to_k):
                lin.weight.mul_(20)
                lin.bias.mul_(20)
        after = attn(x, ctx)
        assert torch.allclose(before, after, atol=1e-4) == qk_norm
    with pytest.raises(ValueError, match="not divisible by num_heads 3"):
        DiT(hidden_size=32, num_heads=2, cross_attention_heads=3, condition="text", text_dim=16)


@pytest.mark.parametrize("extra", [{}, dict(qk_norm=True, cross_attention_heads=8)])
@pytest.mark.parametrize("cls", [DiT, MultiResDiT])
def test_save_and_load_round_trip(cls, extra, tmp_path):
    kw = dict(sample_size=16, in_channels=3, hidden_size=32, depth=2, num_heads=2, condition="text",
              text_dim=16, pooled_dim=16, **extra)
    kw.update(dict(patch_size=4, branch_channels=(16, 8), branch_depths=(1, 1)) if cls is MultiResDiT
              else dict(patch_size=2))
    model = randomize(cls(**kw)).eval()
    inputs = text_inputs(size=16)
    model.save_pretrained(tmp_path / "m")
    loaded = type(model).from_pretrained(tmp_path / "m").eval()
    public = lambda cfg: json.loads(json.dumps({k: v for k, v in cfg.items() if not k.startswith("_")}))
    assert type(loaded) is cls and public(loaded.config) == public(model.config)
    assert torch.equal(loaded(**inputs).sample, model(**inputs).sample)
    if extra:
        block = loaded.transformer_blocks[0]
        assert block.attn2.num_heads == 8 and block.attn1.num_heads == 2 and block.attn1.norm_q is not None


def test_multires_predicts_every_resolution():
    model = randomize(MultiResDiT(sample_size=32, patch_size=8, hidden_size=32, depth=1, num_heads=2,
                                  text_dim=16, pooled_dim=16, branch_channels=(16, 16, 8)), std=0.1).eval()
    out = model(**text_inputs(size=32))
    assert out.sample.shape == (2, 3, 32, 32)
    assert [tuple(b.shape[-2:]) for b in out.branch_samples] == [(4, 4), (8, 8), (16, 16)]
    with pytest.raises(ValueError, match="patch_size 4 must be 2\\*\\*3"):
        MultiResDiT(patch_size=4, branch_channels=(8, 8, 8))


def test_shuffle_upsampling_gives_children_their_own_features():
    """'nearest' hands a coarse feature identically to its 2x2 children; 'shuffle' projects a
    separate feature to each child, so a branch can place detail inside a parent token."""
    from dit.multires import RefineBranch

    below = torch.randn(1, 8, 4, 4)
    x = torch.zeros(1, 3, 8, 8)
    tau = torch.zeros(1)
    for mode, children_differ in (("nearest", False), ("shuffle", True)):
        branch = randomize(RefineBranch(3, 8, 6, 0, 3, upsampling=mode), std=0.3)
        branch.stem.weight.data.zero_()
        branch.stem.bias.data.zero_()  # only the lifted features reach the head
        _, pred = branch(x, below, tau)
        tl, tr = pred[..., 0::2, 0::2], pred[..., 0::2, 1::2]  # first and second child of each parent
        assert (not torch.allclose(tl, tr)) == children_differ, mode
    with pytest.raises(ValueError, match="upsampling must be one of"):
        RefineBranch(3, 8, 6, 1, 3, upsampling="bilinear")
    model = MultiResDiT(sample_size=16, patch_size=4, hidden_size=32, depth=1, num_heads=2, text_dim=16,
                        pooled_dim=16, branch_channels=(16, 8), branch_depths=(1, 1), branch_upsampling="shuffle")
    assert model(**text_inputs(size=16)).sample.shape == (2, 3, 16, 16)


@pytest.mark.parametrize("cls", [DiT, MultiResDiT])
def test_first_block_cache_attaches(cls):
    kw = dict(sample_size=16, in_channels=3, hidden_size=32, depth=3, num_heads=2, condition="text",
              text_dim=16, pooled_dim=16)
    kw.update(dict(patch_size=4, branch_channels=(16, 8), branch_depths=(1, 1)) if cls is MultiResDiT
              else dict(patch_size=2))
    model = randomize(cls(**kw), std=0.1).eval()
    inputs = text_inputs(size=16)
    runs = {"n": 0}
    model.transformer_blocks[-1].mlp.register_forward_hook(lambda *a: runs.__setitem__("n", runs["n"] + 1))
    model.enable_cache(FirstBlockCacheConfig(threshold=1e9))
    with torch.no_grad(), model.cache_context("cond"):
        first = model(**inputs).sample
        second = model(**inputs).sample  # same input: first block unchanged → tail reused
    assert runs["n"] == 1
    assert torch.allclose(first, second, atol=1e-5)


def test_text_standardizer_fits_unit_scale_and_floors_constant_features():
    from dit.embeddings import TextStandardizer

    g = torch.Generator().manual_seed(0)
    samples = (torch.randn(500, 5, generator=g) * torch.tensor([3.0, 0.01, 1.0, 0.0, 2.0])
               + torch.tensor([5.0, 2.0, 0, 7, 0]))  # median std 1
    std = TextStandardizer(5)
    assert torch.equal(std(samples), samples)  # identity before fitting
    std.fit(samples)
    out = std(samples)
    assert torch.allclose(out.mean(0), torch.zeros(5), atol=1e-4)
    assert torch.allclose(out[:, [0, 2, 4]].std(0), torch.ones(3), atol=1e-3)
    # the near-constant and the constant feature are floored at 0.1 × median std, not blown up
    assert 0.05 < out[:, 1].std() < 0.15 and torch.all(out[:, 3] == 0)
    with pytest.raises(ValueError, match=r"fit needs \(N >= 2, 5\) samples, got \(10, 3\)"):
        std.fit(torch.randn(10, 3))


@pytest.mark.parametrize("cls", ["DiT", "MultiResDiT", "VideoDiT"])
def test_text_standardization_is_applied_and_saved_with_the_weights(cls, tmp_path):
    """Standardised text changes the prediction once fitted, and the statistics are part of the
    saved model (buffers in the safetensors), so a loaded model predicts the same."""
    kw = dict(in_channels=3, hidden_size=32, depth=1, num_heads=2, text_dim=16, pooled_dim=16)
    if cls == "VideoDiT":
        kw.update(sample_size=8, num_frames=2, patch_size=4, branch_channels=(8, 8), branch_depths=(1, 1))
        hidden = torch.randn(2, 3, 2, 8, 8, generator=torch.Generator().manual_seed(1))
    else:
        kw.update(sample_size=8, condition="text", patch_size=2 if cls == "DiT" else 4)
        if cls == "MultiResDiT":
            kw.update(branch_channels=(8, 8), branch_depths=(1, 1))
        hidden = None
    plain = randomize(getattr(dit, cls)(**kw)).eval()
    model = getattr(dit, cls)(**kw, text_standardization=True).eval()
    model.load_state_dict(plain.state_dict(), strict=False)  # same weights; standardizers still identity
    inputs = text_inputs()
    if hidden is not None:
        inputs["hidden_states"] = hidden
    assert torch.equal(model(**inputs).sample, plain(**inputs).sample)

    g = torch.Generator().manual_seed(2)
    model.text_standardizer.fit(torch.randn(64, 16, generator=g) * 3 + 1)
    model.pooled_standardizer.fit(torch.randn(64, 16, generator=g) * 0.1)
    fitted = model(**inputs).sample
    assert (fitted - plain(**inputs).sample).abs().max() > 1e-3
    model.save_pretrained(tmp_path / "m")
    loaded = getattr(dit, cls).from_pretrained(tmp_path / "m").eval()
    assert torch.equal(loaded.text_standardizer.std, model.text_standardizer.std)
    assert torch.equal(loaded(**inputs).sample, fitted)
