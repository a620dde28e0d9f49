"""Tiny random text-to-image, text-to-video and text-to-3D pipelines for the benchmarks' `--quick` smoke runs.

Weights are seeded noise of small scale, not the constructors' zero-initialised gates: an
all-zero model outputs the same frame whatever is cached, and would hide a broken benchmark.
"""

from __future__ import annotations

import torch

from dit import VideoDiT, VoxelDiT, build_dit, video_dit_config
from pipelines.core.text_encoder import load_minilm
from pipelines.t2i.default_model import shapes_pipeline
from pipelines.t23d.default_model import shapes_t23d_pipeline
from pipelines.t2v.default_model import shapes_t2v_pipeline


def _randomize(model: torch.nn.Module, seed: int = 0, std: float = 0.05) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * std)
    return model.eval()


def tiny_t2i():
    """A 16×16 pixel-space text-to-image pipeline: DiT-N/4 with 4 blocks, MiniLM text, flow matching."""
    transformer = build_dit("DiT-N/4", depth=4, sample_size=16, in_channels=3, condition="text", text_dim=384,
                            pooled_dim=384, adaln="single")
    text_encoder, tokenizer = load_minilm()
    return shapes_pipeline(_randomize(transformer), text_encoder=text_encoder, tokenizer=tokenizer)


def tiny_t2v():
    """An 8-frame 16×16 pixel-space text-to-video pipeline: the `tiny` VideoDiT with 4 blocks and no
    refine branches (with random branches the blocks barely move the output, and every cache looks
    lossless)."""
    transformer = VideoDiT(**video_dit_config("tiny", depth=4, branch_channels=(), branch_depths=()))
    text_encoder, tokenizer = load_minilm()
    return shapes_t2v_pipeline(_randomize(transformer), text_encoder=text_encoder, tokenizer=tokenizer)


def tiny_t23d():
    """A coloured text-to-3D pipeline: a VoxelDiT on 8³ voxels with 2 blocks (one windowed), MiniLM
    text, flow matching."""
    transformer = VoxelDiT(sample_size=8, patch_size=2, in_channels=6, hidden_size=32, depth=2, num_heads=2,
                           window_size=2, window_blocks=[0], text_dim=384, pooled_dim=384, adaln="single",
                           point_head_channels=8)
    text_encoder, tokenizer = load_minilm()
    return shapes_t23d_pipeline(_randomize(transformer, std=0.1), text_encoder=text_encoder, tokenizer=tokenizer)
