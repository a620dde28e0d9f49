"""Fixed-interval cache (the baseline): run every block every N steps; in between, each block
adds the residual (output − input) it had at the last computed step.

Reusing per-block residuals equals reusing the residual of the whole stack for a plain stack of
blocks, and stays right when the model reshapes or adds things between blocks (Latte).
"""

from __future__ import annotations

from dataclasses import dataclass

from .blocks import add, sub
from .checks import integer_at_least
from .policy import Policy


@dataclass(frozen=True)
class IntervalCacheConfig:
    """interval: compute at steps 0, N, 2N, …; 1 computes every step (no reuse)."""

    interval: int = 2

    def __post_init__(self):
        integer_at_least("interval", self.interval, 1)


class IntervalState:
    def __init__(self):
        self.compute = True
        self.residuals: dict[str, tuple] = {}


class IntervalCache(Policy):
    def new_state(self) -> IntervalState:
        return IntervalState()

    def begin_step(self, state: IntervalState, step) -> None:
        state.compute = step.index % self.config.interval == 0

    def forward_block(self, state: IntervalState, step, call):
        residual = state.residuals.get(call.key)
        if state.compute or residual is None:
            inputs, out = call.inputs, call.compute()
            state.residuals[call.key] = sub(out, inputs)
            return call.result(out), True
        return call.result(add(call.inputs, residual)), False
