"""Text-to-image: `TextToImagePipeline`, a diffusers `DiffusionPipeline` around a ditkit DiT.

Its call reads as the algorithm: encode prompt → prepare latents → denoise with classifier-free
guidance (each transformer call in a `cond`/`uncond` cache context, so diffusers' cache hooks
work; the loop itself is `pipelines.core.denoise`) → decode → output dataclass. The CLI lives
in `pipelines.t2i.cli` and runs as `python -m pipelines.t2i`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import PIL.Image
import torch
from diffusers import DiffusionPipeline
from diffusers.image_processor import VaeImageProcessor
from diffusers.utils import BaseOutput

import dit  # noqa: F401 — diffusers builds only components whose module is already imported
from ..core.acceleration import AccelerationMixin
from ..core.errors import UserError
from ..core.guidance import guided_prediction, initial_latents
from ..core.hooks_state import reset_hook_state
from ..core.inputs import check_output_type, check_prompts, check_side, check_steps_and_guidance, prompt_lists
from ..core.text_encoder import RestoresTextEncoder, encode_text
from ..core.pixels import to_unit_range


@dataclass
class ImagePipelineOutput(BaseOutput):
    """images: list of PIL images, or an array (B, H, W, 3) / tensor (B, 3, H, W) in [0, 1]."""

    images: list[PIL.Image.Image] | np.ndarray | torch.Tensor


class TextToImagePipeline(AccelerationMixin, RestoresTextEncoder, DiffusionPipeline):
    """Text (or class-label) to image with a DiT, any fitting diffusers scheduler, optional VAE.

    Pixel-space models have no `vae`; class-conditional models (DiT-XL/2) have no text encoder
    and take a label name or class index as the prompt.
    """

    model_cpu_offload_seq = "text_encoder->transformer->vae"
    _optional_components = ["text_encoder", "tokenizer", "vae"]
    _callback_tensor_inputs = ["latents"]

    def __init__(self, transformer, scheduler, text_encoder=None, tokenizer=None, vae=None,
                 text_max_length: int = 32, text_encoder_package: str | None = None,
                 id2label: dict | None = None):
        super().__init__()
        self.register_modules(transformer=transformer, scheduler=scheduler, text_encoder=text_encoder,
                              tokenizer=tokenizer, vae=vae)
        self.register_to_config(text_max_length=text_max_length, text_encoder_package=text_encoder_package,
                                id2label=id2label)
        self.vae_scale_factor = 2 ** (len(vae.config.block_out_channels) - 1) if vae is not None else 1
        # decode gives [0, 1] already: the processor only converts (no denormalising)
        self.image_processor = VaeImageProcessor(vae_scale_factor=self.vae_scale_factor, do_normalize=False)

    # ------------------------------------------------------------------ properties

    @property
    def is_text_conditioned(self) -> bool:
        return self.transformer.config.get("condition", "text") == "text"

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

    # ------------------------------------------------------------------ prompt encoding

    def label_ids(self, prompts: list[str]) -> torch.Tensor:
        """Class-conditional models: each prompt is a class index or a label name (from id2label)."""
        num_classes = self.transformer.config.num_classes
        by_name = {}
        for key, value in (self.config.id2label or {}).items():
            for name in str(value).split(","):
                by_name[name.strip().lower()] = int(key)
        ids = []
        for p in prompts:
            text = p.strip().lower()
            if text.isdigit() and int(text) < num_classes:
                ids.append(int(text))
            elif text in by_name:
                ids.append(by_name[text])
            else:
                raise UserError(f"prompt {p!r} is not a class index below {num_classes} or a known label "
                                f"of this class-conditional model")
        return torch.tensor(ids, device=self._execution_device)

    @torch.no_grad()
    def encode_prompt(self, prompts: list[str], device) -> dict:
        """→ transformer kwargs for these prompts: token embeddings (B, L, E), mask (B, L), pooled (B, E)."""
        if not self.is_text_conditioned:
            return {"class_labels": self.label_ids(prompts)}
        if self.text_encoder is None or self.tokenizer is None:
            raise UserError("this text-conditioned pipeline has no text encoder/tokenizer loaded")
        hidden, mask, pooled = encode_text(self.text_encoder, self.tokenizer, prompts,
                                           self.config.text_max_length, device)
        return {"encoder_hidden_states": hidden, "encoder_attention_mask": mask, "pooled_text": pooled}

    def size_conditions(self, batch: int, height: int, width: int, device, dtype) -> dict:
        """PixArt-α 1024-style resolution / aspect-ratio inputs, when the model takes them."""
        if not self.transformer.config.get("size_conditioning", False):
            return {}
        res = torch.tensor([[height, width]], device=device, dtype=dtype).repeat(batch, 1)
        ar = torch.tensor([[height / width]], device=device, dtype=dtype).repeat(batch, 1)
        return {"resolution": res, "aspect_ratio": ar}

    # ------------------------------------------------------------------ checks

    def check_inputs(self, prompts, negative_prompts, height, width, num_inference_steps, guidance_scale):
        check_prompts(prompts, negative_prompts)
        check_steps_and_guidance(num_inference_steps, guidance_scale)
        for name, value in (("height", height), ("width", width)):
            check_side(name, value, self.spatial_multiple, self.native_size)

    # ------------------------------------------------------------------ the call

    def prepare_latents(self, batch, height, width, dtype, device, generator, latents=None):
        shape = (batch, self.latent_channels, height // self.vae_scale_factor, width // self.vae_scale_factor)
        return initial_latents(shape, self.scheduler, generator, device, dtype, latents)

    def predict(self, latents, t, cond: dict, uncond: dict | None, guidance_scale: float, extra: dict):
        """One guided model prediction (a learned-sigma half stays the cond one, or is dropped
        when the scheduler does not use it)."""
        out = guided_prediction(self.transformer, latents, t, cond, uncond, guidance_scale, extra,
                                guided_channels=self.latent_channels)
        if out.shape[1] != self.latent_channels and not self.scheduler_learns_variance:
            out = out[:, : self.latent_channels]
        return out

    @property
    def scheduler_learns_variance(self) -> bool:
        return self.scheduler.config.get("variance_type") in ("learned", "learned_range")

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str],
        negative_prompt: str | list[str] | None = None,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int = 25,
        guidance_scale: float = 4.0,
        num_images_per_prompt: int = 1,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        output_type: str = "pil",
        callback_on_step_end: Callable | None = None,
        callback_on_step_end_tensor_inputs: list[str] = ("latents",),
        return_dict: bool = True,
        acceleration=None,
    ):
        """Generate images for `prompt`. Returns `ImagePipelineOutput` (or a tuple of images).

        guidance_scale ≤ 1 disables classifier-free guidance. callback_on_step_end(pipe, i, t,
        tensors) may return a dict whose `latents` replace the current ones.
        acceleration: a `samplers` cache config (attached for this call; one attached before with
        `samplers.apply_acceleration` stays), a `samplers.BottleneckConfig` (flow-matching
        schedulers; the latents change size between its stages), or a list of one of each.
        `samplers.stats(pipe.transformer)` then tells what was skipped.
        """
        prompts, negatives = prompt_lists(prompt, negative_prompt)
        height = height or self.native_size
        width = width or self.native_size
        self.check_inputs(prompts, negatives, height, width, num_inference_steps, guidance_scale)
        check_output_type(output_type, ("pil", "np", "pt", "latent"))
        cache_config, bottleneck = self.check_acceleration(acceleration, num_inference_steps)
        reset_hook_state(self.transformer)

        device = self._execution_device
        dtype = self.transformer.dtype
        prompts = [p for p in prompts for _ in range(num_images_per_prompt)]
        batch = len(prompts)
        do_cfg = guidance_scale > 1.0

        cond = self.encode_prompt(prompts, device)
        uncond = None
        if do_cfg:
            if self.is_text_conditioned:
                negatives = [n for n in negatives for _ in range(num_images_per_prompt)] if negatives else [""] * batch
                uncond = self.encode_prompt(negatives, device)
            else:
                uncond = {"class_labels": torch.full((batch,), self.transformer.config.num_classes, device=device)}
        extra = self.size_conditions(batch, height, width, device, dtype)

        self.scheduler.set_timesteps(num_inference_steps, device=device)
        latents = self.prepare_latents(batch, height, width, dtype, device, generator, latents)

        def predict(x, t):  # at a bottleneck stage's size too, with its size conditions
            h, w = x.shape[-2] * self.vae_scale_factor, x.shape[-1] * self.vae_scale_factor
            return self.predict(x, t, cond, uncond, guidance_scale,
                                extra if (h, w) == (height, width) else self.size_conditions(batch, h, w, device, dtype))

        latents = self.run_denoising(latents, predict, num_inference_steps, cache_config, bottleneck, generator,
                                     callback_on_step_end, callback_on_step_end_tensor_inputs)

        if output_type == "latent":
            images = latents
        else:
            images = self.decode(latents)
            images = self.image_processor.postprocess(images, output_type=output_type)
        self.maybe_free_model_hooks()
        if not return_dict:
            return (images,)
        return ImagePipelineOutput(images=images)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents (B, C, h, w) → images (B, 3, H, W) in [0, 1]; pixel-space models have no VAE."""
        if self.vae is None:
            return to_unit_range(latents.float())
        cfg = self.vae.config
        z = latents.to(self.vae.dtype) / cfg.scaling_factor + (cfg.get("shift_factor") or 0.0)
        return to_unit_range(self.vae.decode(z, return_dict=False)[0].float())
