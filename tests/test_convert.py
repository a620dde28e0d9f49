"""diffusers DiT / PixArt-α → ditkit DiT: conversions reproduce the source model's outputs."""

from __future__ import annotations

import json

import pytest
import torch
from diffusers import DiTTransformer2DModel, PixArtTransformer2DModel

from dit import DiT
from dit.convert_diffusers import (convert_dit_state_dict, convert_pixart_state_dict, dit_from_diffusers,
                                   load_diffusers_transformer, pixart_from_diffusers)

TOL = 1e-4
NUM_CLASSES = 10


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Every parameter random and non-zero: zero-initialised adaLN / output layers would hide bugs."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    return model.eval()


def tie_dit_embedders(model: DiTTransformer2DModel) -> DiTTransformer2DModel:
    """Copies block 0's timestep + label embedder into every block, as real DiT checkpoints have."""
    ref = model.transformer_blocks[0].norm1.emb.state_dict()
    for block in model.transformer_blocks[1:]:
        block.norm1.emb.load_state_dict(ref)
    return model


def tiny_dit(**overrides) -> DiTTransformer2DModel:
    kwargs = dict(num_attention_heads=2, attention_head_dim=16, in_channels=4, out_channels=8,  # learned sigma
                  num_layers=2, sample_size=8, patch_size=2, num_embeds_ada_norm=NUM_CLASSES)  # norm_eps 1e-5
    return tie_dit_embedders(randomize(DiTTransformer2DModel(**{**kwargs, **overrides})))


def tiny_pixart(**overrides) -> PixArtTransformer2DModel:
    kwargs = dict(num_attention_heads=2, attention_head_dim=24, in_channels=4, out_channels=8,
                  num_layers=2, sample_size=8, patch_size=2, cross_attention_dim=48, caption_channels=20,
                  use_additional_conditions=False)
    return randomize(PixArtTransformer2DModel(**{**kwargs, **overrides}), seed=1)


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a - b).abs().max().item()


def dit_inputs(size=(8, 8), seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(5, 4, *size, generator=gen)
    t = torch.tensor([0, 1, 250, 637, 999])
    labels = torch.tensor([0, 3, 9, NUM_CLASSES, 5])  # NUM_CLASSES is the null (CFG) label
    return x, t, labels


def compare_dit(source: DiTTransformer2DModel, ours: DiT, size=(8, 8)) -> float:
    x, t, labels = dit_inputs(size)
    with torch.no_grad():
        ref = source(x, timestep=t, class_labels=labels).sample
        out = ours(x, t, class_labels=labels).sample
    assert ref.shape == (5, source.out_channels, *size)
    return max_diff(ref, out)


def pixart_inputs(size=(8, 8), sized=False, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 4, *size, generator=gen)
    t = torch.tensor([3, 480, 999])
    text = torch.randn(3, 7, 20, generator=gen)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1, 1],
                         [1, 1, 1, 0, 0, 0, 0],
                         [1, 0, 1, 1, 0, 1, 0]])
    added = {"resolution": None, "aspect_ratio": None}
    if sized:
        added = {"resolution": torch.tensor([[1024.0, 1024.0], [768.0, 1344.0], [1536.0, 640.0]]),
                 "aspect_ratio": torch.tensor([[1.0], [768 / 1344], [1536 / 640]])}
    return x, t, text, mask, added


def compare_pixart(source: PixArtTransformer2DModel, ours: DiT, size=(8, 8), sized=False) -> float:
    x, t, text, mask, added = pixart_inputs(size, sized)
    with torch.no_grad():
        ref = source(x, encoder_hidden_states=text, timestep=t, added_cond_kwargs=added,
                     encoder_attention_mask=mask).sample
        out = ours(x, t, encoder_hidden_states=text, encoder_attention_mask=mask,
                   resolution=added["resolution"], aspect_ratio=added["aspect_ratio"]).sample
        # the mask matters: without it the output changes, so the check above exercised it
        unmasked = ours(x, t, encoder_hidden_states=text,
                        resolution=added["resolution"], aspect_ratio=added["aspect_ratio"]).sample
    assert max_diff(unmasked, out) > 1e-3
    assert ref.shape == (3, source.out_channels, *size)
    return max_diff(ref, out)


