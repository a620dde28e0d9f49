"""The settings `bench/cache.py` compares: ours (passed as the pipeline's `acceleration=`) and peers
attached to the same transformer — diffusers' cache hooks (`transformer.enable_cache`) and
cache-dit's DBCache (`cache_dit.enable_cache` with a `BlockAdapter`) — plus a counter of the block
evaluations that really ran, for peers that keep no statistics of their own.
"""

from __future__ import annotations

import ast
import contextlib
import io
import os
import re
from dataclasses import dataclass, field
from typing import Callable

import torch
from diffusers import FirstBlockCacheConfig, MagCacheConfig, TaylorSeerCacheConfig

import samplers
from bench.common import acceleration_name
from samplers import (BottleneckConfig, BWCacheConfig, CGTaylorConfig, FBCacheConfig, IntervalCacheConfig,
                      TaylorSeerConfig)
from samplers.blocks import find_blocks


@dataclass
class Setting:
    """One row of the benchmark: a name, who made the method, and how it goes on the pipeline.

    ours: `acceleration` is passed to every call. Peers: `attach(pipe)` before the calls,
    `detach(pipe)` after; `prepare(pipe, calibrate)` first, when the method needs a calibration run
    (`calibrate(pipe)` runs the calibration prompt once).
    """

    name: str
    family: str  # "ours" | "diffusers" | "cache-dit" | "baseline"
    acceleration: object = None
    attach: Callable | None = None
    detach: Callable | None = None
    prepare: Callable | None = None
    knobs: dict = field(default_factory=dict)


# ---------------------------------------------------------------- ours


def our_cache_settings(quick: bool) -> list[Setting]:
    """Every method at a few strengths, gentle to aggressive."""
    grid = {
        "interval": [IntervalCacheConfig(2), IntervalCacheConfig(3)],
        "bwcache": [BWCacheConfig(threshold=x) for x in (0.05, 0.1, 0.2, 0.3)]
        + [BWCacheConfig(threshold=0.2, per_block=True, forecast_head=False)],  # the form before 2026-11-30
        "fbcache": [FBCacheConfig(threshold=x) for x in (0.05, 0.07, 0.1, 0.15, 0.2)]
        + [FBCacheConfig(threshold=x, forecast_head=False, residual_order=1) for x in (0.07, 0.1)],
        "taylorseer": [TaylorSeerConfig(interval=n) for n in (2, 3, 4, 6)],
        "cg-taylor": [CGTaylorConfig(threshold=x) for x in (0.05, 0.1, 0.2, 0.3)],
    }
    if quick:
        grid = {method: configs[:1] for method, configs in grid.items()}
    settings = []
    for method, configs in grid.items():
        for config in configs:
            knobs = {k: getattr(config, k) for k in samplers.method_knobs(method) if hasattr(config, k)}
            settings.append(Setting(acceleration_name(config), "ours", acceleration=config, knobs=knobs))
    return settings


def bottleneck_settings(best_cache: Setting | None) -> list[Setting]:
    """Bottleneck sampling alone, and with the best cache found (if any)."""
    rows = [Setting("bottleneck", "ours", acceleration=BottleneckConfig())]
    if best_cache is not None:
        rows.append(Setting(f"bottleneck + {best_cache.name}", "ours",
                            acceleration=[best_cache.acceleration, BottleneckConfig()], knobs=best_cache.knobs))
    return rows


# ---------------------------------------------------------------- diffusers' hooks


def _enable(config):
    def attach(pipe):
        if not hasattr(pipe.transformer, "enable_cache"):
            raise TypeError(f"{type(pipe.transformer).__name__} has no enable_cache (not a diffusers CacheMixin)")
        pipe.transformer.enable_cache(config)
    return attach


def _disable(pipe):
    if getattr(pipe.transformer, "is_cache_enabled", False):
        pipe.transformer.disable_cache()


def feature_patterns(transformer) -> list[str]:
    """Regexes for the attention and MLP modules of every block, for diffusers' TaylorSeer (its own
    defaults match modules named exactly `attn`, which ditkit's blocks do not have)."""
    names = {key.split(".")[0] for key, _ in find_blocks(transformer)}
    return [rf"{re.escape(name)}\.\d+\.(attn\w*|mlp|ff)" for name in sorted(names)]


def diffusers_settings(num_steps: int, quick: bool) -> list[Setting]:
    rows = []
    for x in ((0.1,) if quick else (0.05, 0.1, 0.2)):
        rows.append(Setting(f"diffusers FirstBlockCache threshold={x:g}", "diffusers",
                            attach=_enable(FirstBlockCacheConfig(threshold=x)), detach=_disable,
                            knobs={"threshold": x}))
    for n in ((3,) if quick else (3, 5)):
        def attach(pipe, n=n):
            config = TaylorSeerCacheConfig(cache_interval=n, max_order=1, taylor_factors_dtype=torch.float32,
                                           cache_identifiers=feature_patterns(pipe.transformer))
            _enable(config)(pipe)

        rows.append(Setting(f"diffusers TaylorSeerCache interval={n}", "diffusers", attach=attach, detach=_disable,
                            knobs={"interval": n}))
    calibration = {}

    def prepare(pipe, calibrate):
        calibration["ratios"] = mag_ratios(pipe, num_steps, calibrate)

    for i, x in enumerate((0.06,) if quick else (0.06, 0.12, 0.24)):
        def attach(pipe, x=x):
            if "ratios" not in calibration:
                raise RuntimeError("MagCache was not calibrated (its calibration run failed)")
            config = MagCacheConfig(threshold=x, num_inference_steps=num_steps, mag_ratios=calibration["ratios"])
            _enable(config)(pipe)

        rows.append(Setting(f"diffusers MagCache threshold={x:g} (calibrated)", "diffusers", attach=attach,
                            detach=_disable, prepare=prepare if i == 0 else None, knobs={"threshold": x}))
    return rows


