"""Confidence-gated Taylor (CG-Taylor): forecast the last block's output, and trust the forecast
only when the same kind of forecast of the *first* block — which is cheap to check — is right.

Each step: run the first block and compare it with its forecast,
e = mean|ĥ1 − h1| / mean|h1|. If e < threshold, the other blocks pass their input through and
the last one returns its forecast; otherwise they all run and both forecasters learn the new
values (forecasts are made from full steps only, so the first block's error measures how stale
the last block's forecast is). The first `warmup_steps` and last `final_steps_full` steps always
run. `target="residual"` forecasts (last output − second block's input) instead, added to what
reaches the last block; it needs both to have one shape.

A model whose blocks feed a costly head (MultiResDiT's refine branches: a large share of the
forward of the pixel MultiResDiT shipped before issue 22) would keep paying for it on every
skipped step, which caps the speed-up far below what skipping the blocks promises. With
`forecast_head` (default) a skipped step forecasts the head's outputs too, from the same full
steps, so a skipped step costs the embeddings and the first block only. The first block's error
gates the whole forecast, head included.
"""

from __future__ import annotations

from dataclasses import dataclass

from .blocks import add, sub
from .change import relative_l1
from .checks import boolean, integer_at_least, non_negative, one_of, optional_steps
from .policy import Policy
from .taylor import FORMULAS, Forecaster, HeadForecasts

TARGETS = ("output", "residual")


@dataclass(frozen=True)
class CGTaylorConfig:
    """threshold δ on the first block's forecast error (0: never skip); order: of the last block's
    (and the head's) forecast; first_order: of the first block's; the first/last steps always run;
    forecast_head: forecast the modules after the blocks on skipped steps too (else they run).

    The default δ = 0.1 is `python -m bench.cache`'s pick on the pixel MultiResDiT shipped before
    issue 22, at 50 steps:
    it sits inside the range the first-block errors take there (a much smaller δ never skips)
    and skips a large share of the block work with the oracle unchanged (docs/BENCHMARKS.md)."""

    threshold: float = 0.1
    order: int = 1
    first_order: int = 3
    warmup_steps: int = 1
    final_steps_full: int = 1
    target: str = "output"
    formula: str = "newton"
    num_inference_steps: int | None = None
    forecast_head: bool = True

    def __post_init__(self):
        non_negative("threshold", self.threshold)
        integer_at_least("order", self.order, 0)
        integer_at_least("first_order", self.first_order, 0)
        integer_at_least("warmup_steps", self.warmup_steps, 1)
        integer_at_least("final_steps_full", self.final_steps_full, 0)
        one_of("target", self.target, TARGETS)
        one_of("formula", self.formula, FORMULAS)
        optional_steps("num_inference_steps", self.num_inference_steps)
        boolean("forecast_head", self.forecast_head)


class CGTaylorState:
    def __init__(self, config: CGTaylorConfig):
        self.first = Forecaster(config.first_order, config.formula)
        self.last = Forecaster(config.order, config.formula)
        self.forced = True
        self.skip = False
        self.error: float | None = None  # last gate value, for inspection
        self.second_input = None
        self.latest = None  # output of the last block run in this step
        self.heads = HeadForecasts(config.order, config.formula)


class CGTaylor(Policy):
    min_blocks = 2

    @property
    def needs_total(self) -> bool:
        return self.config.final_steps_full > 0

    @property
    def uses_head(self) -> bool:
        return self.config.forecast_head

    def new_state(self) -> CGTaylorState:
        return CGTaylorState(self.config)

    def begin_step(self, state: CGTaylorState, step) -> None:
        c = self.config
        state.forced = step.index < c.warmup_steps or step.in_final(c.final_steps_full)
        state.skip, state.error, state.second_input, state.latest = False, None, None, None

    def forward_block(self, state: CGTaylorState, step, call):
        if call.position == 0:
            out = call.compute()
            if not state.forced and state.first.ready and state.last.ready:
                state.error = relative_l1(state.first.predict(step.index)[0], out[0])
                state.skip = state.error < self.config.threshold
            if not state.skip:
                state.first.update(step.index, out)
            return call.result(out), True
        if state.skip:
            if not call.is_tail:
                return call.result(call.inputs), False  # pass through to the last block
            forecast = state.last.predict(step.index)
            if self.config.target == "residual":
                forecast = add(call.inputs, forecast)
            return call.result(forecast), False
        inputs, out = call.inputs, call.compute()
        if call.position == 1:
            state.second_input = inputs
        state.latest = out
        return call.result(out), True

    def end_step(self, state: CGTaylorState, step) -> None:
        if state.skip or state.latest is None:
            return
        value = state.latest
        if self.config.target == "residual":
            if [t.shape for t in value] != [t.shape for t in state.second_input]:
                raise ValueError(f"CG-Taylor target='residual' needs the last block's output and the second "
                                 f"block's input to have one shape, got {tuple(value[0].shape)} and "
                                 f"{tuple(state.second_input[0].shape)}; use target='output'")
            value = sub(value, state.second_input)
        state.last.update(step.index, value)

    def forward_head(self, state: CGTaylorState, step, key: str, run):
        return state.heads(key, step.index, state.skip, run)
