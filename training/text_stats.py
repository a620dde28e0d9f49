"""The text statistics a backbone's `TextStandardizer`s are fitted to, measured once at the start
of a fresh run on captions drawn like the training captions (see `dit.embeddings.TextStandardizer`
for why)."""

from __future__ import annotations

import numpy as np
import torch

import world
from world.shapes3d import caption3d, sample_spec3d

from .config import TrainConfig
from .text_cache import TextEmbeddingCache

NUM_CAPTIONS = 2048


def training_captions(cfg: TrainConfig, n: int = NUM_CAPTIONS) -> list[str]:
    """n captions of the training split, worded as the run's batches are (paraphrases, dropped
    attributes); seeded by the config alone, so every process and every re-run draws the same."""
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 0]))  # batches use [seed, step >= 1, rank]
    if cfg.task == "t23d":
        return [caption3d(sample_spec3d(rng, "train")) for _ in range(n)]
    if cfg.task == "t2v":
        return [world.video_caption(world.sample_video_spec(rng, "train"), rng, drop_prob=cfg.caption_drop_prob)
                for _ in range(n)]
    return [world.caption(world.sample_spec(rng, "train"), rng, paraphrase=cfg.paraphrase,
                          drop_prob=cfg.caption_drop_prob) for _ in range(n)]


@torch.no_grad()
def fit_text_standardization(model: torch.nn.Module, captions: list[str], text_cache: TextEmbeddingCache) -> bool:
    """Fit the model's token and pooled standardizers (if it has them) to the captions' MiniLM
    features — every real (unpadded) token, and every pooled vector. Returns whether it had any."""
    tokens = getattr(model, "text_standardizer", None)
    pooled = getattr(model, "pooled_standardizer", None)
    if tokens is None and pooled is None:
        return False
    cond = text_cache.lookup(captions)
    if tokens is not None:
        real = cond["encoder_attention_mask"].bool()
        tokens.fit(cond["encoder_hidden_states"].float()[real])
    if pooled is not None:
        pooled.fit(cond["pooled_text"])
    return True
