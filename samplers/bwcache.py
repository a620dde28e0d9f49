"""BWCache (block-wise caching, Cui et al. 2025): a block's output changes little between
adjacent steps in the middle of the trajectory (the U-shaped curve), so reuse it there.

Indicator of block i: the relative L1 change of its output between its last two computed
evaluations, ‖B_i^new − B_i^old‖₁ / ‖B_i^old‖₁. Below `threshold` the block adds its cached
residual (output − input) instead of running; after `max_reuse` consecutive reuses it runs
again (and so measures its change afresh); the final `final_steps_full` steps always run.
`per_block=False` is the paper's form: one decision per step from the mean indicator over blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

from .blocks import add, sub
from .change import relative_l1
from .checks import integer_at_least, non_negative, optional_steps
from .policy import Policy


@dataclass(frozen=True)
class BWCacheConfig:
    """threshold: reuse below this change (0: never); max_reuse: consecutive reuses before a forced
    run; final_steps_full: last steps always computed (needs the step count: pipelines set it).

    The default threshold 0.2 was faster and closer than 0.1 on both shipped models in
    bench/cache.py (image: 1.67x / 40.2 dB vs 1.54x / 36.4 dB; video, 4 clips: 1.83x / 36.1 dB vs
    1.62x / 35.8 dB; docs/BENCHMARKS.md): with max_reuse capping the runs of reuses, a higher
    threshold mostly reuses in the flat middle of the trajectory, where reuse is accurate."""

    threshold: float = 0.2
    max_reuse: int = 2
    final_steps_full: int = 2
    per_block: bool = True
    num_inference_steps: int | None = None

    def __post_init__(self):
        non_negative("threshold", self.threshold)
        integer_at_least("max_reuse", self.max_reuse, 0)
        integer_at_least("final_steps_full", self.final_steps_full, 0)
        optional_steps("num_inference_steps", self.num_inference_steps)


class BlockMemory:
    """What one block left in the cache at its last computed evaluation."""

    def __init__(self, residual: tuple, output, indicator: float | None):
        self.residual = residual
        self.output = output
        self.indicator = indicator
        self.reused = 0


class BWCacheState:
    def __init__(self):
        self.blocks: dict[str, BlockMemory] = {}
        self.final = False
        self.reuse_all = False  # per_block=False: this step's single decision


class BWCache(Policy):
    @property
    def needs_total(self) -> bool:
        return self.config.final_steps_full > 0

    def new_state(self) -> BWCacheState:
        return BWCacheState()

    def may_reuse(self, memory: BlockMemory | None, indicator: float | None) -> bool:
        return (memory is not None and indicator is not None and indicator < self.config.threshold
                and memory.reused < self.config.max_reuse)

    def begin_step(self, state: BWCacheState, step) -> None:
        state.final = step.in_final(self.config.final_steps_full)
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
        indicator = relative_l1(out[0], memory.output) if memory is not None else None
        state.blocks[call.key] = BlockMemory(sub(out, inputs), out[0], indicator)
        return call.result(out), True
