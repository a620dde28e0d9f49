"""First-block cache (diffusers' FirstBlockCache, cache-dit's DBCache F1B0): always run the
first block; when its residual (output − input) changed little (relative L1) since the last fully
computed step, the other blocks add their cached residuals instead of running.

The residual, not the output: the output carries the block's input along, which barely moves
between steps, so its relative change understates how much the block's work changed. On the
shipped image model the output-gated version lost ~6 dB PSNR against diffusers' FirstBlockCache
at the same speed-up (bench/cache.py, docs/BENCHMARKS.md).

"First" is the first block *run*, learnt per forward, so interleaved stacks (Latte) work.
"""

from __future__ import annotations

from dataclasses import dataclass

from .blocks import add, sub
from .change import relative_l1
from .checks import non_negative
from .policy import Policy


@dataclass(frozen=True)
class FBCacheConfig:
    """threshold: reuse when the relative L1 change of the first block's residual < threshold (0: never)."""

    threshold: float = 0.05

    def __post_init__(self):
        non_negative("threshold", self.threshold)


class FBCacheState:
    def __init__(self):
        self.reference = None  # first block's residual at the last fully computed step
        self.reuse = False
        self.change: float | None = None  # last measured change, for inspection
        self.residuals: dict[str, tuple] = {}


class FBCache(Policy):
    min_blocks = 2

    def new_state(self) -> FBCacheState:
        return FBCacheState()

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
