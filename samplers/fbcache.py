"""First-block cache (diffusers' FirstBlockCache, cache-dit's DBCache F1B0): always run the
first block; when its residual (output − input) changed little (relative L1) since the last fully
computed step, the other blocks add their cached residuals instead of running.

The residual, not the output: the output carries the block's input along, which barely moves
between steps, so its relative change understates how much the block's work changed. On the
shipped image model the output-gated version lost ~6 dB PSNR against diffusers' FirstBlockCache
at the same speed-up (bench/cache.py, docs/BENCHMARKS.md).

"First" is the first block *run*, learnt per forward, so interleaved stacks (Latte) work.

With `forecast_head`, a step that reuses the blocks also forecasts the modules after them
(MultiResDiT's refine branches, a quarter of the shipped image model's forward) from the fully
computed steps, as CG-Taylor does; otherwise they run on every step.
"""

from __future__ import annotations

from dataclasses import dataclass

from .blocks import add, sub
from .change import relative_l1
from .checks import boolean, integer_at_least, non_negative
from .policy import Policy
from .taylor import HeadForecasts


@dataclass(frozen=True)
class FBCacheConfig:
    """threshold: reuse when the relative L1 change of the first block's residual < threshold (0: never);
    forecast_head: on reused steps, forecast the head at order `head_order` instead of running it.
    It is on by default: on the shipped image model at threshold 0.1 it took 4 prompts at 50 steps
    from 1.34x / 49.0 dB to 1.58x / 58.0 dB against uncached (scratch A/B, one run) — faster, and
    closer too: the head run on reused block features is less consistent than its forecast.
    The default threshold 0.1 is on bench/cache.py's Pareto front for that model (16 prompts, 50
    steps: 1.54x at 55.9 dB, oracle as uncached; 0.05 gives 1.20x / 67.6 dB, 0.2 2.33x / 41.5 dB;
    docs/BENCHMARKS.md)."""

    threshold: float = 0.1
    forecast_head: bool = True
    head_order: int = 1

    def __post_init__(self):
        non_negative("threshold", self.threshold)
        boolean("forecast_head", self.forecast_head)
        integer_at_least("head_order", self.head_order, 0)


class FBCacheState:
    def __init__(self, config: FBCacheConfig):
        self.reference = None  # first block's residual at the last fully computed step
        self.reuse = False
        self.change: float | None = None  # last measured change, for inspection
        self.residuals: dict[str, tuple] = {}
        self.heads = HeadForecasts(config.head_order)


class FBCache(Policy):
    min_blocks = 2

    @property
    def uses_head(self) -> bool:
        return self.config.forecast_head

    def new_state(self) -> FBCacheState:
        return FBCacheState(self.config)

    def forward_block(self, state: FBCacheState, step, call):
        if call.position == 0:
            inputs, out = call.inputs, call.compute()
            residual = out[0] - inputs[0]
            state.change = None if state.reference is None else relative_l1(residual, state.reference)
            state.reuse = state.change is not None and state.change < self.config.threshold
            if not state.reuse:
                state.reference = residual
            return call.result(out), True
        residual = state.residuals.get(call.key)
        if state.reuse and residual is not None:
            return call.result(add(call.inputs, residual)), False
        inputs, out = call.inputs, call.compute()
        state.residuals[call.key] = sub(out, inputs)
        return call.result(out), True

    def forward_head(self, state: FBCacheState, step, key: str, run):
        return state.heads(key, step.index, state.reuse, run)