def mag_ratios(pipe, num_steps: int, calibrate: Callable) -> list[float]:
    """MagCache's calibration as its docs prescribe: one run with `calibrate=True`, which prints
    each cache context's per-step magnitude ratios; cond and uncond are averaged step by step."""
    _enable(MagCacheConfig(calibrate=True, num_inference_steps=num_steps))(pipe)
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            calibrate(pipe)
    finally:
        _disable(pipe)
    lists = [ast.literal_eval(line.strip()) for line in printed.getvalue().splitlines()
             if re.fullmatch(r"\[[-+\d.eE, ]+\]", line.strip())]
    if not lists:
        raise RuntimeError("MagCache calibration printed no ratios")
    return [sum(values) / len(values) for values in zip(*lists)]


# ---------------------------------------------------------------- cache-dit


def cache_dit_settings(num_steps: int, guided: bool, quick: bool) -> list[Setting]:
    """DBCache F1B0 (decide on the first block's residual, like FBCache) with its TaylorSeer
    calibrator; with guidance, cond and uncond are cached separately (our pipelines call the
    transformer for each, one after the other)."""
    rows = []
    for x in ((0.12,) if quick else (0.08, 0.12, 0.24)):
        def attach(pipe, x=x):
            os.environ.setdefault("CACHE_DIT_LOG_LEVEL", "error")
            import cache_dit  # optional dependency
            from cache_dit import (BlockAdapter, DBCacheConfig, ForwardPattern,  # optional dependency
                                   TaylorSeerCalibratorConfig)

            blocks = find_blocks(pipe.transformer)
            owner = blocks[0][0].split(".")[0] if blocks else None
            if owner is None or any(not key.startswith(owner + ".") for key, _ in blocks):
                raise TypeError("cache-dit needs one list of blocks; found "
                                f"{sorted({k.split('.')[0] for k, _ in blocks}) or 'none'}")
            # ditkit's blocks take hidden_states (+ conditioning as arguments) and return hidden_states only
            adapter = BlockAdapter(pipe=pipe, transformer=pipe.transformer,
                                   blocks=getattr(pipe.transformer, owner), forward_pattern=ForwardPattern.Pattern_3)
            cache_dit.enable_cache(adapter, cache_config=DBCacheConfig(
                Fn_compute_blocks=1, Bn_compute_blocks=0, residual_diff_threshold=x,
                max_warmup_steps=min(8, max(1, num_steps // 6)), num_inference_steps=num_steps,
                enable_separate_cfg=guided), calibrator_config=TaylorSeerCalibratorConfig(taylorseer_order=1))

        def detach(pipe):
            import cache_dit  # optional dependency

            with empty_module_lists_hidden(pipe.transformer):
                cache_dit.disable_cache(pipe)

        rows.append(Setting(f"cache-dit DBCache F1B0 threshold={x:g} + TaylorSeer", "cache-dit", attach=attach,
                            detach=detach, knobs={"threshold": x}))
    return rows


@contextlib.contextmanager
def empty_module_lists_hidden(model: torch.nn.Module):
    """cache-dit 1.5's `disable_cache` indexes [0] of every ModuleList on the transformer and fails on
    an empty one (a VideoDiT without refine branches has `branches = ModuleList()`): hide them."""
    empty = {name: child for name, child in model.named_children()
             if isinstance(child, torch.nn.ModuleList) and len(child) == 0}
    for name in empty:
        delattr(model, name)
    try:
        yield
    finally:
        for name, child in empty.items():
            setattr(model, name, child)


# ---------------------------------------------------------------- counting what ran


class BlockCounter:
    """Counts transformer forwards and the blocks whose MLP really ran in them: a block rebuilt
    from a cache, or whose MLP was forecast, never calls its MLP's first linear layer."""

    def __init__(self, transformer: torch.nn.Module):
        self.blocks = find_blocks(transformer)
        self.forwards = self.computed = 0
        self.handles = [transformer.register_forward_pre_hook(self._forward)]
        for _, block in self.blocks:
            mlp = getattr(block, "mlp", None) or getattr(block, "ff", None)
            linear = next((m for m in mlp.modules() if isinstance(m, torch.nn.Linear)), None) if mlp else None
            if linear is None:
                raise TypeError(f"cannot find the MLP of {type(block).__name__} to count block evaluations")
            self.handles.append(linear.register_forward_pre_hook(self._block))

    def _forward(self, *_):
        self.forwards += 1

    def _block(self, *_):
        self.computed += 1

    def reset(self) -> None:
        self.forwards = self.computed = 0

    @property
    def skipped_fraction(self) -> float:
        total = self.forwards * len(self.blocks)
        return 1 - self.computed / total if total else 0.0

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
