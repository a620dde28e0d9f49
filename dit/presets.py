"""Named DiT sizes: `DiT-XL/2` means the XL width/depth with 2×2 patches."""

from __future__ import annotations

import re

from .transformer import DiT

# depth, hidden size, heads — S/B/L/XL as in the DiT paper, plus CPU-sized ones.
DIT_SIZES: dict[str, dict[str, int]] = {
    "XL": dict(depth=28, hidden_size=1152, num_heads=16),
    "L": dict(depth=24, hidden_size=1024, num_heads=16),
    "B": dict(depth=12, hidden_size=768, num_heads=12),
    "S": dict(depth=12, hidden_size=384, num_heads=6),
    "Ti": dict(depth=8, hidden_size=256, num_heads=4),   # tiny: trains on a 2-core CPU
    "N": dict(depth=2, hidden_size=64, num_heads=2),     # nano: unit tests
}

_NAME = re.compile(r"^DiT-(?P<size>[A-Za-z]+)/(?P<patch>\d+)$")


def dit_config(name: str, **overrides) -> dict:
    """'DiT-S/2' → constructor kwargs for `DiT`; `overrides` win (e.g. condition='text')."""
    match = _NAME.match(name)
    if not match or match["size"] not in DIT_SIZES:
        raise ValueError(f"unknown DiT preset {name!r}; expected 'DiT-<size>/<patch>' with size in "
                         f"{list(DIT_SIZES)}")
    return {**DIT_SIZES[match["size"]], "patch_size": int(match["patch"]), **overrides}


def build_dit(name: str, **overrides):
    """A freshly initialised `DiT` of a named size."""
    return DiT(**dit_config(name, **overrides))


# The shipped Shapes World text-to-image model (`pipelines/models/shapes-t2i`, trained by
# `configs/t2i_shapes_latent.json`): a DiT on 16×16×4 latents of the Shapes World autoencoder
# (64×64 images), 2-latent patches, adaLN-single, qk-norm, 8 narrow text cross-attention heads
# over standardised MiniLM features. The video preset "shapes" below is its inflation.
SHAPES_T2I_DIT: dict = dict(sample_size=16, patch_size=2, in_channels=4, hidden_size=160, depth=5, num_heads=2,
                            condition="text", text_dim=384, pooled_dim=384, adaln="single",
                            text_standardization=True, qk_norm=True, cross_attention_heads=8)

# The Shapes World autoencoder both shipped models draw through (`configs/vae_shapes.json`): a
# diffusers `AutoencoderKL`, widths 16/32/64, one layer a block, 64×64×3 → 16×16×4.
SHAPES_AUTOENCODER: dict = dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 3,
                                up_block_types=("UpDecoderBlock2D",) * 3, block_out_channels=(16, 32, 64),
                                layers_per_block=1, latent_channels=4, norm_num_groups=8, sample_size=64,
                                mid_block_add_attention=True)


# Named VideoDiT configurations. "shapes" is the architecture of the shipped Shapes World
# text-to-video model (`pipelines/models/shapes-t2v`, trained by `configs/t2v_shapes_latent.json`):
# 16 frames of 16×16×4 latents of the Shapes World autoencoder (64×64 clips), 2-latent patches
# (an 8×8 token grid a frame), the latent image model's width and depth with factorised
# spatial/temporal attention, qk-norm and 8 narrow text cross-attention heads over standardised
# MiniLM features. "shapes-pixel" is the pixel-space model it replaced (issue 22; trained by
# `configs/t2v_shapes_fast.json`): 16 frames of 32×32 RGB, 4-pixel patches on every other point
# of the image model's 16×16 grid, refine branches at 16×16 and 32×32. "shapes-p8" is the first
# video recipe's sizing at 8-pixel patches, never shipped: `python -m bench.video_dit --preset
# shapes-p8` compared attention layouts on it (docs/BENCHMARKS.md). "tiny" is for unit tests.
VIDEO_DIT_PRESETS: dict[str, dict] = {
    "shapes": dict(sample_size=16, num_frames=16, patch_size=2, in_channels=4, hidden_size=160, depth=5,
                   num_heads=2, mlp_ratio=4.0, text_dim=384, pooled_dim=384, attention_layout="factorised",
                   branch_channels=(), branch_depths=(), qk_norm=True, cross_attention_heads=8,
                   text_standardization=True, mlp_activation="gelu"),
    "shapes-pixel": dict(sample_size=32, num_frames=16, patch_size=4, in_channels=3, hidden_size=160, depth=5,
                         num_heads=2, mlp_ratio=4.0, text_dim=384, pooled_dim=384, attention_layout="factorised",
                         branch_channels=(48, 32), branch_depths=(1, 1), branch_upsampling="shuffle",
                         interpolation_scale=0.5, qk_norm=True, cross_attention_heads=8,
                         text_standardization=True, mlp_activation="gelu"),
    "shapes-p8": dict(sample_size=32, num_frames=16, patch_size=8, in_channels=3, hidden_size=192, depth=6,
                      num_heads=3, text_dim=384, pooled_dim=384, attention_layout="factorised",
                      branch_channels=(64, 48, 32), branch_depths=(1, 1, 1),
                      branch_upsampling="shuffle"),
    "tiny": dict(sample_size=16, num_frames=8, patch_size=4, in_channels=3, hidden_size=32, depth=2,
                 num_heads=2, text_dim=384, pooled_dim=384, attention_layout="factorised",
                 branch_channels=(16, 8), branch_depths=(1, 1)),  # unit tests
}


def video_dit_config(name: str = "shapes", **overrides) -> dict:
    """'shapes' → constructor kwargs for `VideoDiT`; `overrides` win."""
    if name not in VIDEO_DIT_PRESETS:
        raise ValueError(f"unknown VideoDiT preset {name!r}; expected one of {list(VIDEO_DIT_PRESETS)}")
    return {**VIDEO_DIT_PRESETS[name], **overrides}
