"""`python -m pipelines.t2v`: one clip (`--prompt … --out clip.mp4`) or a resumable batch
(`--prompts file --out-dir DIR`), from the shipped model or any supported pipeline folder.

    python -m pipelines.t2v --prompt "a red circle moving right" --out clip.mp4
    python -m pipelines.t2v --prompts prompts.jsonl --out-dir clips/ --format gif
    python -m pipelines.t2v --prompt "a red circle moving right" --out clip.mp4 --cache fbcache --bottleneck
    accelerate launch --multi_gpu --num_processes 2 -m pipelines.t2v --prompts prompts.txt --out-dir clips/

A batch under `accelerate launch` or torchrun is split by prompt index: rank r makes the clips
i with i % world == r and records them in its own manifest part; a re-run with any number of
processes skips every clip already recorded. `--multi_gpu` starts the processes through torchrun
and needs no GPU (`--cpu` alone starts only one). Several machines: the same command on each,
with `--num_machines M --machine_rank R --main_process_ip HOST`, and one shared --out-dir.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from ..core import inputs
from ..core.allocator import keep_freed_memory
from ..core.atomic import remove_partial_writes
from ..core.batch import Claims, Job, Manifest, ensure_writable_dir, output_name, process_rank, read_prompt_file, shard
from ..core.cli import (ArgumentParser, acceleration_for_target, acceleration_from_args, add_acceleration_args,
                        add_sampling_args, batch_summary, check_new_output, check_sampling_args, parse_device, parse_dtype,
                        quiet_libraries, report_acceleration, run_cli)
from ..core.compile import check_compile_args, compile_transformer
from ..core.cores import CoreShare
from ..core.errors import UserError
from ..core.model_index import read_model_index
from ..core.schedulers import make_scheduler
from ..core.video_io import FORMATS, read_clip, read_keyframes, write_clip
from .first_frame import FIRST_FRAME_CHOICES, add_first_frame_arg, configure_first_frame_model
from .loading import load_t2v_pipeline

SUFFIX = {"mp4": ".mp4", "gif": ".gif", "frames": ""}


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m pipelines.t2v", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--prompt", help="one prompt (with --out)")
    src.add_argument("--prompts", help="prompt file: one per line, or .jsonl with 'prompt' and optional "
                                       "'seed', 'num_frames'")
    p.add_argument("--out", help="output for --prompt: clip.mp4, clip.gif, or a folder (--format frames)")
    p.add_argument("--out-dir", help="output folder for --prompts (gets manifest.jsonl)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out clip (or frames folder)")
    p.add_argument("--format", default=None, help="mp4 | gif | frames (default: from --out, else mp4)")
    p.add_argument("--fps", type=float, default=None, help="frames per second (default: the model's)")
    p.add_argument("--num-frames", type=int, default=None, help="frames per clip (default: the model's)")
    p.add_argument("--negative-prompt", default=None)
    p.add_argument("--height", type=int, default=None)
    p.add_argument("--width", type=int, default=None)
    p.add_argument("--init-frames", default=None,
                   help="continue a clip: a video, a GIF, an image or a folder of frames (become frames 0..k-1)")
    p.add_argument("--keyframes", default=None,
                   help="interpolate: '0=a.png,15=b.png' or a folder of images named by frame index")
    add_first_frame_arg(p)
    add_sampling_args(p, default_steps=25, default_guidance=4.0)
    add_acceleration_args(p)
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the transformer first (about a minute once, then each clip faster: see docs/BENCHMARKS.md) "
                        "on CPU): for long batch jobs; not with --cache, --bottleneck or --quality-target")
    return p


# ---------------------------------------------------------------- checks before any model is loaded

def output_format(args) -> str:
    """--format, or for a single clip what --out's suffix says (no suffix: a folder of frames)."""
    if args.format is not None and args.format not in FORMATS:
        raise UserError(f"unknown format {args.format!r}; choose one of {', '.join(FORMATS)}")
    if args.prompt is None:
        return args.format or "mp4"
    suffix = Path(args.out).suffix.lower()
    implied = {".mp4": "mp4", ".gif": "gif", "": "frames"}.get(suffix)
    if args.format is None and implied is None:
        raise UserError(f"--out {args.out!r}: cannot tell the format from {suffix!r}; "
                        "use .mp4, .gif, or a folder name with --format frames")
    fmt = args.format or implied
    if implied != fmt and not (fmt == "frames" and implied is None):
        raise UserError(f"--out {args.out!r} does not fit --format {fmt} (expected "
                        f"{SUFFIX[fmt] or 'a folder name without suffix'})")
    return fmt


