"""Oracle evaluation of a model through the real sampling path.

Samples go through the pipeline a user would get (flow-matching Euler, classifier-free guidance)
on a fixed held-out prompt set — attribute combinations never drawn in training — and the world's
oracle reads each image (`world.score`) or clip (`world.score_video`) back into attributes.
"""

from __future__ import annotations

import numpy as np
import torch

import world

from .export import make_pipeline


@torch.no_grad()
def evaluate(transformer, text_encoder, tokenizer, cfg, batch_size: int = 16) -> dict:
    """→ the oracle score of `cfg.eval_prompts` held-out prompts sampled with `cfg.eval_steps`
    steps at guidance `cfg.eval_guidance`: {attribute: accuracy, "joint", "n"}.

    Images use `world.eval_prompts`, clips `world.video_eval_prompts` (all motions in turn). Each
    chunk of prompts has its own seeded generator, so a score is repeatable and does not depend
    on earlier chunks.
    """
    pipe = make_pipeline(transformer, cfg.text_max_length, text_encoder, tokenizer, cfg.sampling_shift)
    pipe.set_progress_bar_config(disable=True)
    was_training = transformer.training
    transformer.eval()
    video = cfg.task == "t2v"
    prompts = (world.video_eval_prompts if video else world.eval_prompts)(cfg.eval_prompts, "heldout", seed=0)
    size = {"height": cfg.resolution, "width": cfg.resolution}
    if video:
        size["num_frames"] = cfg.num_frames
        batch_size = max(1, batch_size // 4)
    samples = []
    for i, start in enumerate(range(0, len(prompts), batch_size)):
        chunk = prompts[start:start + batch_size]
        out = pipe(chunk, **size, num_inference_steps=cfg.eval_steps, guidance_scale=cfg.eval_guidance,
                   generator=torch.Generator().manual_seed(i), output_type="np")
        arrays = out.frames if video else out.images  # (H, W, 3) images or (F, H, W, 3) clips in [0, 1]
        samples.extend((np.asarray(arrays) * 255).round().astype(np.uint8))
    transformer.train(was_training)
    return (world.score_video if video else world.score)(prompts, samples)
