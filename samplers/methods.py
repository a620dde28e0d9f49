"""The acceleration methods by name (as the CLIs spell them), their configs and policies."""

from __future__ import annotations

from dataclasses import fields

from .bottleneck import BottleneckConfig
from .bwcache import BWCache, BWCacheConfig
from .cg_taylor import CGTaylor, CGTaylorConfig
from .fbcache import FBCache, FBCacheConfig
from .interval import IntervalCache, IntervalCacheConfig
from .policy import Policy
from .taylorseer import TaylorSeer, TaylorSeerConfig

# name → (config class, policy class, the generic knobs it takes)
REGISTRY = {
    "interval": (IntervalCacheConfig, IntervalCache, ("interval",)),
    "bwcache": (BWCacheConfig, BWCache, ("threshold",)),
    "fbcache": (FBCacheConfig, FBCache, ("threshold",)),
    "taylorseer": (TaylorSeerConfig, TaylorSeer, ("interval", "order")),
    "cg-taylor": (CGTaylorConfig, CGTaylor, ("threshold", "order")),
}
METHODS = ("none", *REGISTRY)
CACHE_CONFIGS = tuple(config for config, _, _ in REGISTRY.values())


def method_knobs(method: str) -> tuple[str, ...]:
    """The generic knobs (threshold, interval, order) a method takes; () for "none"."""
    return REGISTRY[method][2] if method in REGISTRY else ()


def method_name(config) -> str:
    for name, (config_cls, _, _) in REGISTRY.items():
        if type(config) is config_cls:
            return name
    raise ValueError(f"not a cache config: {config!r}")


def make_policy(config) -> Policy:
    """The policy object for a cache config."""
    if isinstance(config, BottleneckConfig):
        raise ValueError("bottleneck sampling changes the sampling loop, not the transformer: pass it to the "
                         "pipeline (acceleration=...) or call samplers.sample_bottleneck")
    for config_cls, policy_cls, _ in REGISTRY.values():
        if type(config) is config_cls:
            return policy_cls(config)
    raise ValueError(f"unknown acceleration config {config!r}; expected one of "
                     f"{', '.join(c.__name__ for c in CACHE_CONFIGS)}")


def make_config(method: str, threshold: float | None = None, interval: int | None = None,
                order: int | None = None, **options):
    """CLI name → config (None for "none"). Knobs left None keep the method's defaults; a knob the
    method does not take is refused rather than silently ignored. `options` go to the config as is
    (e.g. max_reuse=3 for bwcache)."""
    if method not in METHODS:
        raise ValueError(f"unknown cache method {method!r}; choose one of {', '.join(METHODS)}")
    given = {k: v for k, v in (("threshold", threshold), ("interval", interval), ("order", order)) if v is not None}
    if method == "none":
        if given or options:
            raise ValueError(f"cache method 'none' takes no {', '.join([*given, *options])}")
        return None
    config_cls, _, knobs = REGISTRY[method]
    for knob in given:
        if knob not in knobs:
            raise ValueError(f"cache method {method!r} takes no {knob} (it takes: {', '.join(knobs)})")
    known = {f.name for f in fields(config_cls)}
    for name in options:
        if name not in known:
            raise ValueError(f"cache method {method!r} has no option {name!r} (options: {', '.join(sorted(known))})")
    return config_cls(**given, **options)


def split_acceleration(acceleration) -> tuple[object | None, BottleneckConfig | None]:
    """A pipeline's `acceleration` argument (None, a config, or a list of them) → (cache, bottleneck)."""
    items = [] if acceleration is None else list(acceleration) if isinstance(acceleration, (list, tuple)) \
        else [acceleration]
    cache = bottleneck = None
    for item in items:
        if item is None:
            continue
        if isinstance(item, BottleneckConfig):
            if bottleneck is not None:
                raise ValueError("acceleration: at most one bottleneck config")
            bottleneck = item
        elif isinstance(item, CACHE_CONFIGS):
            if cache is not None:
                raise ValueError(f"acceleration: at most one cache config, got {method_name(cache)} and "
                                 f"{method_name(item)}")
            cache = item
        else:
            raise ValueError(f"acceleration: unknown config {item!r}; expected a cache config "
                             f"({', '.join(c.__name__ for c in CACHE_CONFIGS)}) or BottleneckConfig")
    return cache, bottleneck
