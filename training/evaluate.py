"""Oracle evaluation of a model through the real sampling path.

Samples go through the pipeline a user would get (flow-matching Euler, classifier-free guidance)
on a fixed held-out prompt set — attribute combinations never drawn in training — and the world's
strict reader (what a person sees; issue 21) reads each image (`world.score`) or clip
(`world.score_video`) back into attributes and fidelity figures. 3D point clouds (task "t23d") are
read by the nearest-template Chamfer reader (`world.reader3d`) into shape, proportion and colour.
"""

from __future__ import annotations

import numpy as np
import torch

import world
from world.reader3d import read_shape3d
from world.shapes3d import caption3d, split_specs3d

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

    Images use `world.eval_prompts`, clips `world.video_eval_prompts` (all motions in turn), 3D
    clouds `eval_specs3d` (see `evaluate_t23d`). Each chunk of prompts has its own seeded
    generator, so a score is repeatable and does not depend on earlier chunks.
    """
    if cfg.task == "t23d":
        return evaluate_t23d(transformer, text_encoder, tokenizer, cfg, batch_size)
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


def eval_specs3d(n: int) -> list:
    """n held-out 3D specs (combinations training never shows), the held-out split in turn."""
    heldout = split_specs3d("heldout")
    return [heldout[i % len(heldout)] for i in range(n)]


@torch.no_grad()
def evaluate_t23d(transformer, text_encoder, tokenizer, cfg, batch_size: int = 16) -> dict:
    """→ the 3D reader's score of `cfg.eval_prompts` held-out prompts (`eval_specs3d`), each a
    cloud of `cfg.num_points` points sampled with `cfg.eval_steps` steps at guidance
    `cfg.eval_guidance`: {"shape", "proportion", "colour" (over prompts naming a colour, None
    when none does or the model is xyz-only), "joint" (`Shape3DReading.matches`), "chamfer" (mean
    Chamfer distance to the nearest template: how surface-like the clouds are), "n"}. A cloud
    with non-finite points (a diverged model) counts as read wrong on every attribute."""
    pipe = make_pipeline(transformer, cfg.text_max_length, text_encoder, tokenizer, cfg.sampling_shift)
    pipe.set_progress_bar_config(disable=True)
    was_training = transformer.training
    transformer.eval()
    specs = eval_specs3d(cfg.eval_prompts)
    readings = []
    for i, start in enumerate(range(0, len(specs), batch_size)):
        chunk = specs[start:start + batch_size]
        out = pipe([caption3d(s) for s in chunk], num_inference_steps=cfg.eval_steps,
                   guidance_scale=cfg.eval_guidance, num_points=cfg.num_points,
                   generator=torch.Generator().manual_seed(i), output_type="np")
        colours = out.colours or [None] * len(chunk)
        readings.extend(read_shape3d(p, c) if np.isfinite(p).all() else None for p, c in zip(out.points, colours))
    transformer.train(was_training)

    def share(hits: list[bool]) -> float | None:
        return float(np.mean(hits)) if hits else None

    pairs = list(zip(readings, specs))
    coloured = [(r, s) for r, s in pairs if s.colour is not None and transformer.config.in_channels >= 6]
    finite = [r.chamfer for r in readings if r is not None]
    return {"shape": share([r is not None and r.shape == s.shape for r, s in pairs]),
            "proportion": share([r is not None and r.proportion == s.proportion for r, s in pairs]),
            "colour": share([r is not None and r.colour == s.colour for r, s in coloured]),
            "joint": share([r is not None and r.matches(s) for r, s in pairs]),
            "chamfer": float(np.mean(finite)) if finite else None, "n": len(specs)}
