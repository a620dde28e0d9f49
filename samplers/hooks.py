"""The mechanism under every caching policy: diffusers `ModelHook`s that count steps and hand
each block (and, for TaylorSeer, each attention/MLP) call to the policy.

- `StepHook` on the transformer: each forward is one denoising step of one cache context
  (`cond`/`uncond`); it knows the step index (the context's `step_index`, else its own count)
  and the trajectory length (the context's `num_inference_steps`, else what the pipeline set
  with `set_num_steps`, else the config's).
- `BlockHook` on each block: builds a `BlockCall` and asks the policy to compute or skip it.
- `FeatureHook` on attention/MLP modules: asks the policy to compute or forecast them.
- `HeadHook` on modules after the blocks (refine branches): the same, for the head.

State lives in one `ContextStates` (a diffusers `StateManager`) per attachment, so every cache
context has its own, pipelines' `cache_context(...)` select it, and diffusers'
`reset_stateful_hooks` (our `reset_hook_state`) clears it. A call made outside any context uses
the context "default".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import torch
from diffusers.hooks.hooks import BaseState, ModelHook, StateManager

from .blocks import BlockCall, BlockIO

logger = logging.getLogger(__name__)

STEP_HOOK, BLOCK_HOOK, FEATURE_HOOK, HEAD_HOOK = ("ditkit_accel_step", "ditkit_accel_block", "ditkit_accel_feature",
                                                  "ditkit_accel_head")


@dataclass(frozen=True)
class Context:
    """A cache context as our hooks read it (diffusers passes a `CacheContext`, older versions a name)."""

    name: str = "default"
    step_index: int | None = None
    num_inference_steps: int | None = None

    @classmethod
    def of(cls, context) -> "Context":
        if context is None or isinstance(context, cls):
            return context or cls()
        if isinstance(context, str):
            return cls(context)
        return cls(context.name, getattr(context, "step_index", None), getattr(context, "num_inference_steps", None))


@dataclass(frozen=True)
class StepInfo:
    """Where a forward sits in its trajectory: step `index` of `total` (None: unknown)."""

    index: int
    total: int | None

    def in_final(self, count: int) -> bool:
        """True in the last `count` steps (never when the total is unknown)."""
        return count > 0 and self.total is not None and self.index >= self.total - count


class ContextStates(StateManager):
    """Per-context states. A `StateManager` so that diffusers' `cache_context` reaches it; its own
    methods so that it reads any diffusers version's context and falls back to "default"."""

    def __init__(self, state_cls, init_args=()):
        super().__init__(state_cls, init_args)
        self.current = Context()
        self.states: dict[str, BaseState] = {}

    def set_context(self, context) -> None:
        self.current = Context.of(context)

    _set_context = set_context  # the name diffusers < 0.36 calls

    def get_state(self):
        name = self.current.name
        if name not in self.states:
            self.states[name] = self._state_cls(*self._init_args)
        return self.states[name]

    def reset(self, *args, **kwargs) -> None:
        self.states.clear()
        self.current = Context()


class ContextState(BaseState):
    """Step bookkeeping of one cache context plus the policy's own state for it."""

    def __init__(self, policy):
        self.policy = policy
        self.reset()

    def reset(self) -> None:
        self.forwards = 0
        self.shape: tuple | None = None
        self.step: StepInfo | None = None
        self.in_step = False
        self.order: list[str] = []  # block keys run so far in this forward
        self.last_order: list[str] = []  # … in the previous forward
        self.data = self.policy.new_state()


@dataclass
class Stats:
    """Block (and head) evaluations computed and skipped per cache context in the last call.

    A hook reset only marks them stale; the next forward clears them. So they survive the reset
    diffusers' pipelines do at the *end* of a call (`maybe_free_model_hooks`) and describe it.
    """

    computed: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    forwards: dict[str, int] = field(default_factory=dict)
    head_computed: dict[str, int] = field(default_factory=dict)
    head_skipped: dict[str, int] = field(default_factory=dict)
    stale: bool = False

    def record(self, context: str, computed: bool, head: bool = False) -> None:
        if head:
            table = self.head_computed if computed else self.head_skipped
        else:
            table = self.computed if computed else self.skipped
        table[context] = table.get(context, 0) + 1

    def clear(self) -> None:
        for table in (self.computed, self.skipped, self.forwards, self.head_computed, self.head_skipped):
            table.clear()
        self.stale = False


