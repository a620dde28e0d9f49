"""How much a feature changed between two denoising steps: the relative L1 distance all the
caching papers gate on (FBCache, BWCache, CG-Taylor's forecast error)."""

from __future__ import annotations

import torch


def relative_l1(value: torch.Tensor, reference: torch.Tensor) -> float:
    """mean|value − reference| / mean|reference|, in float32 (0 when both are zero)."""
    value, reference = value.float(), reference.float()
    scale = reference.abs().mean()
    diff = (value - reference).abs().mean()
    if scale == 0:
        return 0.0 if diff == 0 else float("inf")
    return (diff / scale).item()
