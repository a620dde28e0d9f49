"""Oracle evaluation of a model through the real sampling path.

Samples go through `TextToImagePipeline` (flow-matching Euler, classifier-free guidance) exactly
as a user would get them, on a fixed held-out prompt set — combinations never drawn in training
— and `world.score` reads each image back into attributes.
"""

from __future__ import annotations

import numpy as np
import torch

import world

from .export import make_pipeline


@torch.no_grad()
def evaluate(transformer, text_encoder, tokenizer, text_max_length: int, resolution: int,
             num_prompts: int, num_steps: int, guidance: float, batch_size: int = 16) -> dict:
    """→ world.score of samples for `world.eval_prompts(num_prompts, "heldout", seed=0)`:
    {attribute: accuracy, "joint": all stated attributes right, "n": num_prompts}.

    Each chunk of prompts has its own seeded generator, so a score is repeatable and does not
    depend on earlier chunks.
    """
    pipe = make_pipeline(transformer, text_max_length, text_encoder, tokenizer)
    pipe.set_progress_bar_config(disable=True)
    was_training = transformer.training
    transformer.eval()
    prompts = world.eval_prompts(num_prompts, "heldout", seed=0)
    images = []
    for i, start in enumerate(range(0, len(prompts), batch_size)):
        chunk = prompts[start:start + batch_size]
        out = pipe(chunk, height=resolution, width=resolution, num_inference_steps=num_steps,
                   guidance_scale=guidance, generator=torch.Generator().manual_seed(i), output_type="np")
        images.extend((np.asarray(out.images) * 255).round().astype(np.uint8))  # (H, W, 3) each
    transformer.train(was_training)
    return world.score(prompts, images)
