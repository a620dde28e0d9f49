"""What every ditkit pipeline does the same way at each step: the starting noise and the guided
model call (cond and uncond in their own cache contexts, so cache hooks keep two states)."""

from __future__ import annotations

import torch
from diffusers.utils.torch_utils import randn_tensor

from .errors import UserError


def initial_latents(shape: tuple, scheduler, generator, device, dtype, latents=None) -> torch.Tensor:
    """Seeded starting noise of `shape` (or the caller's `latents`, checked), scaled as the scheduler wants."""
    if latents is None:
        latents = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
    elif tuple(latents.shape) != tuple(shape):
        raise UserError(f"latents have shape {tuple(latents.shape)}, expected {tuple(shape)}")
    return latents.to(device=device, dtype=dtype) * getattr(scheduler, "init_noise_sigma", 1.0)


def guided_prediction(transformer, latents, t, cond: dict, uncond: dict | None, guidance_scale: float,
                      extra: dict, guided_channels: int | None = None) -> torch.Tensor:
    """The model's prediction with classifier-free guidance on its first `guided_channels`
    channels (all when None); channels past them (a learned sigma) keep the cond value."""
    t_in = t.expand(latents.shape[0]).to(latents.device)
    with transformer.cache_context("cond"):
        out = transformer(latents, t_in, **cond, **extra, return_dict=False)[0]
    if uncond is None:
        return out
    with transformer.cache_context("uncond"):
        out_u = transformer(latents, t_in, **uncond, **extra, return_dict=False)[0]
    c = out.shape[1] if guided_channels is None else guided_channels
    guided = out_u[:, :c] + guidance_scale * (out[:, :c] - out_u[:, :c])
    return guided if c == out.shape[1] else torch.cat([guided, out[:, c:]], dim=1)
