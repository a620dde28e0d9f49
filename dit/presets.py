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


# Named VideoDiT configurations. "shapes" is the shipped Shapes World text-to-video model:
# 16 frames of 32×32 RGB in pixel space, a factorised trunk on 4×4 tokens a frame (256 a clip)
# and per-frame refine branches at 8/16/32; 5.2M parameters (19.9 MiB fp32). Measurements behind
# the choice: the `dit.video` docstring and `bench/video_dit.py`.
VIDEO_DIT_PRESETS: dict[str, dict] = {
    "shapes": dict(sample_size=32, num_frames=16, patch_size=8, in_channels=3, hidden_size=192, depth=6,
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
