"""Tiny models with random weights, and random inputs for them: plain functions shared by test
modules and by the fixtures in tests/conftest.py (test modules import this, never each other)."""

from __future__ import annotations

import numpy as np
import torch

from dit import VideoDiT, build_dit

# the tiny video transformer of the `tiny_t2v` fixture (tests/conftest.py): at most 6 frames of 8×8
TINY_T2V_FRAMES, TINY_T2V_SIZE = 6, 8


def randomize(model: torch.nn.Module, seed: int = 0, std: float = 0.2) -> torch.nn.Module:
    """Fills every parameter with random non-zero values: zero-initialised layers would hide bugs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * std)
    return model


def tiny_text_dit(**overrides):
    cfg = dict(sample_size=8, in_channels=3, condition="text", text_dim=384, pooled_dim=384, adaln="single")
    cfg.update(overrides)
    return randomize(build_dit("DiT-N/2", **cfg))


def tiny_video_dit() -> VideoDiT:
    return randomize(VideoDiT(sample_size=TINY_T2V_SIZE, num_frames=TINY_T2V_FRAMES, patch_size=2, hidden_size=32,
                              depth=2, num_heads=2, text_dim=384, pooled_dim=384, branch_channels=(8,),
                              branch_depths=(1,)), std=0.1)


def clip_uint8(n=TINY_T2V_FRAMES, size=TINY_T2V_SIZE, seed=0) -> np.ndarray:
    """n random RGB frames of size×size, uint8."""
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)
