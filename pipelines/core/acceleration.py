"""A pipeline call's denoising with its `acceleration=` argument: what every ditkit pipeline shares.

`AccelerationMixin.run_denoising` checks nothing twice: `check_acceleration` turns the argument
(a `samplers` cache config, a `BottleneckConfig`, or a list of one of each) into the two configs
once per call; `run_denoising` attaches the cache for the call and runs either the one scheduler
loop (`pipelines.core.denoise`) or bottleneck sampling's loop. The pipeline keeps what differs:
its guided prediction (`predict`) and, for video, the given frames put back after every step
(`keep`).
"""

from __future__ import annotations

import contextlib
from typing import Callable

import torch

from samplers import BottleneckConfig, accelerated, resize, restart, sample_bottleneck, set_num_steps, split_acceleration

from .denoise import denoise, identity, step_end_callback
from .errors import UserError
from .schedulers import is_flow_matching


class AccelerationMixin:
    """For a `DiffusionPipeline` with a `transformer` and a `scheduler`."""

    def check_acceleration(self, acceleration, num_inference_steps: int):
        """`acceleration` → (cache config, bottleneck config), refusing what cannot run here."""
        try:
            cache_config, bottleneck = split_acceleration(acceleration)
        except ValueError as err:
            raise UserError(str(err)) from None
        if bottleneck is not None:
            if not is_flow_matching(self.scheduler):
                raise UserError(f"bottleneck sampling needs a flow-matching scheduler, not "
                                f"{type(self.scheduler).__name__}")
            if num_inference_steps < len(bottleneck.stages):
                raise UserError(f"bottleneck sampling with {len(bottleneck.stages)} stages needs at least "
                                f"{len(bottleneck.stages)} steps, got {num_inference_steps}")
        return cache_config, bottleneck

    @contextlib.contextmanager
    def accelerated(self, cache_config):
        """The cache policy on the transformer while the block runs (see `samplers.accelerated`)."""
        stack = contextlib.ExitStack()
        try:
            stack.enter_context(accelerated(self.transformer, cache_config))
        except ValueError as err:
            raise UserError(str(err)) from None
        with stack:
            yield

    def run_denoising(self, latents: torch.Tensor, predict: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                      num_inference_steps: int, cache_config, bottleneck: BottleneckConfig | None, generator,
                      callback_on_step_end, callback_on_step_end_tensor_inputs,
                      keep: Callable[[torch.Tensor], torch.Tensor] = identity) -> torch.Tensor:
        """The denoising of one call: the cache attached, then the scheduler's loop or, with
        `bottleneck`, bottleneck sampling's (`scheduler.set_timesteps` already called).

        predict(x, t) → the guided model output for latents x (any bottleneck stage's size) at t.
        """
        step_end = step_end_callback(self, callback_on_step_end, callback_on_step_end_tensor_inputs)
        with self.accelerated(cache_config):
            if bottleneck is not None:
                return self.bottleneck_loop(bottleneck, latents, predict, num_inference_steps, generator, step_end,
                                            keep)
            set_num_steps(self.transformer, len(self.scheduler.timesteps))  # forwards per cache context
            with self.progress_bar(total=len(self.scheduler.timesteps)) as progress:
                return denoise(self.scheduler, latents, predict, generator=generator, keep=keep,
                               step_end=step_end, progress=progress.update)

    def model_timestep(self, sigma: float, device) -> torch.Tensor:
        """A flow-matching σ as the transformer's timestep (σ · num_train_timesteps, as the scheduler's)."""
        return torch.tensor(sigma * self.scheduler.config.get("num_train_timesteps", 1000), device=device,
                            dtype=torch.float32)

    def bottleneck_loop(self, config: BottleneckConfig, latents: torch.Tensor,
                        predict: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], num_inference_steps: int,
                        generator, step_end: Callable[[int, torch.Tensor, torch.Tensor], torch.Tensor],
                        keep: Callable[[torch.Tensor], torch.Tensor] = identity) -> torch.Tensor:
        """Flow-matching Euler steps at full → low → full resolution (`samplers.sample_bottleneck`);
        caches restart at each stage, since the number of tokens changes.

        predict(x, t) → the guided velocity for latents x (any stage's size) at model timestep t.
        keep(x) → x with what must not change (given frames) put back; it sees every model input
        and every step's result, at the stage's size. step_end(i, t, x) → x: the user's callback.
        """
        def velocity(x, sigma):
            return predict(keep(x), self.model_timestep(sigma, x.device))

        with self.progress_bar(total=num_inference_steps) as progress:
            def stage_step_end(i, sigma, x):
                x = step_end(i, self.model_timestep(sigma, x.device), keep(x))
                progress.update()
                return x

            return sample_bottleneck(velocity, latents, config, num_inference_steps,
                                     multiple=self.transformer.config.patch_size, generator=generator,
                                     callback=stage_step_end,
                                     on_stage_start=lambda k, plan: restart(self.transformer, plan.num_steps))


def keeper(clean: torch.Tensor | None, where: torch.Tensor | None,
           bottleneck: BottleneckConfig | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """→ keep(x): the given frames' clean latents `clean` (1, C, F, h, w) put back into x where
    `where` (1, 1, F, 1, 1) is true. At a bottleneck stage's size they are resized per frame the way
    the stage resizes its own estimate, so the model sees them as it sees everything else there."""
    if clean is None:
        return lambda x: x
    sized = {tuple(clean.shape[-2:]): clean}

    def keep(x: torch.Tensor) -> torch.Tensor:
        size = tuple(x.shape[-2:])
        if size not in sized:
            if bottleneck is None:
                raise ValueError(f"latents of frame size {size} but given frames of {tuple(clean.shape[-2:])}")
            smaller = size[0] * size[1] < clean.shape[-2] * clean.shape[-1]
            sized[size] = resize(clean, size, bottleneck.down_mode if smaller else bottleneck.up_mode)
        return torch.where(where, sized[size], x)

    return keep
