"""What every ditkit CLI shares: the argument parser, model/sampling/acceleration arguments,
device and dtype parsing, output-path checks, and the one-line error exit.

Every bad argument ends the same way: one `error: …` line on stderr and exit code 2, before any
model is loaded (argparse's own type errors included: no usage block).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Callable, NoReturn

import diffusers
import torch
import transformers

import samplers
from samplers import method_knobs, method_name
from samplers.calibrate import calibrate

from . import inputs
from .allocator import keep_freed_memory
from .batch import ensure_writable_dir, read_prompt_file
from .cores import CoreShare
from .errors import UserError
from .schedulers import SCHEDULERS


class ArgumentParser(argparse.ArgumentParser):
    """argparse with README's promise kept: a bad argument is one `error:` line and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")

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
    """Cheap checks before any model is loaded, so bad input fails in milliseconds; the limits are
    the app's (`pipelines.core.inputs`)."""
    inputs.steps(args.steps, "--steps")
    inputs.guidance(args.guidance, "--guidance")
    inputs.seed(args.seed, "--seed")
    for name in ("height", "width"):
        value = getattr(args, name, None)
        if value is not None and value <= 0:
            raise UserError(f"--{name} must be positive, got {value}")
        inputs.side(f"--{name}", value)
    if args.scheduler is not None:
        if args.scheduler not in SCHEDULERS:
            raise UserError(f"unknown scheduler {args.scheduler!r}; choose one of {', '.join(SCHEDULERS)}")


KNOB_FLAGS = {"threshold": ("--cache-threshold", float), "interval": ("--cache-interval", int),
              "order": ("--cache-order", int)}


def add_acceleration_args(parser: argparse.ArgumentParser) -> None:
    """--cache METHOD with its knobs, and --bottleneck (see `samplers`); read with acceleration_from_args."""
    group = parser.add_argument_group("acceleration (training-free; see samplers)")
    group.add_argument("--cache", default="none", metavar="METHOD",
                       help=f"block caching: {' | '.join(samplers.METHODS)} (default: none)")
    group.add_argument("--cache-threshold", default=None, metavar="X",
                       help="bwcache/fbcache: reuse while the relative L1 change stays below X; cg-taylor: the "
                            "gate on the first block's forecast error (0 never reuses)")
    group.add_argument("--cache-interval", default=None, metavar="N",
                       help="interval/taylorseer: a full step every N steps (1 computes every step)")
    group.add_argument("--cache-order", default=None, metavar="O",
                       help="taylorseer/cg-taylor: order of the finite-difference forecast")
    group.add_argument("--bottleneck", action="store_true",
                       help="bottleneck sampling (flow-matching models): 10%% of the steps at full size "
                            "(sigma 1 -> 0.9), 60%% at 5/8 size (0.92 -> 0.35), 30%% at full size (0.7 -> 0), "
                            "re-noising at each switch")
    group.add_argument("--quality-target", default=None, metavar="DB",
                       help="pick the cache yourself: the one estimated fastest whose output stays above DB "
                            "PSNR against uncached, on a calibration run of the first prompt (about 10 runs of "
                            "it); instead of --cache, combines with --bottleneck")


def acceleration_from_args(args) -> list | None:
    """--cache*/--bottleneck → a pipeline's `acceleration` argument (None when off); UserError on bad values.
    Cheap: call it before loading the model."""
    knobs = {}
    for knob, (flag, kind) in KNOB_FLAGS.items():
        raw = getattr(args, f"cache_{knob}")
        if raw is None:
            continue
        try:
            knobs[knob] = kind(raw)
        except ValueError:
            raise UserError(f"{flag} must be {'a number' if kind is float else 'an integer'}, got {raw!r}") from None
    names = {knob: flag for knob, (flag, _) in KNOB_FLAGS.items()}
    if args.cache not in samplers.METHODS:
        raise UserError(f"unknown --cache {args.cache!r}; choose one of {', '.join(samplers.METHODS)}")
    chosen = inputs.acceleration(args.cache, knobs, args.bottleneck, names, label="--cache")
    cache = next((c for c in chosen or [] if not isinstance(c, samplers.BottleneckConfig)), None)
    target = getattr(args, "quality_target", None)
    if target is not None:
        try:
            args.quality_target = float(target)
        except ValueError:
            raise UserError(f"--quality-target must be a number of dB, got {target!r}") from None
        if not args.quality_target > 0:
            raise UserError(f"--quality-target must be > 0 dB, got {args.quality_target:g}")
        if cache is not None:
            raise UserError("--quality-target picks the cache itself; drop --cache")
    return chosen


