"""Turns a `--model` path into a text-to-video pipeline with ditkit's call, whatever wrote the folder.

Accepted: a ditkit `TextToVideoPipeline` folder, and diffusers `LattePipeline` /
`CogVideoXPipeline` folders. The diffusers ones are loaded by their own class, untouched, and
wrapped in a small adapter that speaks the subset of ditkit's call they can serve (prompt,
negative prompt, frames, size, steps, guidance, generator); continuing a clip, keyframes and
`acceleration=` are ditkit's own and are refused by name.
"""

from __future__ import annotations

import math
from pathlib import Path

import diffusers
import torch
from diffusers.configuration_utils import FrozenDict

from ..core.errors import UserError
from ..core.inputs import check_output_type, check_prompts, check_steps_and_guidance, prompt_lists
from ..core.model_index import load_error, read_model_index
from .default_model import load_default_t2v
from .pipeline import TextToVideoPipeline

FOREIGN_FPS = 8  # CogVideoX's rate (49 frames = 6 s); Latte's folders record none, so they get the same


class ForeignVideoPipeline:
    """A diffusers video pipeline behind `TextToVideoPipeline.__call__`'s signature.

    `config.fps` and `config.num_frames` are the defaults the CLI reads; `scheduler` reads and
    replaces the wrapped pipeline's scheduler.
    """

    def __init__(self, pipe):
        self.pipe = pipe
        self.config = FrozenDict(fps=FOREIGN_FPS, num_frames=self.native_frames)

    # ------------------------------------------------------------------ what each kind differs in

    @property
    def native_frames(self) -> int:
        raise NotImplementedError

    @property
    def spatial_multiple(self) -> int:
        raise NotImplementedError

    def check_frames(self, num_frames: int) -> None:
        raise NotImplementedError

    def call_kwargs(self, prompts: list[str], negative, num_frames: int, num_videos_per_prompt: int) -> dict:
        """The wrapped pipeline's own keyword arguments for this request."""
        raise NotImplementedError

    # ------------------------------------------------------------------ shared

    @property
    def name(self) -> str:
        return type(self.pipe).__name__

    @property
    def scheduler(self):
        return self.pipe.scheduler

    @scheduler.setter
    def scheduler(self, scheduler) -> None:
        self.pipe.scheduler = scheduler

    def set_progress_bar_config(self, **kwargs) -> None:
        self.pipe.set_progress_bar_config(**kwargs)

    def to(self, *args, **kwargs) -> "ForeignVideoPipeline":
        self.pipe.to(*args, **kwargs)
        return self

    def check_inputs(self, prompt, num_frames=None, height=None, width=None, num_inference_steps=25,
                     guidance_scale=4.0, init_frames=None, keyframes=None, negative_prompt=None,
                     output_type="np", acceleration=None) -> None:
        """Raises UserError naming the first value the wrapped pipeline cannot take."""
        prompts, negatives = prompt_lists(prompt, negative_prompt)
        check_prompts(prompts, negatives)
        for what, value in (("init_frames", init_frames), ("keyframes", keyframes),
                            ("caches and bottleneck sampling (acceleration)", acceleration)):
            if value is not None:
                raise UserError(f"{what} are not supported by {self.name} (only by ditkit's TextToVideoPipeline)")
        check_steps_and_guidance(num_inference_steps, guidance_scale)
        check_output_type(output_type, ("np", "pil", "pt", "latent"))
        if num_frames is not None:
            if not isinstance(num_frames, int) or isinstance(num_frames, bool) or num_frames <= 0:
                raise UserError(f"num_frames must be a positive integer, got {num_frames!r}")
            self.check_frames(num_frames)
        for side, value in (("height", height), ("width", width)):
            if value is not None and (not isinstance(value, int) or value <= 0 or value % self.spatial_multiple):
                raise UserError(f"{side} {value!r} must be a positive multiple of {self.spatial_multiple} "
                                f"for this {self.name}")

    @torch.no_grad()
    def __call__(self, prompt, negative_prompt=None, num_frames=None, height=None, width=None,
                 num_inference_steps: int = 25, guidance_scale: float = 4.0, num_videos_per_prompt: int = 1,
                 generator=None, latents=None, init_frames=None, keyframes=None, output_type: str = "np",
                 callback_on_step_end=None, callback_on_step_end_tensor_inputs=("latents",), return_dict=True,
                 acceleration=None):
        """As `TextToVideoPipeline.__call__`; `latents` are in the wrapped pipeline's own layout."""
        self.check_inputs(prompt, num_frames, height, width, num_inference_steps, guidance_scale, init_frames,
                          keyframes, negative_prompt, output_type, acceleration)
        prompts, _ = prompt_lists(prompt)
        kwargs = self.call_kwargs(prompts, negative_prompt, num_frames or self.native_frames, num_videos_per_prompt)
        return self.pipe(height=height, width=width, num_inference_steps=num_inference_steps,
                         guidance_scale=guidance_scale, generator=generator, latents=latents,
                         output_type=output_type, callback_on_step_end=callback_on_step_end,
                         callback_on_step_end_tensor_inputs=list(callback_on_step_end_tensor_inputs),
                         return_dict=return_dict, **kwargs)


