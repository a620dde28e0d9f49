"""Bare transformers with a toy trajectory, and cache configs that never or always reuse: plain
functions and constants shared by the samplers tests (test modules import this, never each other)."""

from __future__ import annotations

import torch
from diffusers import DiTTransformer2DModel, LatteTransformer3DModel, PixArtTransformer2DModel

import samplers
from dit import MultiResDiT, VideoDiT
from samplers import (BottleneckConfig, BottleneckStage, BWCacheConfig, CGTaylorConfig, FBCacheConfig,
                      IntervalCacheConfig, TaylorSeerConfig)

from .tiny_models import randomize, tiny_text_dit

# ---------------------------------------------------------------- tiny bare transformers


def text(ctx: int, length: int = 5, dim: int = 16) -> torch.Tensor:
    return torch.randn(2, length, dim, generator=torch.Generator().manual_seed(10 + ctx))


def build(name: str, std: float = 0.2):
    """→ (model in eval mode, input shape, forward(model, x, t, ctx) → output); ctx 0/1 = cond/uncond."""
    model, shape, fwd = _build(name, std)
    return model.eval(), shape, fwd  # eval: diffusers' label embedding drops labels at random in training


def _build(name: str, std: float):
    if name == "dit":
        def fwd(m, x, t, c):
            return m(x, t, encoder_hidden_states=text(c, dim=384), pooled_text=text(c, 1, 384)[:, 0]).sample

        return randomize(tiny_text_dit(depth=3), std=std), (2, 3, 8, 8), fwd
    if name in ("multires", "video"):
        def fwd(m, x, t, c):
            return m(x, t, encoder_hidden_states=text(c), pooled_text=text(c)[:, 0]).sample

        if name == "multires":
            model = MultiResDiT(sample_size=8, patch_size=2, hidden_size=32, depth=3, num_heads=2, text_dim=16,
                                pooled_dim=16, branch_channels=(8,), branch_depths=(1,))
            return randomize(model, std=std), (2, 3, 8, 8), fwd
        model = VideoDiT(sample_size=8, num_frames=2, patch_size=2, hidden_size=16, depth=2, num_heads=2, text_dim=16,
                         pooled_dim=16, branch_channels=(8,), branch_depths=(1,))
        return randomize(model, std=std), (2, 3, 2, 8, 8), fwd
    if name == "diffusers-dit":
        def fwd(m, x, t, c):
            labels = torch.tensor([1, 2]) if c == 0 else torch.tensor([9, 9])
            return m(x, t.expand(2).long(), class_labels=labels).sample

        model = DiTTransformer2DModel(num_attention_heads=2, attention_head_dim=8, in_channels=4, num_layers=3,
                                      sample_size=8, patch_size=2, num_embeds_ada_norm=10, norm_num_groups=1)
        return randomize(model, std=std), (2, 4, 8, 8), fwd
    if name == "pixart":
        def fwd(m, x, t, c):
            return m(x, encoder_hidden_states=text(c), timestep=t.expand(2),
                     added_cond_kwargs={"resolution": None, "aspect_ratio": None}).sample

        model = PixArtTransformer2DModel(num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=8,
                                         num_layers=3, sample_size=8, patch_size=2, cross_attention_dim=16,
                                         caption_channels=16, norm_num_groups=1)
        return randomize(model, std=std), (2, 4, 8, 8), fwd
    if name == "latte":
        def fwd(m, x, t, c):
            return m(x, timestep=t.expand(2), encoder_hidden_states=text(c)).sample

        model = LatteTransformer3DModel(num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=8,
                                        num_layers=2, sample_size=8, patch_size=2, cross_attention_dim=16,
                                        caption_channels=16, video_length=2, norm_type="ada_norm_single",
                                        num_embeds_ada_norm=1000, norm_elementwise_affine=False, norm_eps=1e-6)
        return randomize(model, std=std), (2, 4, 2, 8, 8), fwd
    raise KeyError(name)


def trajectory(model, fwd, shape, steps: int = 6, contexts=("cond", "uncond"), speed: float = 1.0) -> torch.Tensor:
    """Outputs along a toy trajectory (inputs drift by `speed` per step), each step in every context."""
    g = torch.Generator().manual_seed(0)
    x0, drift = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
    outs = []
    with torch.no_grad():
        for i in range(steps):
            x, t = x0 + 0.01 * speed * i * drift, torch.tensor(600.0 - speed * i)
            for name in contexts:
                with samplers.cache_context(model, name):
                    outs.append(fwd(model, x, t, 0 if name == "cond" else 1))
    return torch.stack(outs)


# ---------------------------------------------------------------- cache configs

NEVER_REUSE = [IntervalCacheConfig(interval=1), FBCacheConfig(threshold=0.0), BWCacheConfig(threshold=0.0),
               BWCacheConfig(threshold=0.0, per_block=not BWCacheConfig.per_block,
                             forecast_head=not BWCacheConfig.forecast_head),
               TaylorSeerConfig(interval=1, order=2), CGTaylorConfig(threshold=0.0)]
ALWAYS_REUSE = [IntervalCacheConfig(interval=3), FBCacheConfig(threshold=float("inf")),
                BWCacheConfig(threshold=float("inf"), final_steps_full=1), TaylorSeerConfig(interval=3, order=1),
                CGTaylorConfig(threshold=float("inf"), order=1)]
ids = lambda configs: [samplers.method_name(c) for c in configs]  # noqa: E731

# the first default plan (a half-size middle stage): fixed stages for tests of the mechanism
HALF_SIZE_PLAN = BottleneckConfig(stages=(BottleneckStage(1, 0.2, 1, 0.8), BottleneckStage(0.5, 0.5, 0.85, 0.35),
                                          BottleneckStage(1, 0.3, 0.7, 0)))