# ------------------------------------------------------------------------------- DiT

def test_dit_class_conditional_matches():
    source = tiny_dit()
    ours = dit_from_diffusers(source)
    cfg = ours.config
    assert (cfg.hidden_size, cfg.depth, cfg.num_heads, cfg.out_channels) == (32, 2, 2, 8)
    assert (cfg.condition, cfg.adaln, cfg.num_classes, cfg.timestep_freq_shift) == ("class", "zero", 10, 1.0)
    assert cfg.norm_eps == source.config.norm_eps == 1e-5
    diff = compare_dit(source, ours)
    print(f"DiT class-conditional max abs diff: {diff:.3e}")
    assert diff <= TOL


def test_dit_differing_block_embedders_raise():
    source = tiny_dit()
    with torch.no_grad():
        source.transformer_blocks[1].norm1.emb.timestep_embedder.linear_1.bias.add_(0.1)
    with pytest.raises(ValueError, match="per-block .*embedders that differ"):
        dit_from_diffusers(source)


def test_unmapped_or_missing_keys_raise():
    source = tiny_dit()
    sd = dict(source.state_dict())
    with pytest.raises(ValueError, match="transformer_blocks.1.attn1.to_q.weight"):  # depth too small
        convert_dit_state_dict(sd, depth=1)
    with pytest.raises(ValueError, match="extra.weight"):
        convert_dit_state_dict({**sd, "extra.weight": torch.zeros(1)}, depth=2)
    del sd["proj_out_2.bias"]
    with pytest.raises(ValueError, match="missing.*final_layer.linear.bias"):
        from dit.convert_diffusers import _load_exact, dit_config_from_diffusers
        _load_exact(DiT(**dit_config_from_diffusers(source.config)), convert_dit_state_dict(sd, 2), "DiT")


# ---------------------------------------------------------------------------- PixArt

def test_pixart_text_masked_matches():
    source = tiny_pixart()
    ours = pixart_from_diffusers(source)
    cfg = ours.config
    assert (cfg.condition, cfg.adaln, cfg.text_dim, cfg.size_conditioning) == ("text", "single", 20, False)
    assert (cfg.timestep_freq_shift, cfg.interpolation_scale) == (0.0, 1.0)
    diff = compare_pixart(source, ours)
    print(f"PixArt masked text max abs diff: {diff:.3e}")
    assert diff <= TOL


def test_pixart_size_conditioning_matches():
    source = tiny_pixart(sample_size=16, use_additional_conditions=True)
    ours = pixart_from_diffusers(source)
    assert ours.config.size_conditioning and ours.size_embedder is not None
    diff = compare_pixart(source, ours, size=(16, 16), sized=True)
    print(f"PixArt size-conditioned max abs diff: {diff:.3e}")
    assert diff <= TOL


@pytest.mark.parametrize("name", ["dit-12x12", "pixart-8x12", "pixart-1024-16x12"])
def test_non_native_size_matches(name):
    if name == "dit-12x12":  # diffusers' DiT unpatchifies square grids only
        source = tiny_dit()
        diff = compare_dit(source, dit_from_diffusers(source), size=(12, 12))
    elif name == "pixart-8x12":  # non-square: h and w positions must not be swapped
        source = tiny_pixart()
        diff = compare_pixart(source, pixart_from_diffusers(source), size=(8, 12))
    else:  # sample_size 128: size conditioning by default and interpolation_scale 128 // 64 = 2
        source = tiny_pixart(sample_size=128, use_additional_conditions=None)
        ours = pixart_from_diffusers(source)
        assert ours.config.size_conditioning and ours.config.interpolation_scale == 2.0
        diff = compare_pixart(source, ours, size=(16, 12), sized=True)
    print(f"{name} non-native size max abs diff: {diff:.3e}")
    assert diff <= TOL


