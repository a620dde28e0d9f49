"""The training batch of one step: Shapes World images, clips or 3D point clouds, captions (with
CFG dropout), noise, sigmas.

A latent run (the config's `vae`) passes its frozen autoencoder's `encode`: the rendered pixels
are encoded before the noise is drawn, so x0 and the noise are latents of one shape.

Everything random in a step is drawn from a seed derived from (config seed, step, process
rank) — nothing from a stream that runs across steps. Why: a run resumed from a checkpoint at
step k then sees exactly the batches an uninterrupted run would, with no data-loader state to
save, and each process of a multi-process run sees different data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

import world
from dit.video_masks import sample_frame_masks
from samplers.resize import resize
from world.shapes3d import caption3d, sample_shape3d, sample_spec3d

from .config import TrainConfig
from .flow_matching import sample_sigmas, shift_sigmas

# the colour an uncoloured 3D caption's points carry: mid grey, 0 in the model's [-1, 1] (the mean of
# the noise), so "no colour word" is one fixed colour the model learns, unlike any of WORLD.md's six
NEUTRAL_RGB = (0.5, 0.5, 0.5)


@dataclass
class StepBatch:
    """x0: (B, 3, H, W) images or (B, 3, F, H, W) clips in [-1, 1] — or, in a latent run, their
    latents (B, C, h, w) / (B, C, F, h, w); 3D (t23d): (B, N, C) points, xyz in [-1, 1] then rgb
    mapped to [-1, 1] when C is 6; captions: B strings ("" where dropped for CFG); noise:
    like x0, standard normal; sigma: (B,) in (0, 1); given_mask: clips
    only, (B, F) bool, True = a frame given clean (VDT mask modelling); twins: items 2k, 2k+1 are
    contrast twins (same scene, noise and sigma; for clips the same given frames)."""

    x0: torch.Tensor
    captions: list[str]
    noise: torch.Tensor
    sigma: torch.Tensor
    given_mask: torch.Tensor | None = None
    twins: bool = False


def step_generators(seed: int, step: int, rank: int = 0) -> tuple[np.random.Generator, torch.Generator]:
    """Independent (numpy for the world, torch for noise) generators for one step of one process."""
    data_seq, noise_seq = np.random.SeedSequence([seed, step, rank]).spawn(2)
    noise_seed = int(noise_seq.generate_state(1, np.uint64)[0])
    return np.random.default_rng(data_seq), torch.Generator().manual_seed(noise_seed)


def shape3d_batch(batch_size: int, num_points: int, channels: int, rng: np.random.Generator,
                  split: str = "train") -> tuple[torch.Tensor, list[str]]:
    """World 3D samples of `split` → (points (B, N, channels) float32, canonical captions).

    channels 3: xyz in [-1, 1]; 6: xyz and rgb mapped from [0, 1] to [-1, 1], with `NEUTRAL_RGB`
    for an uncoloured caption (the world has no 3D paraphrases; every word of a 3D caption changes
    the shape, so none is dropped either)."""
    clouds, captions = [], []
    for _ in range(batch_size):
        sample = sample_shape3d(sample_spec3d(rng, split), rng, num_points=num_points)
        features = sample.features(NEUTRAL_RGB)[:, :channels]  # (N, channels)
        clouds.append(np.concatenate([features[:, :3], features[:, 3:] * 2 - 1], axis=1))
        captions.append(caption3d(sample.spec))
    return torch.from_numpy(np.stack(clouds)).float(), captions


def batch_for_step(cfg: TrainConfig, step: int, rank: int = 0,
                   encode: Callable[[torch.Tensor], torch.Tensor] | None = None) -> StepBatch:
    """The batch a process trains on at `step` (1-based), a pure function of (cfg, step, rank).

    encode: pixels → latents (a latent run's `LatentCodec.encode`, deterministic), applied to the
    rendered images / clips before the noise is drawn in their shape.
    """
    cfg = cfg.at_step(step)
    rng, gen = step_generators(cfg.seed, step, rank)
    given_mask = None
    contrast = cfg.contrast_attribute is not None and step >= cfg.contrast_from_step
    if cfg.task == "t23d":
        x0, captions = shape3d_batch(cfg.batch_size, cfg.num_points, cfg.point_channels, rng)  # (B, N, C)
    elif cfg.task == "t2v":
        if contrast:
            clips, captions, _ = world.make_video_contrast_batch(
                cfg.batch_size, cfg.resolution, cfg.num_frames, rng, split="train", drop_prob=cfg.caption_drop_prob,
                attribute=cfg.contrast_attribute)
        else:
            clips, captions, _ = world.make_video_batch(cfg.batch_size, cfg.resolution, cfg.num_frames, rng,
                                                        split="train", drop_prob=cfg.caption_drop_prob)
        x0 = clips.transpose(1, 2).contiguous()  # (B, F, 3, H, W) → (B, 3, F, H, W), the model's layout
    elif contrast:
        x0, captions, _ = world.make_contrast_batch(cfg.batch_size, cfg.resolution, rng, split="train",
                                                    drop_prob=cfg.caption_drop_prob, paraphrase=cfg.paraphrase,
                                                    attribute=cfg.contrast_attribute)
    else:
        x0, captions, _ = world.make_batch(cfg.batch_size, cfg.resolution, rng, split="train",
                                           drop_prob=cfg.caption_drop_prob, paraphrase=cfg.paraphrase)
    if cfg.low_res_frac and torch.rand(1, generator=gen).item() < cfg.low_res_frac:  # drawn only when asked
        x0 = resize(x0, (cfg.low_res, cfg.low_res), "area")  # as bottleneck sampling's middle stage sees a scene
    if encode is not None:
        x0 = encode(x0)  # (B, C, h, w) or (B, C, F, h, w) latents
    # twins (contrast batches) share their caption dropout, noise and sigma: draw per pair, repeat
    group = 2 if contrast else 1
    draws = cfg.batch_size // group
    dropped = (torch.rand(draws, generator=gen) < cfg.cfg_dropout).repeat_interleave(group).tolist()
    captions = ["" if drop else c for c, drop in zip(captions, dropped)]
    noise = torch.randn((draws, *x0.shape[1:]), generator=gen).repeat_interleave(group, dim=0)
    sigma = shift_sigmas(sample_sigmas(draws, cfg.sigma_logit_mean, cfg.sigma_logit_std, gen), cfg.sigma_shift)
    if cfg.sigma_uniform_frac:  # drawn only when asked, so recipes without it keep their batches
        uniform = torch.rand(draws, generator=gen).clamp(1e-5, 1 - 1e-5)
        sigma = torch.where(torch.rand(draws, generator=gen) < cfg.sigma_uniform_frac, uniform, sigma)
    sigma = sigma.repeat_interleave(group)
    if cfg.task == "t2v":
        given_mask = sample_frame_masks(draws, cfg.num_frames, gen, weights=cfg.mask_mode_weights)
        given_mask = given_mask.repeat_interleave(group, dim=0)  # twins share their task too
    return StepBatch(x0=x0, captions=captions, noise=noise, sigma=sigma, given_mask=given_mask, twins=contrast)
