"""TaylorSeer (Liu et al. 2025): forecast each block's attention and MLP outputs (before the
gate and residual add) from finite differences over the steps where they were computed.

Full steps: the first `warmup_steps`, then every `interval` steps after the last full one; they
update each feature's factors Δ^0 … Δ^order. Between them every attention/MLP returns its
forecast (the block's norms, gates and residual adds still run). See `samplers.taylor`.

With `forecast_head` (default) the modules after the blocks (MultiResDiT's refine branches) are
forecast the same way between full steps; the paper's DiTs have only a cheap final layer there,
but a refine branch is a large share of the forward of the pixel MultiResDiT shipped before
issue 22 (see `samplers.cg_taylor`).
"""

from __future__ import annotations

from dataclasses import dataclass

from .checks import boolean, integer_at_least, one_of
from .policy import Policy
from .taylor import FORMULAS, Forecaster


@dataclass(frozen=True)
class TaylorSeerConfig:
    """interval: a full step every N (1: always full); order: highest finite difference;
    warmup_steps: first steps always full; formula: "newton" (exact on polynomials) or "taylor";
    forecast_head: forecast the modules after the blocks between full steps too (else they run)."""

    interval: int = 4
    order: int = 2
    warmup_steps: int = 2
    formula: str = "newton"
    forecast_head: bool = True

    def __post_init__(self):
        integer_at_least("interval", self.interval, 1)
        integer_at_least("order", self.order, 0)
        integer_at_least("warmup_steps", self.warmup_steps, 0)
        one_of("formula", self.formula, FORMULAS)
        boolean("forecast_head", self.forecast_head)


class TaylorSeerState:
    def __init__(self):
        self.full = True
        self.last_full: int | None = None
        self.features: dict[str, Forecaster] = {}


class TaylorSeer(Policy):
    uses_features = True

    @property
    def uses_head(self) -> bool:
        return self.config.forecast_head

    def new_state(self) -> TaylorSeerState:
        return TaylorSeerState()

    def begin_step(self, state: TaylorSeerState, step) -> None:
        c = self.config
        state.full = (step.index < c.warmup_steps or state.last_full is None
                      or step.index - state.last_full >= c.interval)
        if state.full:
            state.last_full = step.index

    def forward_block(self, state: TaylorSeerState, step, call):
        # the block itself always runs; "skipped" counts blocks whose attention and MLP were forecast
        return call.result(call.compute()), state.full

    def forward_feature(self, state: TaylorSeerState, step, key, run):
        forecaster = state.features.get(key)
        if forecaster is None:
            forecaster = state.features[key] = Forecaster(self.config.order, self.config.formula)
        if state.full or not forecaster.ready:
            out = run()
            forecaster.update(step.index, out)
            return out
        return forecaster.predict(step.index)

    def forward_head(self, state: TaylorSeerState, step, key, run):
        return self.forward_feature(state, step, key, run)  # head keys ("branches.0") never clash with features'
