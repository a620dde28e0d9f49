"""Oracle evaluation of a model through the real sampling path.

Samples go through the pipeline a user would get (flow-matching Euler, classifier-free guidance)
on a fixed held-out prompt set — attribute combinations never drawn in training — and the world's
strict reader (what a person sees; issue 21) reads each image (`world.score`) or clip
(`world.score_video`) back into attributes and fidelity figures.
"""

from __future__ import annotations

import numpy as np
import torch

import world

from .export import make_pipeline


@torch.no_grad()
def evaluate(transformer, text_encoder, tokenizer, cfg, batch_size: int = 16, vae=None) -> dict:
    """→ the strict oracle score of `cfg.eval_prompts` held-out prompts sampled with `cfg.eval_steps`
    steps at guidance `cfg.eval_guidance`: {attribute: accuracy, "joint", "n"} and the fidelity keys.

    Images (`world.score`): "template_iou" (mean best IoU of a WORLD.md template stretched to the
    object's box), "noise" (mean background noise, RMS RGB distance 0-255), "clean" (share with
    IoU >= 0.85 and noise <= 6), "strays" (mean stray components). Clips (`world.score_video`):
    "shape_frames" (mean share of frames showing the prompt's shape), and over every frame
    "template_iou", "noise", "clean_frames" (share of clean frames) and "strays".

    A latent run passes its autoencoder as `vae`: samples are decoded through it, as the exported
    pipeline decodes them, and the reader sees the decoded pixels.

    Images use `world.eval_prompts`, clips `world.video_eval_prompts` (all motions in turn). Each
    chunk of prompts has its own seeded generator, so a score is repeatable and does not depend
    on earlier chunks.
    """
    pipe = make_pipeline(transformer, cfg.text_max_length, text_encoder, tokenizer, cfg.sampling_shift, vae)
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
