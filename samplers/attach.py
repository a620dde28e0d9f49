"""Putting a caching policy on a transformer and taking it off; reading what it skipped.

Works on any model whose blocks sit in `transformer_blocks` / `temporal_transformer_blocks` /
`blocks` / `layers` ModuleLists: ditkit's DiT, MultiResDiT (its trunk) and VideoDiT, diffusers'
DiTTransformer2DModel, PixArtTransformer2DModel, LatteTransformer3DModel, ….
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from diffusers.hooks import HookRegistry
from torch import nn

from .blocks import find_blocks, find_features, find_head
from .hooks import (BLOCK_HOOK, FEATURE_HOOK, HEAD_HOOK, STEP_HOOK, Attachment, BlockHook, Context, FeatureHook,
                    HeadHook, StepHook)
from .methods import make_policy, method_name

ATTR = "_ditkit_acceleration"


@dataclass(frozen=True)
class AccelerationStats:
    """Block evaluations of the transformer in its last call (a pipeline call: from the first forward
    after a hook-state reset until the next such forward).

    A block evaluation is one block run in one forward; `skipped` ones were rebuilt from the cache
    (for TaylorSeer: their attention and MLP were forecast). Head evaluations count the modules
    after the blocks (refine branches) that a policy with `forecast_head` computed or forecast;
    0 and 0 where it has none. per_context: {name: {computed, skipped, forwards, head_computed,
    head_skipped}} for `cond`, `uncond`, ….
    """

    method: str
    computed: int
    skipped: int
    forwards: int
    per_context: dict
    head_computed: int = 0
    head_skipped: int = 0

    @property
    def total(self) -> int:
        return self.computed + self.skipped

    @property
    def skipped_fraction(self) -> float:
        return self.skipped / self.total if self.total else 0.0

    def summary(self) -> str:
        """'skipped 62% of block evaluations (310 of 500); head forecast on 30 of 50' — for reports."""
        text = f"skipped {self.skipped_fraction:.0%} of block evaluations ({self.skipped} of {self.total})"
        heads = self.head_computed + self.head_skipped
        if self.head_skipped:
            text += f"; head forecast on {self.head_skipped} of {heads}"
        return text


def _attachment(transformer: nn.Module) -> Attachment | None:
    return getattr(transformer, ATTR, None)


def _invalidate(transformer: nn.Module) -> None:
    registry = HookRegistry.check_if_exists_or_initialize(transformer)
    if hasattr(registry, "invalidate_child_registries_cache"):  # diffusers >= 0.37 caches the hook tree
        registry.invalidate_child_registries_cache()


def apply_acceleration(transformer: nn.Module, config) -> None:
    """Attaches the caching policy `config` (None: nothing) as diffusers hooks on `transformer`."""
    if config is None:
        return
    policy = make_policy(config)
    current = attached_config(transformer)
    if current is not None:
        raise ValueError(f"{method_name(current)} is already attached to this transformer; "
                         f"call remove_acceleration first")
    if getattr(transformer, "is_cache_enabled", False):
        raise ValueError("a diffusers cache is enabled on this transformer (enable_cache); call disable_cache first")
    blocks = find_blocks(transformer)
    if len(blocks) < policy.min_blocks:
        raise ValueError(f"{method_name(config)} needs at least {policy.min_blocks} transformer blocks; found "
                         f"{len(blocks)} in {type(transformer).__name__}")
    att = Attachment(config, policy, blocks)
    HookRegistry.check_if_exists_or_initialize(transformer).register_hook(StepHook(att), STEP_HOOK)
    for key, block in blocks:
        HookRegistry.check_if_exists_or_initialize(block).register_hook(BlockHook(att, key, block), BLOCK_HOOK)
        if policy.uses_features:
            for name, module in find_features(block):
                hook = FeatureHook(att, f"{key}.{name}")
                HookRegistry.check_if_exists_or_initialize(module).register_hook(hook, FEATURE_HOOK)
    if policy.uses_head:
        for key, module in find_head(transformer):
            HookRegistry.check_if_exists_or_initialize(module).register_hook(HeadHook(att, key), HEAD_HOOK)
    _invalidate(transformer)
    setattr(transformer, ATTR, att)


def remove_acceleration(transformer: nn.Module) -> None:
    """Takes our hooks off (a no-op when none are on); `stats` still reads the last call."""
    att = _attachment(transformer)
    if att is None or not att.attached:
        return
    registry = HookRegistry.check_if_exists_or_initialize(transformer)
    for name in (STEP_HOOK, BLOCK_HOOK, FEATURE_HOOK, HEAD_HOOK):
        registry.remove_hook(name, recurse=True)
    _invalidate(transformer)
    att.attached = False


def attached_config(transformer: nn.Module):
    """The config of the policy on `transformer`, or None."""
    att = _attachment(transformer)
    return att.config if att is not None and att.attached else None


def stats(transformer: nn.Module) -> AccelerationStats | None:
    """What the policy computed and skipped in the last call (None if never attached); still
    readable after the pipeline's end-of-call reset and after `remove_acceleration`."""
    att = _attachment(transformer)
    if att is None:
        return None
    s = att.stats
    tables = {"computed": s.computed, "skipped": s.skipped, "forwards": s.forwards,
              "head_computed": s.head_computed, "head_skipped": s.head_skipped}
    names = sorted({name for table in tables.values() for name in table})
    per_context = {n: {key: table.get(n, 0) for key, table in tables.items()} for n in names}
    return AccelerationStats(method_name(att.config), sum(s.computed.values()), sum(s.skipped.values()),
                             sum(s.forwards.values()), per_context, sum(s.head_computed.values()),
                             sum(s.head_skipped.values()))


