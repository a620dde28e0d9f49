"""`--compile`: torch.compile a pipeline's transformer in place for a batch job.

Compiling costs about a minute once and saves a little on every clip
(`python -m bench.t2v --compile`, docs/BENCHMARKS.md): worth it over a long prompt file, not for
one clip. The compile happens on a one-step warm-up call, so its cost shows up front with a
message, and a machine that cannot compile (no C compiler, an unsupported op) falls back to eager
with the reason instead of failing mid-batch.
Caches and bottleneck sampling make per-step decisions in Python; they are refused with it.
"""

from __future__ import annotations

from typing import Callable

import torch

from .errors import UserError


def check_compile_args(args) -> None:
    """--compile with an acceleration option is a clear error before any model is loaded."""
    if getattr(args, "compile", False):
        clash = [flag for flag, on in (("--cache", getattr(args, "cache", "none") != "none"),
                                       ("--bottleneck", getattr(args, "bottleneck", False)),
                                       ("--quality-target", getattr(args, "quality_target", None) is not None)) if on]
        if clash:
            raise UserError(f"--compile runs the plain sampler; drop {' and '.join(clash)} (their per-step "
                            "decisions do not compile)")


def compile_transformer(transformer: torch.nn.Module, warm_up: Callable[[], object]) -> str | None:
    """Compile `transformer` in place and run warm_up() (which triggers the compile) → None, or
    why it could not be compiled (the transformer is then left eager)."""
    try:
        transformer.compile()
        warm_up()
        return None
    except Exception as err:  # any compile failure: the batch still runs, eagerly
        transformer._compiled_call_impl = None
        torch._dynamo.reset()
        first_line = (str(err).strip().splitlines() or [""])[0]
        return f"{type(err).__name__}: {first_line}"[:300]
