"""`python -m pipelines.t2i`: one image (`--prompt … --out x.png`) or a resumable batch
(`--prompts file --out-dir DIR`) from the shipped model or any supported pipeline folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .batch import Manifest, atomic_write, ensure_writable_dir, output_name, read_prompt_file
from .allocator import keep_freed_memory
from .cli_common import (acceleration_for_target, acceleration_from_args, add_acceleration_args, add_sampling_args,
                         check_sampling_args, parse_device, parse_dtype, quiet_libraries, report_acceleration, run_cli)
from .errors import UserError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pipelines.t2i", description=__doc__)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--prompt", help="one prompt (with --out)")
    src.add_argument("--prompts", help="prompt file: one per line, or .jsonl with 'prompt' and optional 'seed'")
    p.add_argument("--out", help="output image for --prompt (.png/.jpg/.webp)")
    p.add_argument("--out-dir", help="output folder for --prompts (gets manifest.jsonl)")
    p.add_argument("--negative-prompt", default=None)
    p.add_argument("--height", type=int, default=None)
    p.add_argument("--width", type=int, default=None)
    add_sampling_args(p, default_steps=25, default_guidance=4.0)
    add_acceleration_args(p)
    return p


def check_args(args) -> None:
    check_sampling_args(args)
    args.acceleration = acceleration_from_args(args)
    if args.prompt is not None:
        if not args.prompt.strip():
            raise UserError("empty prompt: --prompt needs some text")
        if not args.out:
            raise UserError("--prompt needs --out FILE.png")
        if Path(args.out).suffix.lower() not in IMAGE_SUFFIXES:
            raise UserError(f"--out {args.out!r} must end in one of {', '.join(sorted(IMAGE_SUFFIXES))}")
        ensure_writable_dir(Path(args.out).resolve().parent)
    else:
        if not args.out_dir:
            raise UserError("--prompts needs --out-dir DIR")
    for name in ("height", "width"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            raise UserError(f"--{name} must be positive, got {value}")


def sample(pipe, prompt: str, seed: int, args, acceleration, output_type: str = "pil"):
    generator = torch.Generator(device="cpu").manual_seed(seed)
    return pipe(prompt, negative_prompt=args.negative_prompt, height=args.height, width=args.width,
                num_inference_steps=args.steps, guidance_scale=args.guidance, generator=generator,
                output_type=output_type, acceleration=acceleration).images


def generate(pipe, prompt: str, seed: int, args, device):
    return sample(pipe, prompt, seed, args, getattr(args, "acceleration", None))[0]


def choose_cache(pipe, args, jobs) -> None:
    """--quality-target: calibrate on the first prompt (and its seed), then use the pick for all."""
    prompt, seed = (args.prompt, args.seed) if jobs is None else (jobs[0].prompt, jobs[0].seed)
    args.acceleration = acceleration_for_target(
        pipe, lambda acceleration: sample(pipe, prompt, seed, args, acceleration, "pt"), args.quality_target,
        args.acceleration)


def run_batch(pipe, jobs, args, device) -> int:
    out_dir = ensure_writable_dir(args.out_dir)
    manifest = Manifest(out_dir)
    done = manifest.done_keys()
    todo = [j for j in jobs if j.key not in done]
    pipe.set_progress_bar_config(leave=False, desc="steps")
    failed = 0
    for job in tqdm(todo, desc="prompts", unit="img"):
        name = output_name(job, ".png")
        try:
            image = generate(pipe, job.prompt, job.seed, args, device)
        except UserError as err:  # a bad prompt is recorded and the batch goes on
            manifest.record_failure(job, str(err))
            failed += 1
            continue
        atomic_write(out_dir / name, lambda tmp: image.save(tmp, format="PNG"))
        manifest.record(job, name)
    print(f"{len(todo) - failed} generated, {len(jobs) - len(todo)} already done, {failed} failed "
          f"-> {manifest.path}", file=sys.stderr)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet_libraries()
    keep_freed_memory()

    def body() -> int:
        check_args(args)
        jobs = read_prompt_file(args.prompts, args.seed) if args.prompts else None  # fail fast, before loading
        device, dtype = parse_device(args.device), parse_dtype(args.dtype)
        from .loading import load_t2i_pipeline
        from .schedulers import make_scheduler

        pipe = load_t2i_pipeline(args.model, device, dtype)
        if args.scheduler:
            pipe.scheduler = make_scheduler(args.scheduler, pipe.scheduler)
        height = args.height or pipe.native_size
        width = args.width or pipe.native_size
        pipe.check_inputs(["x"], None, height, width, args.steps, args.guidance)
        if args.quality_target is not None and (jobs is None or jobs):
            choose_cache(pipe, args, jobs)
        if args.prompts:
            return run_batch(pipe, jobs, args, device)
        image = generate(pipe, args.prompt, args.seed, args, device)
        atomic_write(Path(args.out), lambda tmp: image.save(tmp, format=Path(args.out).suffix.lstrip(".").upper()
                                                            .replace("JPG", "JPEG")))
        report_acceleration(pipe)
        print(f"wrote {args.out}", file=sys.stderr)
        return 0

    return run_cli(body)


if __name__ == "__main__":
    raise SystemExit(main())
