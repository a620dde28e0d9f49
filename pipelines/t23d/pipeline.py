"""Text to 3D: `T23DPipeline`, a diffusers `DiffusionPipeline` around a ditkit `VoxelDiT`.

Its call reads as the algorithm: encode prompt → draw noise points (B, N, C) → denoise with
classifier-free guidance (each transformer call in a `cond`/`uncond` cache context, so cache
hooks work; the loop itself is `pipelines.core.denoise`) → split xyz from rgb → output dataclass.
There is no decoder: the model denoises the points themselves (DiT-3D), xyz in the world's
[-1, 1]³ and, for a coloured model (6 channels), rgb mapped to [-1, 1].

Meshes are not made here: `pipelines.t23d.mesh` builds them from the points this returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from diffusers import DiffusionPipeline
from diffusers.utils import BaseOutput

import dit  # noqa: F401 — diffusers builds only components whose module is already imported
from ..core.acceleration import AccelerationMixin
from ..core.errors import UserError
from ..core.guidance import guided_prediction, initial_latents
from ..core.hooks_state import reset_hook_state
from ..core.inputs import check_output_type, check_prompts, check_steps_and_guidance, integer, prompt_lists
from ..core.text_encoder import RestoresTextEncoder, encode_text

MIN_POINTS = 2          # a cloud needs two points for a bounding box (the world's normalisation)
MAX_POINTS = 65536      # 32× the world's 2048: the voxel grid stays the same, memory grows with N


@dataclass
class T23DPipelineOutput(BaseOutput):
    """points: one (N, 3) float32 array per shape, xyz in the world's frame (about [-1, 1]³);
    colours: one (N, 3) float32 array of RGB in [0, 1] per shape, or None for an xyz-only model.
    With output_type "pt" both hold torch tensors of those shapes instead."""

    points: list[np.ndarray] | list[torch.Tensor]
    colours: list[np.ndarray] | list[torch.Tensor] | None = None


class T23DPipeline(AccelerationMixin, RestoresTextEncoder, DiffusionPipeline):
    """Text to a 3D point cloud (optionally coloured) with a `VoxelDiT` and any fitting diffusers
    flow-matching scheduler (`pipelines.core.schedulers`: flow-euler, flow-heun, dpm++, unipc)."""

    model_cpu_offload_seq = "text_encoder->transformer"
    _optional_components = ["text_encoder", "tokenizer"]
    _callback_tensor_inputs = ["latents"]

    def __init__(self, transformer, scheduler, text_encoder=None, tokenizer=None, text_max_length: int = 32,
                 text_encoder_package: str | None = None):
        super().__init__()
        self.register_modules(transformer=transformer, scheduler=scheduler, text_encoder=text_encoder,
                              tokenizer=tokenizer)
        self.register_to_config(text_max_length=text_max_length, text_encoder_package=text_encoder_package)

    # ------------------------------------------------------------------ properties

    @property
    def point_channels(self) -> int:
        """Channels per point the model denoises: 3 (xyz) or 6 (xyz + rgb)."""
        return self.transformer.config.in_channels

    @property
    def is_coloured(self) -> bool:
        return self.point_channels >= 6

    # ------------------------------------------------------------------ prompt encoding

    @torch.no_grad()
    def encode_prompt(self, prompts: list[str], device) -> dict:
        """→ transformer kwargs for these prompts: token embeddings (B, L, E), mask (B, L), pooled (B, E)."""
        if self.text_encoder is None or self.tokenizer is None:
            raise UserError("this text-to-3D pipeline has no text encoder/tokenizer loaded")
        hidden, mask, pooled = encode_text(self.text_encoder, self.tokenizer, prompts,
                                           self.config.text_max_length, device)
        return {"encoder_hidden_states": hidden, "encoder_attention_mask": mask, "pooled_text": pooled}

    # ------------------------------------------------------------------ checks

    def check_inputs(self, prompts, negative_prompts, num_inference_steps, guidance_scale, num_points,
                     output_type) -> None:
        check_prompts(prompts, negative_prompts)
        check_steps_and_guidance(num_inference_steps, guidance_scale)
        integer("num_points", num_points, MIN_POINTS, MAX_POINTS)
        check_output_type(output_type, ("np", "pt", "latent"))

    def check_point_acceleration(self, acceleration, num_inference_steps: int):
        """The cache configs of `acceleration`; bottleneck sampling resizes an image's latent grid,
        which a point cloud does not have, so it is refused."""
        cache_config, bottleneck = self.check_acceleration(acceleration, num_inference_steps)
        if bottleneck is not None:
            raise UserError("bottleneck sampling resizes image latents; it does not apply to point clouds "
                            "(use a cache method instead)")
        return cache_config

    # ------------------------------------------------------------------ the call

    def prepare_latents(self, batch: int, num_points: int, dtype, device, generator, latents=None):
        """Starting noise (B, N, C): standard normal points (or the caller's `latents`, checked)."""
        return initial_latents((batch, num_points, self.point_channels), self.scheduler, generator, device, dtype,
                               latents)

    def predict(self, latents, t, cond: dict, uncond: dict | None, guidance_scale: float):
        """One guided velocity (B, N, C) for points `latents` at timestep t."""
        return guided_prediction(self.transformer, latents, t, cond, uncond, guidance_scale, {})

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str],
        negative_prompt: str | list[str] | None = None,
        num_inference_steps: int = 25,
        guidance_scale: float = 4.0,
        generator: torch.Generator | list[torch.Generator] | None = None,
        num_points: int = 2048,
        latents: torch.Tensor | None = None,
        output_type: str = "np",
        return_dict: bool = True,
        callback_on_step_end: Callable | None = None,
        callback_on_step_end_tensor_inputs: list[str] = ("latents",),
        acceleration=None,
    ):
        """Generate one point cloud per prompt. Returns `T23DPipelineOutput` (or (points, colours)).

        num_points: points per cloud (the model was trained on 2048; it takes any count, the voxel
        grid being the same). latents: starting noise (B, num_points, C) instead of drawn noise.
        output_type "np" (float32 arrays), "pt" (tensors) or "latent" (points = the raw (B, N, C)
        tensor in the model's space, colours None). guidance_scale ≤ 1 disables classifier-free
        guidance. callback_on_step_end(pipe, i, t, {"latents": (B, N, C)}) may return a dict whose
        `latents` replace the current ones. acceleration: a `samplers` cache config (attached for
        this call); bottleneck sampling is refused.
        """
        prompts, negatives = prompt_lists(prompt, negative_prompt)
        self.check_inputs(prompts, negatives, num_inference_steps, guidance_scale, num_points, output_type)
        cache_config = self.check_point_acceleration(acceleration, num_inference_steps)
        reset_hook_state(self.transformer)

        device = self._execution_device
        dtype = self.transformer.dtype
        batch = len(prompts)
        do_cfg = guidance_scale > 1.0

        cond = self.encode_prompt(prompts, device)
        uncond = self.encode_prompt(negatives or [""] * batch, device) if do_cfg else None

        self.scheduler.set_timesteps(num_inference_steps, device=device)
        latents = self.prepare_latents(batch, num_points, dtype, device, generator, latents)  # (B, N, C)

        def predict(x, t):
            return self.predict(x, t, cond, uncond, guidance_scale)

        latents = self.run_denoising(latents, predict, num_inference_steps, cache_config, None, generator,
                                     callback_on_step_end, callback_on_step_end_tensor_inputs)

        points, colours = self.postprocess(latents, output_type)
        self.maybe_free_model_hooks()
        if not return_dict:
            return (points, colours)
        return T23DPipelineOutput(points=points, colours=colours)

    def postprocess(self, latents: torch.Tensor, output_type: str):
        """Denoised (B, N, C) → (points, colours): xyz as they are, rgb from [-1, 1] to [0, 1]."""
        if output_type == "latent":
            return latents, None
        latents = latents.float().cpu()
        xyz = list(latents[..., :3].unbind(0))  # B × (N, 3)
        rgb = list(((latents[..., 3:6] + 1) / 2).clamp(0, 1).unbind(0)) if self.is_coloured else None
        if output_type == "np":
            xyz = [p.numpy().astype(np.float32) for p in xyz]
            rgb = None if rgb is None else [c.numpy().astype(np.float32) for c in rgb]
        return xyz, rgb
