"""Image-first text to video: a text-to-image model draws each clip's first frame, and the video
model continues it as a given frame (VDT's mask modelling), as Emu Video factorises the task.

Why: ditkit's video models get colour, position, background and motion right but draw shapes
worse than the image models do (the pixel video model shipped before issue 22 drew small shapes
ragged at 32×32; the latent one shipped since draws 64×64 frames and still keeps the prompt's
shape in few of them), while the shipped image model draws shapes better at 64×64 (the oracle's
reading of both: `python -m bench.t2v`, docs/BENCHMARKS.md); a clip's look is fixed by its first
frame, which the video model then moves. The image is drawn at the image model's own size and
area-resized to the clip's frames when the two differ (at the shipped sizes, 64×64 both, it is
not resized).
"""

from __future__ import annotations

from typing import Callable

import torch

from samplers import resize

from ..core.errors import UserError
from ..t2i.loading import load_t2i_pipeline


class FirstFrameModel:
    """Draws first frames for a video pipeline with a text-to-image pipeline.

    `caption(prompt)` turns a clip prompt into the first frame's image prompt (default: the prompt
    itself); for Shapes World it is `world.first_frame_caption`, which drops the motion and states
    where the motion starts.
    """

    def __init__(self, pipeline, caption: Callable[[str], str] | None = None):
        if not callable(pipeline):
            raise UserError(f"a first-frame model must be a text-to-image pipeline, got {type(pipeline).__name__}")
        self.pipeline = pipeline
        self.caption = caption or (lambda prompt: prompt)
        if hasattr(pipeline, "set_progress_bar_config"):
            pipeline.set_progress_bar_config(disable=True)  # the clip's own bar is the one to follow

    def image_prompts(self, prompts: list[str]) -> list[str]:
        return [self.caption(p) for p in prompts]

    @torch.no_grad()
    def draw(self, prompts: list[str], negatives: list[str] | None, height: int, width: int,
             num_inference_steps: int, guidance_scale: float, generator=None) -> torch.Tensor:
        """One first frame per prompt → (B, 3, height, width) float32 in [0, 1] on the CPU."""
        images = self.pipeline(self.image_prompts(prompts), negative_prompt=negatives or None,
                               num_inference_steps=num_inference_steps, guidance_scale=guidance_scale,
                               generator=generator, output_type="pt").images
        images = images.float().cpu()
        smaller = height * width < images.shape[-2] * images.shape[-1]
        return resize(images, (height, width), "area" if smaller else "bicubic").clamp(0, 1)  # area: as world renders


FIRST_FRAME_CHOICES = ("auto", "none")


def add_first_frame_arg(parser) -> None:
    """`--first-frame-model`, as the t2v CLI and the benches take it (see `configure_first_frame_model`)."""
    parser.add_argument("--first-frame-model", default="auto", metavar="auto|none|PATH",
                        help="a text-to-image model draws each clip's first frame and the video model continues it "
                             "(auto: the shipped image model with the shipped video model, none otherwise; none: "
                             "the video model draws every frame; PATH: that image pipeline folder). Not used with "
                             "--init-frames or --keyframes")


def configure_first_frame_model(pipe, choice: str | None, device=None, dtype=None) -> None:
    """A CLI's `--first-frame-model`: "auto" keeps what the loader set (the shipped image model
    for the shipped video model, nothing for other folders), "none" drops it, a path loads that
    text-to-image pipeline folder (its prompts are the clip prompts as they are)."""
    if choice in (None, "auto"):
        return
    if not hasattr(pipe, "set_first_frame_model"):
        raise UserError(f"--first-frame-model {choice!r}: only ditkit video pipelines take a first-frame model, "
                        f"not {type(pipe).__name__}")
    if choice == "none":
        pipe.set_first_frame_model(None)
        return
    kwargs = {k: v for k, v in (("device", device), ("dtype", dtype)) if v is not None}
    pipe.set_first_frame_model(FirstFrameModel(load_t2i_pipeline(choice, **kwargs)))
