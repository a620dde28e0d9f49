"""Text-to-video: `TextToVideoPipeline`, a diffusers `DiffusionPipeline` around a ditkit `VideoDiT`.

Its call reads as the algorithm: encode prompt → prepare latents (and the given frames, if any)
→ denoise with classifier-free guidance, putting the given frames back clean before every model
call and after every step (VDT's mask modelling) → decode → output dataclass. Each transformer
call runs in a `cond`/`uncond` cache context so diffusers' cache hooks work; `acceleration=`
takes ditkit's caches and bottleneck sampling (`pipelines.core.acceleration`; the loop itself is
`pipelines.core.denoise`). The CLI lives in `pipelines.t2v.cli` and runs as `python -m pipelines.t2v`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import PIL.Image
import torch
from diffusers import DiffusionPipeline
from diffusers.utils import BaseOutput

import dit  # noqa: F401 — diffusers builds only components whose module is already imported
from dit.video_masks import given_frames_mask

from ..core.acceleration import AccelerationMixin, keeper
from ..core.errors import UserError
from ..core.guidance import guided_prediction, initial_latents
from ..core.hooks_state import reset_hook_state
from ..core.inputs import check_output_type, check_prompts, check_side, check_steps_and_guidance, prompt_lists
from ..core.pixels import from_unit_range, to_unit_range
from ..core.text_encoder import RestoresTextEncoder, encode_text
from .given_frames import given_frames

OUTPUT_TYPES = ("np", "pil", "pt", "latent")


@dataclass
class VideoPipelineOutput(BaseOutput):
    """frames: an array (B, F, H, W, 3) or tensor (B, F, 3, H, W) in [0, 1], a list (per video) of
    lists of PIL images, or the latents (B, C, F, h, w)."""

    frames: np.ndarray | torch.Tensor | list[list[PIL.Image.Image]]


class TextToVideoPipeline(AccelerationMixin, RestoresTextEncoder, DiffusionPipeline):
    """Text to video with a `VideoDiT`, a flow-matching scheduler and an optional frame-wise VAE.

    Pixel-space models have no `vae`. Given frames (`init_frames` to continue from, `keyframes`
    to pass through) are kept exactly in the output; the model generates the rest.
    """

    model_cpu_offload_seq = "text_encoder->transformer->vae"
    _optional_components = ["text_encoder", "tokenizer", "vae"]
    _callback_tensor_inputs = ["latents"]

    def __init__(self, transformer, scheduler, text_encoder=None, tokenizer=None, vae=None,
                 text_max_length: int = 32, text_encoder_package: str | None = None, fps: int = 8,
                 num_frames: int | None = None):
        super().__init__()
        self.register_modules(transformer=transformer, scheduler=scheduler, text_encoder=text_encoder,
                              tokenizer=tokenizer, vae=vae)
        self.register_to_config(text_max_length=text_max_length, text_encoder_package=text_encoder_package,
                                fps=fps, num_frames=num_frames or transformer.config.num_frames)
        self.vae_scale_factor = 2 ** (len(vae.config.block_out_channels) - 1) if vae is not None else 1
        self.first_frame_model = None  # a `FirstFrameModel`: image-first generation (see `set_first_frame_model`)

    def set_first_frame_model(self, model) -> None:
        """Let a text-to-image model draw each clip's first frame (a `FirstFrameModel`, or None for
        the video model alone). It is used when a call gives no frames of its own."""
        self.first_frame_model = model

    def to(self, *args, **kwargs):
        """As diffusers', and the first-frame model goes along."""
        moved = super().to(*args, **kwargs)
        if self.first_frame_model is not None:
            self.first_frame_model.pipeline.to(*args, **kwargs)
        return moved

    # ------------------------------------------------------------------ properties

    @property
    def latent_channels(self) -> int:
        return self.transformer.config.in_channels

    @property
    def spatial_multiple(self) -> int:
        """Height and width must be multiples of this (patch size × VAE down-sampling)."""
        return self.transformer.config.patch_size * self.vae_scale_factor

    @property
    def native_size(self) -> int:
        return self.transformer.config.sample_size * self.vae_scale_factor

    @property
    def max_frames(self) -> int:
        return self.transformer.config.num_frames

    # ------------------------------------------------------------------ inputs

    @torch.no_grad()
    def encode_prompt(self, prompts: list[str], device) -> dict:
        """→ transformer kwargs: token embeddings (B, L, E), mask (B, L), pooled (B, E)."""
        if self.text_encoder is None or self.tokenizer is None:
            raise UserError("this text-to-video pipeline has no text encoder/tokenizer loaded")
        hidden, mask, pooled = encode_text(self.text_encoder, self.tokenizer, prompts,
                                           self.config.text_max_length, device)
        return {"encoder_hidden_states": hidden, "encoder_attention_mask": mask, "pooled_text": pooled}

    def check_inputs(self, prompt, num_frames=None, height=None, width=None, num_inference_steps=25,
                     guidance_scale=4.0, init_frames=None, keyframes=None, negative_prompt=None,
                     output_type="np", acceleration=None, image_first=None):
        """Raises UserError naming the first bad value; None sizes mean the model's native ones.

        Returns what the checks built, so a call does not build it twice: the given frames
        (pixels, mask) or None, and the acceleration as (cache config, bottleneck config)."""
        prompts, negatives = prompt_lists(prompt, negative_prompt)
        check_prompts(prompts, negatives)
        check_steps_and_guidance(num_inference_steps, guidance_scale)
        check_output_type(output_type, OUTPUT_TYPES)
        num_frames, height, width = self.resolve_size(num_frames, height, width)
        if not isinstance(num_frames, int) or isinstance(num_frames, bool) or num_frames <= 0:
            raise UserError(f"num_frames must be a positive integer, got {num_frames!r}")
        if num_frames > self.max_frames:
            raise UserError(f"num_frames {num_frames} is beyond this model's limit of {self.max_frames} frames")
        for name, value in (("height", height), ("width", width)):
            check_side(name, value, self.spatial_multiple, self.native_size)
        given = given_frames(init_frames, keyframes, num_frames, height, width)
        if image_first not in (None, True, False):
            raise UserError(f"image_first must be None (auto), True or False, got {image_first!r}")
        if image_first and self.first_frame_model is None:
            raise UserError("image_first=True but this pipeline has no first-frame model "
                            "(set one with set_first_frame_model)")
        if image_first and given is not None:
            raise UserError("image_first=True draws the first frame, but init_frames/keyframes were given too")
        return given, self.check_acceleration(acceleration, num_inference_steps)

    def wants_first_frame(self, image_first, given) -> bool:
        """Image-first for this call: asked for, or (None) whenever a model is set and no frames are given."""
        if image_first is None:
            return self.first_frame_model is not None and given is None
        return bool(image_first)

    def resolve_size(self, num_frames, height, width) -> tuple:
        """None → the pipeline's default frame count and the model's native size."""
        return (self.config.num_frames if num_frames is None else num_frames,
                self.native_size if height is None else height, self.native_size if width is None else width)

    # ------------------------------------------------------------------ the call

    def prepare_latents(self, batch, num_frames, height, width, dtype, device, generator, latents=None):
        shape = (batch, self.latent_channels, num_frames, height // self.vae_scale_factor,
                 width // self.vae_scale_factor)
        return initial_latents(shape, self.scheduler, generator, device, dtype, latents)

    def predict(self, latents, t, cond: dict, uncond: dict | None, guidance_scale: float, extra: dict):
        """One guided velocity; cond and uncond run in their own cache contexts."""
        return guided_prediction(self.transformer, latents, t, cond, uncond, guidance_scale, extra)

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str],
        negative_prompt: str | list[str] | None = None,
        num_frames: int | None = None,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int = 25,
        guidance_scale: float = 4.0,
        num_videos_per_prompt: int = 1,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        init_frames=None,
        keyframes=None,
        output_type: str = "np",
        callback_on_step_end: Callable | None = None,
        callback_on_step_end_tensor_inputs: list[str] = ("latents",),
        return_dict: bool = True,
        acceleration=None,
        image_first: bool | None = None,
    ):
        """Generate clips for `prompt`. Returns `VideoPipelineOutput` (or a tuple of frames).

        init_frames: images (k, H, W, 3) uint8 or float in [0, 1], a tensor, or a list of PIL images,
        kept as frames 0..k-1. keyframes: {frame index: image} or [(index, image), …], kept at their
        index. guidance_scale ≤ 1 disables classifier-free guidance. callback_on_step_end(pipe, i, t,
        tensors) may return a dict whose `latents` replace the current ones.
        acceleration: a `samplers` cache config (attached for this call; one attached before with
        `samplers.apply_acceleration` stays), a `samplers.BottleneckConfig` (flow-matching
        schedulers; frames shrink spatially in its middle stage, the given frames with them), or a
        list of one of each. `samplers.stats(pipe.transformer)` then tells what was skipped.
        image_first: the first-frame model (`set_first_frame_model`) draws frame 0 of each clip, with
        the same steps and guidance, and the video model continues it; None (default) does so when a
        model is set and no frames are given, False never. The clip's noise is drawn first, so a
        seed gives the same noise either way.
        """
        given, (cache_config, bottleneck) = self.check_inputs(
            prompt, num_frames, height, width, num_inference_steps, guidance_scale, init_frames, keyframes,
            negative_prompt, output_type, acceleration, image_first)
        if not isinstance(num_videos_per_prompt, int) or num_videos_per_prompt <= 0:
            raise UserError(f"num_videos_per_prompt must be a positive integer, got {num_videos_per_prompt!r}")
        for name in callback_on_step_end_tensor_inputs:
            if name not in self._callback_tensor_inputs:
                raise UserError(f"callback tensor {name!r} is not available; "
                                f"choose from {self._callback_tensor_inputs}")
        num_frames, height, width = self.resolve_size(num_frames, height, width)
        prompts, negatives = prompt_lists(prompt, negative_prompt)
        reset_hook_state(self.transformer)

        device = self._execution_device
        dtype = self.transformer.dtype
        prompts = [p for p in prompts for _ in range(num_videos_per_prompt)]
        clip_negatives = [n for n in negatives for _ in range(num_videos_per_prompt)] if negatives else None
        batch = len(prompts)
        cond = self.encode_prompt(prompts, device)
        uncond = None
        if guidance_scale > 1.0:
            uncond = self.encode_prompt(clip_negatives or [""] * batch, device)

        self.scheduler.set_timesteps(num_inference_steps, device=device)
        latents = self.prepare_latents(batch, num_frames, height, width, dtype, device, generator, latents)
        if self.wants_first_frame(image_first, given):
            first = self.first_frame_model.draw(prompts, clip_negatives, height, width, num_inference_steps,
                                                guidance_scale, generator)  # (B, 3, H, W)
            pixels = torch.zeros(batch, num_frames, 3, height, width)
            pixels[:, 0] = first
            given = pixels, given_frames_mask(num_frames, 1, [])
        extra, clean, where = {}, None, None
        if given is not None:
            pixels, mask = given
            pixels = pixels if pixels.ndim == 5 else pixels[None]  # (1 shared | B per clip, F, 3, H, W)
            clean = torch.stack([self.encode_frames(p.to(device)) for p in pixels]).to(dtype)  # (1|B, C, F, h, w)
            extra = {"given_mask": mask[None].expand(batch, -1).to(device)}
            where = mask.to(device)[None, None, :, None, None]

        keep = keeper(clean, where, bottleneck)  # the given frames back in, clean
        latents = self.run_denoising(latents, lambda x, t: self.predict(x, t, cond, uncond, guidance_scale, extra),
                                     num_inference_steps, cache_config, bottleneck, generator, callback_on_step_end,
                                     callback_on_step_end_tensor_inputs, keep)

        if output_type == "latent":
            frames = latents
        else:
            video = self.decode(latents)  # (B, F, 3, H, W) in [0, 1]
            if given is not None:  # exactly the frames the user gave, whatever the VAE does to them
                video[:, mask.to(video.device)] = pixels[:, mask].to(video)
            frames = self.postprocess(video, output_type)
        self.maybe_free_model_hooks()
        if not return_dict:
            return (frames,)
        return VideoPipelineOutput(frames=frames)

    # ------------------------------------------------------------------ pixels <-> latents

    def encode_frames(self, pixels: torch.Tensor) -> torch.Tensor:
        """Given frames (F, 3, H, W) in [0, 1] → clean latents (C, F, h, w); identity in pixel space."""
        x = from_unit_range(pixels)
        if self.vae is not None:
            cfg = self.vae.config
            z = self.vae.encode(x.to(self.vae.dtype)).latent_dist.mode()
            x = (z - (cfg.get("shift_factor") or 0.0)) * cfg.scaling_factor
        return x.transpose(0, 1)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents (B, C, F, h, w) → frames (B, F, 3, H, W) in [0, 1], frame by frame through the VAE."""
        b, _, f = latents.shape[:3]
        frames = latents.transpose(1, 2).flatten(0, 1)  # (B·F, C, h, w)
        if self.vae is not None:
            cfg = self.vae.config
            z = frames.to(self.vae.dtype) / cfg.scaling_factor + (cfg.get("shift_factor") or 0.0)
            frames = self.vae.decode(z, return_dict=False)[0]
        frames = to_unit_range(frames.float())
        return frames.reshape(b, f, *frames.shape[1:])

    @staticmethod
    def postprocess(video: torch.Tensor, output_type: str):
        """(B, F, 3, H, W) in [0, 1] → the requested output form."""
        if output_type == "pt":
            return video
        array = video.permute(0, 1, 3, 4, 2).cpu().numpy().astype(np.float32)  # (B, F, H, W, 3)
        if output_type == "np":
            return array
        return [[PIL.Image.fromarray((frame * 255).round().astype(np.uint8)) for frame in clip] for clip in array]