def acceleration_for_target(pipe, draw: Callable, target_psnr: float, acceleration: list | None) -> list | None:
    """`acceleration` (bottleneck or nothing) plus the cache `samplers.calibrate` picks for the target.

    draw(acceleration) → the calibration sample (N, …) in [0, 1]: the first prompt and its seed,
    with the run's other settings. Says on stderr what was picked and why.
    """
    base = list(acceleration or [])
    choice, trials = calibrate(lambda config: draw([c for c in (config, *base) if c is not None] or None),
                               pipe.transformer, target_psnr)
    if choice.config is None:
        best = max((t.psnr for t in trials), default=float("nan"))
        print(f"quality target {target_psnr:g} dB: no cache reaches it on the calibration run (best {best:.1f} dB "
              f"of {len(trials)} tried); running without one", file=sys.stderr)
        return base or None
    name = method_name(choice.config)
    knobs = " ".join(f"{k}={getattr(choice.config, k)}" for k in method_knobs(name))
    print(f"quality target {target_psnr:g} dB: {name} {knobs} ({choice.psnr:.1f} dB, "
          f"estimated at {choice.cost_fraction:.0%} of the uncached time; {len(trials)} tried)", file=sys.stderr)
    return [choice.config, *base]


def report_acceleration(pipe) -> None:
    """One line on what the cache skipped, so a user sees the speed-up they asked for."""
    transformer = getattr(pipe, "transformer", None)
    st = samplers.stats(transformer) if transformer is not None else None
    if st is not None and st.total:
        print(f"{st.method}: {st.summary()}", file=sys.stderr)


def quiet_libraries() -> None:
    """Library chatter (load reports, deprecation notes) hides the messages users need."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    logging.getLogger("diffusers").setLevel(logging.ERROR)
    logging.getLogger("transformers").setLevel(logging.ERROR)
    transformers.utils.logging.disable_progress_bar()
    diffusers.utils.logging.disable_progress_bar()  # "Loading pipeline components"; step bars stay


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


def run_prompts_cli(args, check_args: Callable, generate_all: Callable) -> int:
    """The main of a one-process generation CLI (t2i, t23d): check the arguments and read the
    prompt file before the model loads (bad input fails in milliseconds), then
    `generate_all(args, jobs, device, dtype, cores)` with this process's share of the cores;
    jobs is None for a single `--prompt`."""
    quiet_libraries()
    keep_freed_memory()

    def body() -> int:
        check_args(args)
        jobs = read_prompt_file(args.prompts, args.seed) if args.prompts else None
        if jobs is not None:
            ensure_writable_dir(args.out_dir)
        device, dtype = parse_device(args.device), parse_dtype(args.dtype)
        with CoreShare() as cores:
            cores.share()
            return generate_all(args, jobs, device, dtype, cores)

    return run_cli(body)


def figure_prompts(args, default: Callable[[], list[str]]) -> tuple[list[str], list[int]]:
    """The prompts and seeds of a figure CLI (sample grid, clip strip, shape strip): those of
    `--prompts FILE` when given, else `default()` with seeds `--seed`, `--seed` + 1, …"""
    if args.prompts:
        jobs = read_prompt_file(args.prompts, args.seed)
        return [j.prompt for j in jobs], [j.seed for j in jobs]
    prompts = default()
    return prompts, [args.seed + i for i in range(len(prompts))]


def batch_summary(made: int, already: int, failed: int, skipped: int, manifest_path, prefix: str = "",
                  seconds: float | None = None) -> int:
    """The last line of a batch on stderr; the exit code: 1 if any prompt failed, else 0."""
    others = f", {skipped} taken by another process" if skipped else ""
    took = f" in {seconds:.1f}s" if seconds is not None else ""
    print(f"{prefix}{made} generated, {already} already done, {failed} failed{others}{took} -> {manifest_path}",
          file=sys.stderr)
    return 1 if failed else 0


def check_new_output(path: str | Path, overwrite: bool, kind: str = "file") -> Path:
    """A single output's path, checked before anything is generated: its folder is writable, and
    nothing is there unless `overwrite` — and even then only the same kind of thing (a file for a
    file, a folder for a folder), so no user file or folder is ever replaced by surprise."""
    path = Path(path)
    if path.exists() or path.is_symlink():
        is_dir = path.is_dir()
        if kind == "file" and is_dir:
            raise UserError(f"--out {path} is an existing folder; give a file name")
        if kind == "folder" and not is_dir:
            raise UserError(f"--out {path} is an existing file; frames are written into a new folder")
        if not overwrite:
            raise UserError(f"--out {path} already exists; pass --overwrite to replace it")
    ensure_writable_dir(path.resolve().parent)
    return path
