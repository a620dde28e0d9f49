"""BWCache (block-wise caching, Cui et al. 2025): a block's output changes little between
adjacent steps in the middle of the trajectory (the U-shaped curve), so reuse it there.

Indicator of block i: the relative L1 change of its output between its last two computed
evaluations, ‖B_i^new − B_i^old‖₁ / ‖B_i^old‖₁. Below `threshold` the block adds its cached
residual (output − input) instead of running; after `max_reuse` consecutive reuses it runs
again (and so measures its change afresh); the final `final_steps_full` steps always run.
`per_block=False` is the paper's form: one decision per step from the mean indicator over blocks.

With `forecast_head` (default), a step on which every block was reused also forecasts the
modules after the blocks (the refine branches of MultiResDiT and VideoDiT: a large share of the
forward of the pixel video model shipped before issue 22) from the steps that ran them, as
FBCache and CG-Taylor do; otherwise the head runs on every step, which caps the speed-up on such
a model.
"""

from __future__ import annotations

from dataclasses import dataclass

from .blocks import add, sub
from .change import relative_l1
from .checks import boolean, integer_at_least, non_negative, optional_steps
from .policy import Policy
from .taylor import HeadForecasts


@dataclass(frozen=True)
class BWCacheConfig:
    """threshold: reuse below this change (0: never); max_reuse: consecutive reuses before a forced
    run; final_steps_full: last steps always computed (needs the step count: pipelines set it);
    per_block: one decision per block (else per step, from the mean indicator); forecast_head:
    on steps that reuse every block, forecast the head at order `head_order` instead of running it.

    Defaults from `python -m bench.cache` at 50 steps (docs/BENCHMARKS.md, "BWCache per step with
    the head forecast"): one decision per step with the head forecast, threshold 0.2. On the
    pixel video and image models shipped before issue 22 it was faster and closer to the uncached
    output than the per-block form with the head run on every step, with the video oracle's
    motion as uncached.
    The head forecast needs every block reused in a step, which the per-step decision makes common
    (per block with the head forecast was slower and further off). 0.2 against 0.1: faster and
    closer on both models."""

    threshold: float = 0.2
    max_reuse: int = 2
    final_steps_full: int = 2
    per_block: bool = False
    num_inference_steps: int | None = None
    forecast_head: bool = True
    head_order: int = 1

    def __post_init__(self):
        non_negative("threshold", self.threshold)
        integer_at_least("max_reuse", self.max_reuse, 0)
        integer_at_least("final_steps_full", self.final_steps_full, 0)
        optional_steps("num_inference_steps", self.num_inference_steps)
        boolean("forecast_head", self.forecast_head)
        integer_at_least("head_order", self.head_order, 0)


class BlockMemory:
    """What one block left in the cache at its last computed evaluation."""

    def __init__(self, residual: tuple, output, indicator: float | None):
        self.residual = residual
        self.output = output
        self.indicator = indicator
        self.reused = 0


class BWCacheState:
    def __init__(self, config: BWCacheConfig):
        self.blocks: dict[str, BlockMemory] = {}
        self.final = False
        self.reuse_all = False  # per_block=False: this step's single decision
        self.computed_any = False  # some block ran in this step
        self.heads = HeadForecasts(config.head_order)


class BWCache(Policy):
    @property
    def needs_total(self) -> bool:
        return self.config.final_steps_full > 0

    @property
    def uses_head(self) -> bool:
        return self.config.forecast_head

    def new_state(self) -> BWCacheState:
        return BWCacheState(self.config)

    def may_reuse(self, memory: BlockMemory | None, indicator: float | None) -> bool:
        return (memory is not None and indicator is not None and indicator < self.config.threshold
                and memory.reused < self.config.max_reuse)

    def begin_step(self, state: BWCacheState, step) -> None:
        state.final = step.in_final(self.config.final_steps_full)
        state.computed_any = False
        if not self.config.per_block:
            memories = list(state.blocks.values())
            ready = bool(memories) and all(m.indicator is not None for m in memories)
            mean = sum(m.indicator for m in memories) / len(memories) if ready else None
            state.reuse_all = not state.final and ready and all(self.may_reuse(m, mean) for m in memories)

    def forward_block(self, state: BWCacheState, step, call):
        memory = state.blocks.get(call.key)
        if self.config.per_block:
            indicator = memory.indicator if memory is not None else None
            reuse = not state.final and self.may_reuse(memory, indicator)
        else:
            reuse = state.reuse_all and memory is not None
        if reuse:
            memory.reused += 1
            return call.result(add(call.inputs, memory.residual)), False
        inputs, out = call.inputs, call.compute()
        state.computed_any = True
        indicator = relative_l1(out[0], memory.output) if memory is not None else None
        state.blocks[call.key] = BlockMemory(sub(out, inputs), out[0], indicator)
        return call.result(out), True

    def forward_head(self, state: BWCacheState, step, key: str, run):
        return state.heads(key, step.index, not state.computed_any, run)