class LatteAdapter(ForeignVideoPipeline):
    """Latte adds a fixed temporal position table of `video_length` rows: it makes exactly that many frames."""

    @property
    def native_frames(self) -> int:
        return self.pipe.transformer.config.video_length

    @property
    def spatial_multiple(self) -> int:
        # Latte's own check wants multiples of 8; the latent grid wants the VAE factor × patch size
        return math.lcm(8, self.pipe.vae_scale_factor * self.pipe.transformer.config.patch_size)

    def check_frames(self, num_frames: int) -> None:
        if num_frames not in (1, self.native_frames):
            raise UserError(f"num_frames {num_frames} is not possible for this {self.name}: it makes exactly "
                            f"{self.native_frames} frames (or 1)")

    def call_kwargs(self, prompts, negative, num_frames, num_videos_per_prompt) -> dict:
        return dict(prompt=prompts, negative_prompt="" if negative is None else negative, video_length=num_frames,
                    num_images_per_prompt=num_videos_per_prompt, clean_caption=False)


class CogVideoXAdapter(ForeignVideoPipeline):
    """CogVideoX compresses time 4× (first frame apart) and its VAE decodes latent frames in pairs
    after the first, so only 1 + 2·4·k frames come out as asked (9, 17, …, 49)."""

    @property
    def frame_step(self) -> int:
        return 2 * self.pipe.vae_scale_factor_temporal

    @property
    def native_frames(self) -> int:
        return self.pipe.transformer.config.sample_frames

    @property
    def spatial_multiple(self) -> int:
        return math.lcm(8, self.pipe.vae_scale_factor_spatial * self.pipe.transformer.config.patch_size)

    def check_frames(self, num_frames: int) -> None:
        if (num_frames - 1) % self.frame_step:
            raise UserError(f"num_frames {num_frames} is not possible for this {self.name}: it makes "
                            f"1 + {self.frame_step}·k frames (e.g. {1 + self.frame_step}, {1 + 2 * self.frame_step})")

    def call_kwargs(self, prompts, negative, num_frames, num_videos_per_prompt) -> dict:
        # CogVideoX ignores num_videos_per_prompt; repeating the prompts gives the same batch
        prompts = [p for p in prompts for _ in range(num_videos_per_prompt)]
        if isinstance(negative, list):
            negative = [n for n in negative for _ in range(num_videos_per_prompt)]
        return dict(prompt=prompts, negative_prompt=negative, num_frames=num_frames,
                    max_sequence_length=self.pipe.transformer.config.max_text_seq_length)


ADAPTERS = {"LattePipeline": LatteAdapter, "CogVideoXPipeline": CogVideoXAdapter}


def load_t2v_pipeline(path: str | Path | None = None, device: str | torch.device = "cpu",
                      dtype: torch.dtype = torch.float32):
    """The text-to-video pipeline stored at `path` (None: the shipped default) on `device` in `dtype`."""
    if path is None:
        return load_default_t2v().to(device=device, dtype=dtype)
    path = Path(path)
    index = read_model_index(path)
    kind = index.get("_class_name")
    if kind != "TextToVideoPipeline" and kind not in ADAPTERS:
        raise UserError(f"unsupported pipeline {kind!r} in {path}; ditkit's t2v loads TextToVideoPipeline, "
                        f"{', '.join(ADAPTERS)} folders")
    try:
        if kind == "TextToVideoPipeline":
            pipe = TextToVideoPipeline.from_pretrained(path)
        else:
            pipe = ADAPTERS[kind](getattr(diffusers, kind).from_pretrained(path, use_safetensors=True))
    except Exception as err:  # corrupted safetensors, missing subfolders, bad configs …
        raise load_error(path, err) from None
    return pipe.to(device=device, dtype=dtype)
