"""First-block cache (diffusers' FirstBlockCache, cache-dit's DBCache F1B0): always run the
first block; when its residual (output − input) changed little (relative L1) since the last fully
computed step, the other blocks add their cached residuals instead of running.

The residual, not the output: the output carries the block's input along, which barely moves
between steps, so its relative change understates how much the block's work changed. On the
pixel MultiResDiT shipped before issue 22 the output-gated version trailed diffusers'
FirstBlockCache in PSNR at the same speed-up (docs/BENCHMARKS.md, "Cache design A/Bs").

"First" is the first block *run*, learnt per forward, so interleaved stacks (Latte) work.

With `forecast_head`, a step that reuses the blocks also forecasts the modules after them
(MultiResDiT's refine branches, a large share of the forward of the pixel MultiResDiT shipped
before issue 22) from the
fully computed steps, as CG-Taylor does; otherwise they run on every step.

With `residual_order` ≥ 1 a reused block adds its residual extrapolated over the step index from
the last fully computed steps (`samplers.taylor.Forecaster`), as cache-dit's DBCache does with its
TaylorSeer calibrator, instead of the last residual as it was (order 0, the default). It matters
only with `forecast_head` off: with it on, a reused step's output is the head's forecast and the
blocks' outputs are not read. On that pixel MultiResDiT, with the head run on every step,
order 1 was closer to the uncached output than order 0 at the same share of blocks skipped, but
the head forecast (the default) was faster still at a similar PSNR, since the head does not run
(docs/BENCHMARKS.md). So the default stays; order 1 with `forecast_head=False` is for models
whose head is cheap.
"""

from __future__ import annotations

from dataclasses import dataclass

from .blocks import add, sub
from .change import relative_l1
from .checks import boolean, integer_at_least, non_negative
from .policy import Policy
from .taylor import Forecaster, HeadForecasts


@dataclass(frozen=True)
class FBCacheConfig:
    """threshold: reuse when the relative L1 change of the first block's residual < threshold (0: never);
    forecast_head: on reused steps, forecast the head at order `head_order` instead of running it;
    residual_order: extrapolate the reused blocks' residuals at this order (0: reuse them as they were).
    It is on by default: on the pixel MultiResDiT shipped before issue 22 it was both faster and
    closer to the uncached output than running the head, since the head run on reused block
    features is less consistent than its forecast. The default threshold 0.1 is on
    `python -m bench.cache`'s speed/PSNR Pareto front for that model with the oracle as uncached
    (the figures: docs/BENCHMARKS.md)."""

    threshold: float = 0.1
    forecast_head: bool = True
    head_order: int = 1
    residual_order: int = 0

    def __post_init__(self):
        non_negative("threshold", self.threshold)
        boolean("forecast_head", self.forecast_head)
        integer_at_least("head_order", self.head_order, 0)
        integer_at_least("residual_order", self.residual_order, 0)


class FBCacheState:
    def __init__(self, config: FBCacheConfig):
        self.reference = None  # first block's residual at the last fully computed step
        self.reuse = False
        self.change: float | None = None  # last measured change, for inspection
        self.residuals: dict[str, Forecaster] = {}  # blocks 2..L: their residuals at computed steps
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
        if state.reuse and residual is not None and residual.ready:
            return call.result(add(call.inputs, residual.predict(step.index))), False
        inputs, out = call.inputs, call.compute()
        if residual is None:
            residual = state.residuals[call.key] = Forecaster(self.config.residual_order)
        residual.update(step.index, sub(out, inputs))
        return call.result(out), True

    def forward_head(self, state: FBCacheState, step, key: str, run):
        return state.heads(key, step.index, state.reuse, run)
