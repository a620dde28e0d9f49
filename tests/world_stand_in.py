"""A test-only text-to-image "pipeline" that renders the Shapes World scene its prompt describes
(and a text-to-3D one that draws the world's sample of its caption: `WorldShapePipeline`).

Its output is exactly what the oracle reads back, so a load test can tell whether every response
belongs to its own request — which an untrained model's noise cannot show. It speaks the part of
`TextToImagePipeline.__call__` the app uses, spends `step_seconds` per step (calling the step
callback, like a real denoising loop), and counts how many calls ever overlapped: the app
promises one call at a time per model.
"""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import numpy as np
import torch
from PIL import Image

import world
from pipelines.core.errors import UserError
from world.shapes3d import parse_caption3d, sample_shape3d

UNSTATED = {"size": "large", "position": "center", "background": "black"}  # what a prompt may leave out


class WorldRenderPipeline:
    """prompt (a canonical Shapes World caption) → its rendered scene, at `native_size` unless asked."""

    native_size = 64

    def __init__(self, step_seconds: float = 0.01):
        self.step_seconds = step_seconds
        self.calls = 0
        self.inside = 0
        self.max_inside = 0  # the most calls ever running at once
        self._count = threading.Lock()

    def set_progress_bar_config(self, **kwargs) -> None:
        pass

    def __call__(self, prompt, negative_prompt=None, height=None, width=None, num_inference_steps=25,
                 guidance_scale=4.0, generator=None, output_type="pil", callback_on_step_end=None, acceleration=None):
        try:
            spec = world.ImageSpec(**{**UNSTATED, **world.parse_caption(prompt)})
        except ValueError as err:
            raise UserError(str(err)) from None
        side = height or self.native_size
        if (width or side) != side:
            raise UserError("the world renderer draws square images only")
        with self._count:
            self.calls += 1
            self.inside += 1
            self.max_inside = max(self.max_inside, self.inside)
        try:
            for i in range(num_inference_steps):
                time.sleep(self.step_seconds)
                if callback_on_step_end is not None:
                    callback_on_step_end(self, i, None, {})
            image = world.render_image(spec, resolution=side)
        finally:
            with self._count:
                self.inside -= 1
        return SimpleNamespace(images=[Image.fromarray(image)])


class WorldShapePipeline:
    """prompt(s) (3D Shapes World captions) → world samples of their specs, as `T23DPipeline` returns
    clouds: each cloud drawn with its generator's seed, so a seed gives the same cloud. Coloured
    when the caption names a colour, else grey (a coloured model always colours its points)."""

    is_coloured = True
    transformer = torch.nn.Linear(1, 1)  # what a benchmark counts the parameters of

    def set_progress_bar_config(self, **kwargs) -> None:
        pass

    def __call__(self, prompt, negative_prompt=None, num_inference_steps=25, guidance_scale=4.0, generator=None,
                 num_points=2048, output_type="np", callback_on_step_end=None, acceleration=None):
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        generators = generator if isinstance(generator, list) else [generator] * len(prompts)
        points, colours = [], []
        for text, gen in zip(prompts, generators):
            try:
                spec = parse_caption3d(text)
            except ValueError as err:
                raise UserError(str(err)) from None
            for i in range(num_inference_steps):
                if callback_on_step_end is not None:
                    callback_on_step_end(self, i, None, {})
            sample = sample_shape3d(spec, None if gen is None else gen.initial_seed(), num_points=num_points)
            points.append(sample.points)
            colours.append(sample.colours if sample.colours is not None
                           else np.full((num_points, 3), 0.5, dtype=np.float32))
        return SimpleNamespace(points=points, colours=colours)
