"""Bottleneck sampling (Tian et al. 2025): denoise at full resolution first and last, at a lower
resolution in between, for flow-matching models.

A plan is a list of stages; stage k runs at `scale` × the output size, spends a `steps`
fraction of the step budget, and integrates σ from `start_sigma` down to `end_sigma` with Euler
steps whose spacing is warped by the stage's timestep `shift` (σ-grid s·u / (1 + (s−1)·u) on
u ∈ [1, 0], as SD3's shift; 1 = even). At each transition the current clean estimate
x̂0 = x − σ·v is resized (F.interpolate on the last two dims, so a (B, C, F, H, W) video is resized
frame by frame) and re-noised with fresh noise to the next stage's `start_sigma`:
x = (1 − σ)·x̂0 + σ·ε. Re-noising above where the last stage stopped lets the model repair
resizing artefacts.

Default stages (1.0×, 10 %, σ 1→0.9), (0.625×, 60 %, σ 0.92→0.35), (1.0×, 30 %, σ 0.7→0): the
middle stage draws 64×64 images at 40×40 (the 32×32 frames of the pixel video model shipped
before issue 22 at 20×20). Half size was the first default and fell short: the pixel MultiResDiT
shipped before issue 22 was trained at 64×64 only, and a thin cross drawn
at 32×32 is lost (no plan split, σ levels, per-stage shift or up-sampling mode brought it back,
nor did a fine-tune that also trains at 32×32, `configs/t2i_shapes_multires.json`). At 5/8 size
the same model keeps its shapes, and of the splits that read as uncached the 10/60/30 one is the
fastest. The last stage still re-noises to 0.7 so that the full-size stage can redraw outlines.
Measured speed-up and oracle, and the plans tried: docs/BENCHMARKS.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from diffusers.utils.torch_utils import randn_tensor

from .checks import one_of
from .resize import resize

RESIZE_MODES = ("area", "bilinear", "bicubic", "nearest", "nearest-exact")


@dataclass(frozen=True)
class BottleneckStage:
    """One stage: resolution `scale`, fraction `steps` of the budget, σ from start to end, shift."""

    scale: float
    steps: float
    start_sigma: float
    end_sigma: float
    shift: float = 1.0

    def __post_init__(self):
        if not 0 < self.scale <= 4:
            raise ValueError(f"stage scale must be in (0, 4], got {self.scale!r}")
        if not self.steps > 0:
            raise ValueError(f"stage steps fraction must be > 0, got {self.steps!r}")
        if not 0 <= self.end_sigma < self.start_sigma <= 1:
            raise ValueError(f"stage sigmas must satisfy 0 <= end < start <= 1, got start {self.start_sigma!r} "
                             f"end {self.end_sigma!r}")
        if not self.shift > 0:
            raise ValueError(f"stage shift must be > 0, got {self.shift!r}")


DEFAULT_STAGES = (
    BottleneckStage(scale=1.0, steps=0.1, start_sigma=1.0, end_sigma=0.9),
    BottleneckStage(scale=0.625, steps=0.6, start_sigma=0.92, end_sigma=0.35),
    BottleneckStage(scale=1.0, steps=0.3, start_sigma=0.7, end_sigma=0.0),
)


@dataclass(frozen=True)
class BottleneckConfig:
    """A high → low → high plan. The first stage starts from pure noise (σ = 1); the last runs at
    full size down to σ = 0; re-noising may only add noise (start_k ≥ end_(k−1))."""

    stages: tuple[BottleneckStage, ...] = DEFAULT_STAGES
    down_mode: str = "area"
    up_mode: str = "bicubic"

    def __post_init__(self):
        stages = tuple(self.stages)
        object.__setattr__(self, "stages", stages)
        if not stages:
            raise ValueError("a bottleneck plan needs at least one stage")
        if stages[0].start_sigma != 1.0:
            raise ValueError(f"the first stage must start from pure noise (start_sigma 1.0), got "
                             f"{stages[0].start_sigma}")
        if stages[-1].scale != 1.0 or stages[-1].end_sigma != 0.0:
            raise ValueError(f"the last stage must run at scale 1.0 down to sigma 0, got scale {stages[-1].scale} "
                             f"end_sigma {stages[-1].end_sigma}")
        for before, after in zip(stages, stages[1:]):
            if after.start_sigma < before.end_sigma:
                raise ValueError(f"a stage starts at sigma {after.start_sigma} below where the stage before ended "
                                 f"({before.end_sigma}); re-noising can only add noise")
        total = sum(s.steps for s in stages)
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"stage step fractions must sum to 1, got {total:g}")
        one_of("down_mode", self.down_mode, RESIZE_MODES)
        one_of("up_mode", self.up_mode, RESIZE_MODES)


@dataclass(frozen=True)
class StagePlan:
    """A stage made concrete: latent size (h, w) and its σ grid, start … end (steps + 1 values)."""

    size: tuple[int, int]
    sigmas: tuple[float, ...]

    @property
    def num_steps(self) -> int:
        return len(self.sigmas) - 1


def split_steps(fractions: list[float], total: int) -> list[int]:
    """Integer step counts ≥ 1 summing to `total`, by largest remainder."""
    if total < len(fractions):
        raise ValueError(f"bottleneck sampling with {len(fractions)} stages needs at least {len(fractions)} "
                         f"steps, got {total}")
    exact = [f * total for f in fractions]
    counts = [max(1, math.floor(e)) for e in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: exact[i] - math.floor(exact[i]), reverse=True)
    i = 0
    while sum(counts) < total:
        counts[by_remainder[i % len(counts)]] += 1
        i += 1
    while sum(counts) > total:  # the ≥ 1 floor overshot: take from the biggest stage
        counts[counts.index(max(counts))] -= 1
    return counts


def stage_sigmas(stage: BottleneckStage, num_steps: int) -> tuple[float, ...]:
    """The stage's σ grid: u evenly from 1 to 0, warped by the shift, mapped onto [end, start]."""
    s = stage.shift
    grid = []
    for j in range(num_steps + 1):
        u = 1 - j / num_steps
        warped = s * u / (1 + (s - 1) * u)
        grid.append(stage.end_sigma + (stage.start_sigma - stage.end_sigma) * warped)
    return tuple(grid)


