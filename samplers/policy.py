"""The contract between the hooks (`samplers.hooks`) and a caching policy.

Per forward of the transformer, in one cache context:
    begin_step(state, step)                  once, before any block runs
    forward_block(state, step, call)         per block, in run order → (output, computed?)
    forward_feature(state, step, key, run)   per attention/MLP call (only if uses_features)
    forward_head(state, step, key, run)      per head module after the blocks (only if uses_head)
    end_step(state, step)                    once, after the last block
`state` is the policy's own per-context object from `new_state()`; `step` a `StepInfo`.
A policy that never skips reproduces the uncached model bit for bit: it returns what the block
returned, untouched.
"""

from __future__ import annotations

from typing import Any, Callable

from .blocks import BlockCall
from .hooks import StepInfo


class Policy:
    """Base: computes everything (subclasses override where they skip)."""

    needs_total = False  # True when some steps are forced by their distance to the end
    uses_features = False  # True to be called for each attention/MLP (TaylorSeer)
    uses_head = False  # True to be called for each head module (MultiResDiT's refine branches)
    min_blocks = 1

    def __init__(self, config):
        self.config = config

    def new_state(self) -> Any:
        return None

    def begin_step(self, state, step: StepInfo) -> None:
        pass

    def end_step(self, state, step: StepInfo) -> None:
        pass

    def forward_block(self, state, step: StepInfo, call: BlockCall) -> tuple[Any, bool]:
        return call.result(call.compute()), True

    def forward_feature(self, state, step: StepInfo, key: str, run: Callable[[], Any]) -> Any:
        return run()

    def forward_head(self, state, step: StepInfo, key: str, run: Callable[[], Any]) -> Any:
        return run()