def set_num_steps(transformer: nn.Module, num_steps: int | None) -> None:
    """Tells the policy how many steps the coming trajectory has (for its forced final steps).
    Pipelines call this after resetting hook state; a context's `num_inference_steps` wins."""
    att = _attachment(transformer)
    if att is not None:
        att.num_steps = num_steps


def restart(transformer: nn.Module, num_steps: int | None = None) -> None:
    """Fresh caches for a new trajectory segment (a bottleneck stage): resets every stateful hook on
    the model — ours and diffusers' — but keeps this call's statistics."""
    for module in transformer.modules():
        registry = getattr(module, "_diffusers_hook", None)
        if isinstance(registry, HookRegistry):
            registry.reset_stateful_hooks(recurse=False)
    att = _attachment(transformer)
    if att is not None:
        att.stats.stale = False  # the same call goes on
        att.num_steps = num_steps


@contextlib.contextmanager
def cache_context(transformer: nn.Module, name: str, step_index: int | None = None,
                  num_inference_steps: int | None = None):
    """Runs the block in cache context `name` — the model's own `cache_context` when it has one
    (diffusers' CacheMixin), else just ours (diffusers' DiT and PixArt transformers lack it)."""
    own = getattr(transformer, "cache_context", None)
    if own is not None:
        kwargs = {k: v for k, v in (("step_index", step_index), ("num_inference_steps", num_inference_steps))
                  if v is not None}
        with own(name, **kwargs):
            yield
        return
    att = _attachment(transformer)
    if att is None:
        yield
        return
    att.states.set_context(Context(name, step_index, num_inference_steps))
    try:
        yield
    finally:
        att.states.set_context(None)


@contextlib.contextmanager
def accelerated(transformer: nn.Module, config):
    """Attaches `config` for the duration of the block and removes it after; when the same config is
    already attached it stays (and stays after); None changes nothing."""
    current = attached_config(transformer)
    if config is None or current == config:
        yield
        return
    if current is not None:
        raise ValueError(f"{method_name(current)} is attached to this transformer and {method_name(config)} "
                         f"was asked for; call remove_acceleration first")
    apply_acceleration(transformer, config)
    try:
        yield
    finally:
        remove_acceleration(transformer)