class Attachment:
    """Everything one `apply_acceleration` put on a transformer."""

    def __init__(self, config, policy, blocks: list[tuple[str, torch.nn.Module]]):
        self.config = config
        self.policy = policy
        self.blocks = blocks
        self.states = ContextStates(ContextState, (policy,))
        self.stats = Stats()
        self.num_steps: int | None = None  # set by the pipeline for each trajectory
        self.attached = True
        self.warned_no_total = False

    def total_steps(self, context: Context) -> int | None:
        return context.num_inference_steps or self.num_steps or getattr(self.config, "num_inference_steps", None)


def _shape_of(args: tuple, kwargs: dict) -> tuple | None:
    x = kwargs.get("hidden_states", args[0] if args else None)
    return tuple(x.shape) if isinstance(x, torch.Tensor) else None


class StepHook(ModelHook):
    """On the transformer: one forward = one step of the current cache context."""

    _is_stateful = True

    def __init__(self, attachment: Attachment):
        super().__init__()
        self.attachment = attachment
        self.states = attachment.states

    def new_forward(self, module, *args, **kwargs):
        att = self.attachment
        if att.stats.stale:
            att.stats.clear()
        context = self.states.current
        state: ContextState = self.states.get_state()
        shape = _shape_of(args, kwargs)
        if state.shape is not None and shape != state.shape:
            state.reset()  # a new size (bottleneck stage, batch): cached features no longer fit
        state.shape = shape
        index = context.step_index if context.step_index is not None else state.forwards
        step = StepInfo(index, att.total_steps(context))
        if step.total is None and att.policy.needs_total and not att.warned_no_total:
            logger.warning("%s: the number of steps is unknown, so the final steps are not forced to "
                           "compute; pass num_inference_steps in the config or call set_num_steps",
                           type(att.config).__name__)
            att.warned_no_total = True
        state.forwards += 1
        state.step, state.order, state.in_step = step, [], True
        att.policy.begin_step(state.data, step)
        try:
            output = self.fn_ref.original_forward(*args, **kwargs)
        finally:
            state.in_step = False
        state.last_order = state.order
        att.policy.end_step(state.data, step)
        att.stats.forwards[context.name] = att.stats.forwards.get(context.name, 0) + 1
        return output

    def reset_state(self, module):
        self.states.reset()
        self.attachment.stats.stale = True
        return module


class BlockHook(ModelHook):
    """On a block: the policy decides whether it runs or its output is rebuilt from the cache."""

    _is_stateful = True

    def __init__(self, attachment: Attachment, key: str, block: torch.nn.Module):
        super().__init__()
        self.attachment = attachment
        self.states = attachment.states
        self.key = key
        self.io = BlockIO(block)

    def new_forward(self, module, *args, **kwargs) -> Any:
        state: ContextState = self.states.get_state()
        if not state.in_step:  # called outside a transformer forward: nothing to cache against
            return self.fn_ref.original_forward(*args, **kwargs)
        tail = bool(state.last_order) and state.last_order[-1] == self.key
        call = BlockCall(self.key, len(state.order), tail, self.io, args, kwargs, self.fn_ref.original_forward)
        state.order.append(self.key)
        output, computed = self.attachment.policy.forward_block(state.data, state.step, call)
        self.attachment.stats.record(self.states.current.name, computed)
        return output

    def reset_state(self, module):
        self.states.reset()
        return module


class FeatureHook(ModelHook):
    """On an attention or MLP module inside a block: computed, or forecast by the policy."""

    _is_stateful = True
    policy_method = "forward_feature"
    counted = False  # block stats already cover a block's features

    def __init__(self, attachment: Attachment, key: str):
        super().__init__()
        self.attachment = attachment
        self.states = attachment.states
        self.key = key

    def new_forward(self, module, *args, **kwargs) -> Any:
        state: ContextState = self.states.get_state()
        if not state.in_step:
            return self.fn_ref.original_forward(*args, **kwargs)
        ran = []

        def run():
            ran.append(True)
            return self.fn_ref.original_forward(*args, **kwargs)

        output = getattr(self.attachment.policy, self.policy_method)(state.data, state.step, self.key, run)
        if self.counted:
            self.attachment.stats.record(self.states.current.name, bool(ran), head=True)
        return output

    def reset_state(self, module):
        self.states.reset()
        return module


class HeadHook(FeatureHook):
    """On a module that runs after the blocks (a refine branch): computed, or forecast by the policy."""

    policy_method = "forward_head"
    counted = True