def check_args(args) -> str:
    """Cheap checks (milliseconds, no model); returns the output format."""
    check_sampling_args(args)
    args.acceleration = acceleration_from_args(args)
    check_compile_args(args)
    if args.prompt is not None:
        if not args.prompt.strip():
            raise UserError("empty prompt: --prompt needs some text")
        if not args.out:
            raise UserError("--prompt needs --out FILE (.mp4, .gif, or a folder with --format frames)")
    elif not args.out_dir:
        raise UserError("--prompts needs --out-dir DIR")
    fmt = output_format(args)
    inputs.fps(args.fps, "--fps")
    if args.num_frames is not None and args.num_frames <= 0:
        raise UserError(f"--num-frames must be a positive integer, got {args.num_frames}")
    inputs.frames(args.num_frames, "--num-frames")
    if args.first_frame_model not in FIRST_FRAME_CHOICES:
        read_model_index(Path(args.first_frame_model))  # a missing or non-pipeline folder fails before loading
        if args.init_frames or args.keyframes:
            raise UserError("--first-frame-model draws the first frame, so it does not go with --init-frames "
                            "or --keyframes")
    if args.prompt is not None:
        check_new_output(args.out, args.overwrite, "folder" if fmt == "frames" else "file")
    return fmt


def job_frames(job: Job, default: int | None) -> int | None:
    """A prompt line's own `num_frames` (jsonl), else the CLI's; a bad value is that prompt's error."""
    value = dict(job.extra).get("num_frames", default)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
        raise UserError(f"num_frames must be a positive integer, got {value!r}")
    return value


# ---------------------------------------------------------------- generation

