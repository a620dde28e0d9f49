"""Choosing a cache for a quality target: the cheapest candidate whose output stays above `target`
dB PSNR against the uncached output of the same seed, measured on a short calibration run.

"Cheapest" is the share of block evaluations that still run (`stats`), not wall time: it is what
a cache saves, it is exact, and on a shared CPU one timed run per candidate would mostly measure
the neighbours. When no candidate reaches the target the choice is no cache.

    choice, trials = calibrate(lambda config: sample(config), pipe.transformer, target_psnr=35)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from .attach import stats
from .bwcache import BWCacheConfig
from .blocks import find_blocks
from .cg_taylor import CGTaylorConfig
from .fbcache import FBCacheConfig
from .fidelity import psnr
from .interval import IntervalCacheConfig
from .methods import make_policy
from .taylorseer import TaylorSeerConfig

# gentle → aggressive within each method; 10 runs of the calibration prompt
DEFAULT_CANDIDATES = (
    FBCacheConfig(threshold=0.05), FBCacheConfig(threshold=0.1), FBCacheConfig(threshold=0.2),
    BWCacheConfig(threshold=0.1), BWCacheConfig(threshold=0.2),
    TaylorSeerConfig(interval=3), TaylorSeerConfig(interval=5),
    CGTaylorConfig(threshold=0.1), CGTaylorConfig(threshold=0.2),
    IntervalCacheConfig(interval=2),
)


@dataclass(frozen=True)
class Trial:
    """One candidate on the calibration run: config (None: no cache), PSNR against the uncached
    output (dB) and the share of block evaluations that ran."""

    config: object
    psnr: float
    computed_fraction: float


def fits(transformer: torch.nn.Module, config) -> bool:
    """Whether the policy can attach to this transformer (some need two blocks or more)."""
    return len(find_blocks(transformer)) >= make_policy(config).min_blocks


def pick(trials: Sequence[Trial], target_psnr: float) -> Trial:
    """The trial with the fewest block evaluations among those at or above the target (ties: the
    higher PSNR); no cache when none is."""
    good = [t for t in trials if t.config is not None and t.psnr >= target_psnr]
    if not good:
        return Trial(None, float("inf"), 1.0)
    return min(good, key=lambda t: (t.computed_fraction, -t.psnr))


def calibrate(sample: Callable[[object], torch.Tensor], transformer: torch.nn.Module, target_psnr: float,
              candidates: Sequence = DEFAULT_CANDIDATES) -> tuple[Trial, list[Trial]]:
    """sample(config) → the calibration output (N, …) in [0, 1] drawn with that cache (None: none),
    the same prompt and seed each time. → (the chosen trial, every trial)."""
    reference = sample(None).float()
    trials = []
    for config in candidates:
        if not fits(transformer, config):
            continue
        out = sample(config).float()
        st = stats(transformer)
        computed = 1 - st.skipped_fraction if st is not None else 1.0
        trials.append(Trial(config, psnr(out.flatten(1), reference.flatten(1)).mean().item(), computed))
    return pick(trials, target_psnr), trials
