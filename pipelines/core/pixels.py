"""Pixel ranges: models and VAEs work in [-1, 1], users' images and clips are in [0, 1]."""

from __future__ import annotations

import torch


def to_unit_range(x: torch.Tensor) -> torch.Tensor:
    """Model-space pixels in [-1, 1] → [0, 1], clamped (every pipeline's `decode` ends here)."""
    return (x / 2 + 0.5).clamp(0, 1)


def from_unit_range(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] pixels (given frames, first frames) → model space [-1, 1]."""
    return x * 2 - 1