def plan_stages(config: BottleneckConfig, num_steps: int, size: tuple[int, int], multiple: int = 1) -> list[StagePlan]:
    """Each stage's latent size (a multiple of `multiple`, e.g. the patch size) and σ grid."""
    counts = split_steps([s.steps for s in config.stages], num_steps)
    plans = []
    for stage, n in zip(config.stages, counts):
        scaled = tuple(max(multiple, round(d * stage.scale / multiple) * multiple) for d in size)
        plans.append(StagePlan(scaled, stage_sigmas(stage, n)))
    return plans


Denoiser = Callable[[torch.Tensor, float], torch.Tensor]


def sample_bottleneck(
    denoise: Denoiser,
    latents: torch.Tensor,
    config: BottleneckConfig,
    num_steps: int,
    multiple: int = 1,
    generator: torch.Generator | list[torch.Generator] | None = None,
    callback: Callable[[int, float, torch.Tensor], torch.Tensor | None] | None = None,
    on_stage_start: Callable[[int, StagePlan], None] | None = None,
) -> torch.Tensor:
    """Runs the plan with Euler steps; returns the clean sample at the size of `latents`.

    denoise(x, sigma) → flow-matching velocity v = ε − x0 for x = (1 − σ)·x0 + σ·ε.
    latents: (B, C, H, W) or (B, C, F, H, W) standard-normal noise at the output size.
    callback(i, sigma, x) after each step (i counts over all stages) may return replacement x.
    on_stage_start(k, plan) before stage k (e.g. to restart caches: sizes change between stages).
    """
    plans = plan_stages(config, num_steps, tuple(latents.shape[-2:]), multiple)
    x, x0, i = latents, None, 0
    for k, plan in enumerate(plans):
        if on_stage_start is not None:
            on_stage_start(k, plan)
        sigma0 = plan.sigmas[0]
        if k == 0:
            if tuple(x.shape[-2:]) != plan.size:
                shape = (*latents.shape[:-2], *plan.size)
                x = randn_tensor(shape, generator=generator, device=latents.device, dtype=latents.dtype)
        else:
            growing = plan.size[0] * plan.size[1] > x0.shape[-2] * x0.shape[-1]
            x0 = resize(x0, plan.size, config.up_mode if growing else config.down_mode)
            noise = randn_tensor(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
            x = (1 - sigma0) * x0 + sigma0 * noise
        for sigma, sigma_next in zip(plan.sigmas, plan.sigmas[1:]):
            v = denoise(x, sigma)
            x = x + (sigma_next - sigma) * v
            if callback is not None:
                replaced = callback(i, sigma, x)
                x = x if replaced is None else replaced
            x0 = x - sigma_next * v  # the clean estimate of this step (Euler keeps it on the line)
            i += 1
    return x