class ClipMaker:
    """The settings every clip of a run shares; `clip(prompt, seed, num_frames)` → (F, H, W, 3) in [0, 1]."""

    def __init__(self, pipe, args, init_frames, keyframes):
        self.pipe, self.args = pipe, args
        self.init_frames, self.keyframes = init_frames, keyframes

    def kwargs(self, num_frames: int | None) -> dict:
        a = self.args
        return dict(negative_prompt=a.negative_prompt, num_frames=num_frames, height=a.height, width=a.width,
                    num_inference_steps=a.steps, guidance_scale=a.guidance, init_frames=self.init_frames,
                    keyframes=self.keyframes, acceleration=getattr(a, "acceleration", None))

    def check(self, num_frames: int | None) -> None:
        """Checks the shared settings against the model before a batch starts (UserError if unfit)."""
        self.pipe.check_inputs("x", **self.kwargs(num_frames))

    def clip(self, prompt: str, seed: int, num_frames: int | None):
        generator = torch.Generator(device="cpu").manual_seed(seed)
        return self.pipe(prompt, generator=generator, output_type="np", **self.kwargs(num_frames)).frames[0]

    def compile(self, num_frames: int | None) -> None:
        """--compile: compile on a one-step clip of the run's size, saying so (or why not)."""
        print("compiling the transformer (once per run, about a minute on CPU) ...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        kwargs = {**self.kwargs(num_frames), "num_inference_steps": 1}
        problem = compile_transformer(self.pipe.transformer, lambda: self.pipe(
            "warm-up", generator=torch.Generator(device="cpu").manual_seed(0), output_type="np", **kwargs))
        if problem is None:
            print(f"compiled in {time.perf_counter() - start:.0f} s", file=sys.stderr)
        else:
            print(f"--compile: could not compile ({problem}); running uncompiled", file=sys.stderr)

    def choose_cache(self, prompt: str, seed: int, num_frames: int | None) -> None:
        """--quality-target: calibrate on this prompt and seed, then use the pick for every clip."""
        def draw(acceleration):
            generator = torch.Generator(device="cpu").manual_seed(seed)
            kwargs = {**self.kwargs(num_frames), "acceleration": acceleration}
            return self.pipe(prompt, generator=generator, output_type="pt", **kwargs).frames

        self.args.acceleration = acceleration_for_target(self.pipe, draw, self.args.quality_target,
                                                         self.args.acceleration)


def run_single(gen: ClipMaker, args, fmt: str, fps: float) -> int:
    gen.pipe.set_progress_bar_config(leave=False, desc="steps")
    frames = gen.clip(args.prompt, args.seed, args.num_frames)
    out = Path(args.out)
    remove_partial_writes(out.parent, [out.name])
    write_clip(out, frames, fps, fmt)
    report_acceleration(gen.pipe)
    f, h, w, _ = frames.shape
    print(f"wrote {out} ({f} frames, {w}x{h}, {fps:g} fps)", file=sys.stderr)
    return 0


def run_batch(gen: ClipMaker, jobs: list[Job], args, fmt: str, fps: float, rank: int, world: int,
              cores: CoreShare) -> int:
    """This rank's share of the prompts not yet in the manifest, each claimed first: processes
    sharing --out-dir (launched together or started by hand) never make a clip twice."""
    start = time.monotonic()
    out_dir = ensure_writable_dir(args.out_dir)
    manifest, claims = Manifest(out_dir, part=rank if world > 1 else None), Claims(out_dir)
    mine = shard(jobs, rank, world)
    done = manifest.done_keys(format=fmt)
    todo = [j for j in mine if j.key not in done]
    gen.pipe.set_progress_bar_config(leave=False, desc="steps", disable=rank != 0, position=world)
    made = failed = skipped = 0
    label = "clips" if world == 1 else f"clips [rank {rank}/{world}]"
    for job in tqdm(todo, desc=label, unit="clip", position=rank):
        name = output_name(job, SUFFIX[fmt])
        with claims.claim(name) as claimed:
            # another process has it, or finished it since we read the manifest (its output is then there)
            if not claimed or ((out_dir / name).exists() and job.key in manifest.done_keys(format=fmt)):
                skipped += 1
                continue
            remove_partial_writes(out_dir, [name])  # what a killed run left of this clip
            cores.share()
            try:
                frames = gen.clip(job.prompt, job.seed, job_frames(job, args.num_frames))
            except UserError as err:  # a bad prompt line is recorded and the batch goes on
                manifest.record_failure(job, str(err))
                failed += 1
                continue
            write_clip(out_dir / name, frames, fps, fmt)
            manifest.record(job, name, num_frames=int(frames.shape[0]), format=fmt, fps=fps)
            made += 1
    where = "" if world == 1 else f"rank {rank}/{world}: "
    return batch_summary(made, len(mine) - len(todo), failed, skipped, manifest.path, where,
                         time.monotonic() - start)


def report_all(out_dir: Path, jobs: list[Job], fmt: str, world: int) -> int:
    """Rank 0's summary over every process, once all have finished; 1 if any clip failed.

    Only rank 0 reports failure through its exit code: a launcher (torchrun) stops every process
    as soon as one exits non-zero, so the others must not, even after the barrier.
    """
    done = Manifest(out_dir).done_keys(format=fmt)
    failed = sum(job.key not in done for job in jobs)
    print(f"all {world} processes: {len(jobs) - failed} of {len(jobs)} clips done, {failed} failed "
          f"-> {out_dir}/manifest*.jsonl", file=sys.stderr)
    return 1 if failed else 0


# ---------------------------------------------------------------- main

def wait_for_other_processes(rank: int, world: int) -> bool:
    """The closing barrier of a multi-process batch, so rank 0's summary sees every shard.

    The launcher (accelerate launch, torchrun) sets MASTER_ADDR/PORT; a gloo group is joined
    only here, and waits as long as the slowest shard takes (a resumed run can leave the shards
    very uneven). False when there is no group to join: each process then reports alone.
    """
    try:
        if not dist.is_initialized():
            dist.init_process_group("gloo", rank=rank, world_size=world, timeout=timedelta(days=7))
        dist.barrier()
        dist.destroy_process_group()
        return True
    except (RuntimeError, ValueError) as err:
        print(f"did not wait for the other processes: {err}", file=sys.stderr)
        return False


def warn_if_alone(world: int) -> None:
    """`accelerate launch --cpu --num_processes N` starts ONE process unless given an MPI hostfile;
    say so rather than let a user believe the batch is split."""
    if world == 1 and os.environ.get("ACCELERATE_USE_CPU", "").lower() == "true" and os.environ.get("MASTER_ADDR"):
        print("note: this is the only process: `accelerate launch --cpu` starts one unless given "
              "--mpirun_hostfile; for N CPU processes use `accelerate launch --multi_gpu --num_processes N` "
              "(no GPU needed) or `torchrun --nproc_per_node N`", file=sys.stderr)


def pick_device(name: str, world: int) -> torch.device:
    """`cuda` in a multi-process run means each process's own GPU (cuda:LOCAL_RANK)."""
    if name == "cuda" and world > 1:
        name = f"cuda:{os.environ.get('LOCAL_RANK', 0)}"
    return parse_device(name)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet_libraries()
    keep_freed_memory()

    def body() -> int:
        fmt = check_args(args)
        # read every input before loading the model, so bad input fails in milliseconds
        jobs = read_prompt_file(args.prompts, args.seed, extra_keys=("num_frames",)) if args.prompts else None
        init_frames = read_clip(args.init_frames) if args.init_frames else None
        keyframes = read_keyframes(args.keyframes) if args.keyframes else None
        rank, world = 0, 1
        if jobs is not None:
            ensure_writable_dir(args.out_dir)
            rank, world = process_rank()
            warn_if_alone(world)
        device, dtype = pick_device(args.device, world), parse_dtype(args.dtype)
        with CoreShare() as cores:
            cores.share()
            return generate_all(args, fmt, jobs, init_frames, keyframes, rank, world, device, dtype, cores)

    return run_cli(body)


def generate_all(args, fmt, jobs, init_frames, keyframes, rank, world, device, dtype, cores: CoreShare) -> int:
    """The model loaded once, then the batch (and rank 0's summary) or the single clip."""
    pipe = load_t2v_pipeline(args.model, device, dtype)
    configure_first_frame_model(pipe, args.first_frame_model, device, dtype)
    if args.scheduler:
        pipe.scheduler = make_scheduler(args.scheduler, pipe.scheduler)
    fps = args.fps or pipe.config.fps
    gen = ClipMaker(pipe, args, init_frames, keyframes)
    gen.check(args.num_frames)
    if args.compile:
        gen.compile(args.num_frames if jobs is None or not jobs else job_frames(jobs[0], args.num_frames))
    if args.quality_target is not None and (jobs is None or jobs):
        first = (args.prompt, args.seed, args.num_frames) if jobs is None else \
            (jobs[0].prompt, jobs[0].seed, job_frames(jobs[0], args.num_frames))
        gen.choose_cache(*first)
    if jobs is None:
        return run_single(gen, args, fmt, fps)
    code = run_batch(gen, jobs, args, fmt, fps, rank, world, cores)
    if world > 1 and wait_for_other_processes(rank, world):
        return report_all(Path(args.out_dir), jobs, fmt, world) if rank == 0 else 0
    return code
