"""Choosing a cache for a quality target: the cheapest candidate whose output stays above `target`
dB PSNR against the uncached output of the same seed, measured on a short calibration run.

"Cheapest" is an estimate of the share of the uncached run's time a candidate needs, from what it
ran (`stats`: block and head evaluations) and what each costs, timed once on the uncached
reference run (`WorkCosts`). Not one timed run per candidate: on a shared CPU that mostly measures
the neighbours. Counting blocks alone misjudged the candidates that also forecast the head
(MultiResDiT's refine branches, a large share of the forward of the pixel MultiResDiT shipped
before issue 22). When no candidate reaches the target the choice is no cache.

    choice, trials = calibrate(lambda config: sample(config), pipe.transformer, target_psnr=35)
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from .attach import stats
from .blocks import find_blocks, find_head
from .bwcache import BWCacheConfig
from .cg_taylor import CGTaylorConfig
from .fbcache import FBCacheConfig
from .fidelity import psnr
from .methods import make_policy
from .taylorseer import TaylorSeerConfig

# gentle → aggressive within each method; 10 runs of the calibration prompt. The settings on
# bench/cache.py's Pareto front for the pixel MultiResDiT shipped before issue 22 (not rerun on
# the latent models; docs/BENCHMARKS.md), plus BWCache
# (the video model's studied cache); fixed-interval caching is dominated there and left out.
DEFAULT_CANDIDATES = (
    FBCacheConfig(threshold=0.05), FBCacheConfig(threshold=0.1), FBCacheConfig(threshold=0.15),
    FBCacheConfig(threshold=0.2), BWCacheConfig(threshold=0.2),
    TaylorSeerConfig(interval=3), TaylorSeerConfig(interval=4),
    CGTaylorConfig(threshold=0.1), CGTaylorConfig(threshold=0.2), CGTaylorConfig(threshold=0.3),
)


@dataclass(frozen=True)
class Trial:
    """One candidate on the calibration run: config (None: no cache), PSNR against the uncached
    output (dB) and its estimated share of the uncached run's time."""

    config: object
    psnr: float
    cost_fraction: float


@dataclass(frozen=True)
class WorkCosts:
    """Seconds per block evaluation, per head evaluation, and for everything else in the run, with
    the block, head and forward counts of the uncached reference run."""

    block: float
    head: float
    rest: float
    blocks: int
    heads: int
    forwards: int

    def fraction(self, blocks: int, heads: int) -> float:
        """Estimated share of the reference run's time for a run that evaluated `blocks` and `heads`."""
        full = self.rest + self.block * self.blocks + self.head * self.heads
        return (self.rest + self.block * blocks + self.head * heads) / full if full > 0 else 1.0


def timed_reference(sample: Callable[[object], torch.Tensor], transformer: torch.nn.Module):
    """Run sample(None) with every block and head module timed → (output, WorkCosts)."""
    spent = {"block": 0.0, "head": 0.0}
    counts = {"block": 0, "head": 0, "forward": 0}
    started: dict[int, float] = {}
    handles = [transformer.register_forward_pre_hook(lambda *_: counts.__setitem__("forward", counts["forward"] + 1))]
    for kind, modules in (("block", find_blocks(transformer)), ("head", find_head(transformer))):
        for _, module in modules:
            def before(module, _args):
                started[id(module)] = time.perf_counter()

            def after(module, _args, _out, kind=kind):
                spent[kind] += time.perf_counter() - started.pop(id(module))
                counts[kind] += 1

            handles += [module.register_forward_pre_hook(before), module.register_forward_hook(after)]
    try:
        began = time.perf_counter()
        out = sample(None)
        total = time.perf_counter() - began
    finally:
        for handle in handles:
            handle.remove()
    per = {kind: spent[kind] / counts[kind] if counts[kind] else 0.0 for kind in spent}
    return out, WorkCosts(per["block"], per["head"], max(0.0, total - spent["block"] - spent["head"]),
                          counts["block"], counts["head"], counts["forward"])


def fits(transformer: torch.nn.Module, config) -> bool:
    """Whether the policy can attach to this transformer (some need two blocks or more)."""
    return len(find_blocks(transformer)) >= make_policy(config).min_blocks


def pick(trials: Sequence[Trial], target_psnr: float) -> Trial:
    """The cheapest trial among those at or above the target (ties: the higher PSNR); no cache when none is."""
    good = [t for t in trials if t.config is not None and t.psnr >= target_psnr]
    if not good:
        return Trial(None, float("inf"), 1.0)
    return min(good, key=lambda t: (t.cost_fraction, -t.psnr))


def trial_cost(costs: WorkCosts, transformer: torch.nn.Module, config) -> float:
    """The estimated time share of the run just made with `config` (from the transformer's stats)."""
    st = stats(transformer)
    if st is None or not st.total:
        return 1.0
    heads = st.head_computed if make_policy(config).uses_head else costs.heads  # else the head ran on every forward
    return costs.fraction(st.total - st.skipped, heads)


def calibrate(sample: Callable[[object], torch.Tensor], transformer: torch.nn.Module, target_psnr: float,
              candidates: Sequence = DEFAULT_CANDIDATES) -> tuple[Trial, list[Trial]]:
    """sample(config) → the calibration output (N, …) in [0, 1] drawn with that cache (None: none),
    the same prompt and seed each time. → (the chosen trial, every trial)."""
    reference, costs = timed_reference(sample, transformer)
    reference = reference.float()
    trials = []
    for config in candidates:
        if not fits(transformer, config):
            continue
        out = sample(config).float()
        trials.append(Trial(config, psnr(out.flatten(1), reference.flatten(1)).mean().item(),
                            trial_cost(costs, transformer, config)))
    return pick(trials, target_psnr), trials
