"""`python -m pipelines.t2i`: one image (`--prompt … --out x.png`) or a resumable batch
(`--prompts file --out-dir DIR`) from the shipped model or any supported pipeline folder."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..core.atomic import atomic_write, remove_partial_writes
from ..core.batch import Claims, Manifest, ensure_writable_dir, output_name
from ..core.cli import (ArgumentParser, acceleration_for_target, acceleration_from_args, add_acceleration_args,
                        add_sampling_args, batch_summary, check_new_output, check_sampling_args, report_acceleration,
                        run_prompts_cli)
from ..core.cores import CoreShare
from ..core.errors import UserError
from ..core.schedulers import make_scheduler
from .loading import load_t2i_pipeline

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp"}


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m pipelines.t2i", description=__doc__)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--prompt", help="one prompt (with --out)")
    src.add_argument("--prompts", help="prompt file: one per line, or .jsonl with 'prompt' and optional 'seed'")
    p.add_argument("--out", help="output image for --prompt (.png/.jpg/.webp)")
    p.add_argument("--out-dir", help="output folder for --prompts (gets manifest.jsonl)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
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
        check_new_output(args.out, args.overwrite)
    elif not args.out_dir:
        raise UserError("--prompts needs --out-dir DIR")


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


def run_batch(pipe, jobs, args, device, cores: CoreShare) -> int:
    """Every prompt not yet in the manifest, each claimed first: processes sharing --out-dir split
    the work and never make an image twice."""
    out_dir = ensure_writable_dir(args.out_dir)
    manifest, claims = Manifest(out_dir), Claims(out_dir)
    done = manifest.done_keys()
    todo = [j for j in jobs if j.key not in done]
    pipe.set_progress_bar_config(leave=False, desc="steps")
    made = failed = skipped = 0
    for job in tqdm(todo, desc="prompts", unit="img"):
        name = output_name(job, ".png")
        with claims.claim(name) as mine:
            # another process has it, or finished it since we read the manifest (its file is then there)
            if not mine or ((out_dir / name).exists() and job.key in manifest.done_keys()):
                skipped += 1
                continue
            remove_partial_writes(out_dir, [name])  # what a killed run left of this image
            cores.share()
            try:
                image = generate(pipe, job.prompt, job.seed, args, device)
            except UserError as err:  # a bad prompt is recorded and the batch goes on
                manifest.record_failure(job, str(err))
                failed += 1
                continue
            atomic_write(out_dir / name, lambda tmp: image.save(tmp, format="PNG"))
            manifest.record(job, name)
            made += 1
    return batch_summary(made, len(jobs) - len(todo), failed, skipped, manifest.path)


def main(argv: list[str] | None = None) -> int:
    return run_prompts_cli(build_parser().parse_args(argv), check_args, generate_all)


def generate_all(args, jobs, device, dtype, cores: CoreShare) -> int:
    """The model loaded once, then the batch or the single image."""
    pipe = load_t2i_pipeline(args.model, device, dtype)
    if args.scheduler:
        pipe.scheduler = make_scheduler(args.scheduler, pipe.scheduler)
    height = args.height or pipe.native_size
    width = args.width or pipe.native_size
    pipe.check_inputs(["x"], None, height, width, args.steps, args.guidance)
    if args.quality_target is not None and (jobs is None or jobs):
        choose_cache(pipe, args, jobs)
    if args.prompts:
        return run_batch(pipe, jobs, args, device, cores)
    image = generate(pipe, args.prompt, args.seed, args, device)
    out = Path(args.out)
    remove_partial_writes(out.parent, [out.name])
    atomic_write(out, lambda tmp: image.save(tmp, format=out.suffix.lstrip(".").upper().replace("JPG", "JPEG")))
    report_acceleration(pipe)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0