def test_attention_without_bias_matches():
    dit_source = tiny_dit(attention_bias=False)
    dit_diff = compare_dit(dit_source, dit_from_diffusers(dit_source))
    pixart_source = tiny_pixart(attention_bias=False)
    pixart_diff = compare_pixart(pixart_source, pixart_from_diffusers(pixart_source))
    print(f"attention_bias=False max abs diff: DiT {dit_diff:.3e}, PixArt {pixart_diff:.3e}")
    assert max(dit_diff, pixart_diff) <= TOL


# ----------------------------------------------------------------- saving and loading

@pytest.mark.parametrize("kind", ["dit", "pixart"])
def test_save_pretrained_round_trip(kind, tmp_path):
    if kind == "dit":
        ours = dit_from_diffusers(tiny_dit())
        x, t, labels = dit_inputs()
        run = lambda m: m(x, t, class_labels=labels).sample  # noqa: E731
    else:
        ours = pixart_from_diffusers(tiny_pixart(sample_size=16, use_additional_conditions=True))
        x, t, text, mask, added = pixart_inputs((16, 16), sized=True)
        run = lambda m: m(x, t, encoder_hidden_states=text, encoder_attention_mask=mask,  # noqa: E731
                          resolution=added["resolution"], aspect_ratio=added["aspect_ratio"]).sample
    ours.save_pretrained(tmp_path)
    loaded = DiT.from_pretrained(tmp_path).eval()
    public = lambda cfg: {k: v for k, v in cfg.items() if not k.startswith("_")}  # noqa: E731
    assert public(loaded.config) == public(ours.config)
    with torch.no_grad():
        diff = max_diff(run(ours), run(loaded))
    print(f"{kind} save/load round trip max abs diff: {diff:.3e}")
    assert diff == 0.0


def test_raw_safetensors_state_dicts_convert(tmp_path):
    from safetensors.torch import load_file

    for source, convert in ((tiny_dit(), convert_dit_state_dict),
                            (tiny_pixart(sample_size=16, use_additional_conditions=True), convert_pixart_state_dict)):
        folder = tmp_path / type(source).__name__
        source.save_pretrained(folder, safe_serialization=True)
        raw = load_file(folder / "diffusion_pytorch_model.safetensors")
        raw["pos_embed.pos_embed"] = source.pos_embed.pos_embed  # a derived buffer some files carry
        from_raw = convert(raw, source.config.num_layers)
        from_model = convert(source.state_dict(), source.config.num_layers)
        assert from_raw.keys() == from_model.keys()
        assert all(torch.equal(from_raw[k], from_model[k]) for k in from_raw)


def test_load_diffusers_transformer(tmp_path):
    source = tiny_dit()
    source.save_pretrained(tmp_path / "dit", safe_serialization=True)
    diff = compare_dit(source, load_diffusers_transformer(tmp_path / "dit"))
    print(f"load_diffusers_transformer (DiT) max abs diff: {diff:.3e}")
    assert diff <= TOL

    pixart = tiny_pixart()
    pixart.save_pretrained(tmp_path / "pipe" / "transformer", safe_serialization=True)
    ours = load_diffusers_transformer(tmp_path / "pipe")  # a pipeline folder works too
    assert ours.config.adaln == "single"
    assert compare_pixart(pixart, ours) <= TOL

    # legacy folders name the class Transformer2DModel and tell DiT from PixArt by norm_type
    config_path = tmp_path / "dit" / "config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "_class_name": "Transformer2DModel"}))
    assert compare_dit(source, load_diffusers_transformer(tmp_path / "dit")) <= TOL

    config_path.write_text(json.dumps({**config, "_class_name": "UNet2DConditionModel"}))
    with pytest.raises(ValueError, match="UNet2DConditionModel"):
        load_diffusers_transformer(tmp_path / "dit")
