"""ditkit samplers: training-free acceleration of the sampling loop.

Caching policies attach to a transformer as diffusers hooks and keep their state per cache
context (`cond`/`uncond`); pipelines reset it at every call:

    import samplers
    samplers.apply_acceleration(pipe.transformer, samplers.make_config("fbcache", threshold=0.05))
    image = pipe("a red circle").images[0]
    print(samplers.stats(pipe.transformer).skipped_fraction)
    samplers.remove_acceleration(pipe.transformer)

or for one call: `pipe(..., acceleration=FBCacheConfig(0.05))`, also with a `BottleneckConfig`
(a list: cache + bottleneck). Methods (`make_config` names): interval, bwcache, fbcache,
taylorseer, cg-taylor; bottleneck sampling replaces the loop (`sample_bottleneck`).
"""

from .attach import (AccelerationStats, accelerated, apply_acceleration, attached_config, cache_context,
                     remove_acceleration, restart, set_num_steps, stats)
from .bottleneck import BottleneckConfig, BottleneckStage, plan_stages, sample_bottleneck
from .bwcache import BWCacheConfig
from .cg_taylor import CGTaylorConfig
from .fbcache import FBCacheConfig
from .interval import IntervalCacheConfig
from .methods import METHODS, make_config, method_knobs, method_name, split_acceleration
from .resize import resize
from .taylor import Forecaster
from .taylorseer import TaylorSeerConfig

__all__ = [
    "AccelerationStats", "accelerated", "apply_acceleration", "attached_config", "cache_context",
    "remove_acceleration", "restart", "set_num_steps", "stats",
    "BottleneckConfig", "BottleneckStage", "plan_stages", "sample_bottleneck",
    "BWCacheConfig", "CGTaylorConfig", "FBCacheConfig", "IntervalCacheConfig", "TaylorSeerConfig",
    "METHODS", "make_config", "method_knobs", "method_name", "split_acceleration", "Forecaster", "resize",
]
