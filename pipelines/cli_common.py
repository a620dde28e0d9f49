"""What every ditkit CLI shares: model/sampling arguments, device and dtype parsing, error exit."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Callable

import torch

from .errors import UserError

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
          "float16": torch.float16, "fp16": torch.float16}


def add_sampling_args(parser: argparse.ArgumentParser, default_steps: int, default_guidance: float) -> None:
    parser.add_argument("--model", default=None, help="pipeline folder (default: the shipped model)")
    parser.add_argument("--seed", type=int, default=0, help="seed (batch: seed + prompt index, unless given)")
    parser.add_argument("--steps", type=int, default=default_steps, help="denoising steps")
    parser.add_argument("--guidance", type=float, default=default_guidance, help="classifier-free guidance scale")
    parser.add_argument("--scheduler", default=None, help="scheduler name (see pipelines.schedulers)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, mps …")
    parser.add_argument("--dtype", default="float32", help="float32 | bfloat16 | float16")


def parse_device(name: str) -> torch.device:
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise UserError(f"unknown device {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {name!r} requested but CUDA is not available here")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"device {name!r} requested but MPS is not available here")
    return device


def parse_dtype(name: str) -> torch.dtype:
    if name not in DTYPES:
        raise UserError(f"unknown dtype {name!r}; choose one of {', '.join(DTYPES)}")
    return DTYPES[name]


def check_sampling_args(args) -> None:
    """Cheap checks before any model is loaded, so bad input fails in milliseconds."""
    if args.steps <= 0:
        raise UserError(f"--steps must be a positive integer, got {args.steps}")
    if args.guidance < 0:
        raise UserError(f"--guidance must be >= 0, got {args.guidance}")
    if args.seed < 0:
        raise UserError(f"--seed must be >= 0, got {args.seed}")
    if args.scheduler is not None:
        from .schedulers import SCHEDULERS

        if args.scheduler not in SCHEDULERS:
            raise UserError(f"unknown scheduler {args.scheduler!r}; choose one of {', '.join(SCHEDULERS)}")


def quiet_libraries() -> None:
    """Library chatter (load reports, deprecation notes) hides the messages users need."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    logging.getLogger("diffusers").setLevel(logging.ERROR)
    logging.getLogger("transformers").setLevel(logging.ERROR)
    import transformers

    transformers.utils.logging.disable_progress_bar()


def run_cli(body: Callable[[], int]) -> int:
    """Runs a CLI body; a UserError becomes `error: …` on stderr and exit code 2."""
    try:
        return body()
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; finished outputs are kept and a re-run resumes", file=sys.stderr)
        return 130
