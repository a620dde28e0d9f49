"""Resets the state of every hook on a model, so one pipeline call never sees the last one's cache."""

from __future__ import annotations

from diffusers.hooks import HookRegistry
from torch import nn


def reset_hook_state(model: nn.Module) -> None:
    """Clears diffusers hook state (caches, counters) on `model` and all its submodules."""
    for module in model.modules():
        registry = getattr(module, "_diffusers_hook", None)
        if isinstance(registry, HookRegistry):
            registry.reset_stateful_hooks(recurse=False)
