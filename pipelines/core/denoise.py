"""The one denoising loop every ditkit pipeline runs, in the k-diffusion manner: a plain function.

    for i, t in enumerate(timesteps):
        x = keep(x)                                  # given frames back in (video), else as is
        out = predict(scheduler.scale_model_input(x, t), t)
        x = keep(scheduler.step(out, t, x))
        x = step_end(i, t, x)                        # the user's callback_on_step_end

Any diffusers scheduler drives it. Acceleration wraps it (`pipelines.core.acceleration`): block
caches as hooks on the transformer, bottleneck sampling as a loop of its own with the same
`predict`, `keep` and `step_end`.
"""

from __future__ import annotations

import inspect
from typing import Callable

import torch

Tensor = torch.Tensor


def identity(x: Tensor) -> Tensor:
    return x


def scale_model_input(scheduler, latents: Tensor, t) -> Tensor:
    """The scheduler's input scaling; flow-matching schedulers have none."""
    scale = getattr(scheduler, "scale_model_input", None)
    return scale(latents, t) if scale is not None else latents


def step_kwargs(scheduler, generator) -> dict:
    """Stochastic schedulers take the generator; deterministic ones (UniPC, …) have no such argument."""
    return {"generator": generator} if "generator" in inspect.signature(scheduler.step).parameters else {}


def step_end_callback(pipe, callback: Callable | None, tensor_inputs) -> Callable[[int, Tensor, Tensor], Tensor]:
    """diffusers' `callback_on_step_end(pipe, i, t, {name: tensor})` as step_end(i, t, x) → x:
    a returned dict's `latents` replace the current ones."""
    if callback is None:
        return lambda i, t, x: x

    def step_end(i: int, t: Tensor, x: Tensor) -> Tensor:
        available = {"latents": x}
        tensors = {k: available[k] for k in tensor_inputs}
        return (callback(pipe, i, t, tensors) or {}).get("latents", x)

    return step_end


def denoise(scheduler, latents: Tensor, predict: Callable[[Tensor, Tensor], Tensor], *, generator=None,
            keep: Callable[[Tensor], Tensor] = identity,
            step_end: Callable[[int, Tensor, Tensor], Tensor] | None = None,
            progress: Callable[[], None] | None = None) -> Tensor:
    """Runs `scheduler` over its timesteps (set_timesteps already called) from `latents` (B, C, …).

    predict(x, t) → the guided model output for the scaled input x at timestep t.
    keep(x) → x with what must not change put back; it sees every step's input and result.
    step_end(i, t, x) → x after step i (the user's callback). progress() is called once a step.
    """
    extra = step_kwargs(scheduler, generator)
    for i, t in enumerate(scheduler.timesteps):
        latents = keep(latents)
        out = predict(scale_model_input(scheduler, latents, t), t)
        latents = keep(scheduler.step(out, t, latents, **extra, return_dict=False)[0])
        if step_end is not None:
            latents = step_end(i, t, latents)
        if progress is not None:
            progress()
    return latents
