"""Named DiT sizes: `DiT-XL/2` means the XL width/depth with 2×2 patches."""

from __future__ import annotations

import re

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
    from .transformer import DiT

    return DiT(**dit_config(name, **overrides))
