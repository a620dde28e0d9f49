"""Benchmark the text-to-video pipeline: time and peak memory per clip, and the oracle's reading of
clips for held-out and random prompts — all measured in one run, with the model loaded once.

    python -m bench.t2v [--model PATH] [--steps 25] [--frames 16] [--prompts 32] [--repeats 3] [--compile]
                        [--cache fbcache [--cache-threshold 0.1]] [--bottleneck]
    python -m bench.t2v --quick      # a seconds-long smoke run on a tiny random model

Times are per clip (batch 1, classifier-free guidance: two forwards a step), median of
--repeats after a warm-up. Peak RSS is the process's during one clip, weights included (Linux
resets the peak before each clip; elsewhere it is the peak since start). --quality-only skips
every timing and memory row (for a machine busy with other work, where times mean nothing).

Quality is read by the strict reader (`world.score_video`: the shape in every frame, held in at
least 90 % of them; size and position from the first frame; motion from the whole clip) on
`world.video_eval_prompts(n, "heldout")` — combinations training never showed — and `"any"`:
accuracy per attribute over the prompts that state it, joint (every attribute right), and the
fidelity figures over every frame of every clip: "shape frames" (the share of frames that show the
prompt's shape), mean template IoU, background noise (RMS RGB distance, 0-255), "clean frames"
(template IoU >= 0.85 and noise <= 6) and stray components per frame.
With --compile the clip is also timed with the CLI's `--compile` (torch.compile in place), eager
and compiled runs alternating, and the compile's own cost (with its first clip) is printed.
With --cache/--bottleneck (the CLI's acceleration flags) the clip is also timed accelerated,
plain and accelerated runs alternating, and the oracle reads both: the accelerated rows are
marked with the method. Why: the time target is per clip at 25 steps, where a cache has fewer
steps to skip than in bench/cache.py's 50.
The shipped pipeline is image-first (the shipped image model draws each clip's first frame):
its time is in the clip's, and printed on its own; `--first-frame-model none` measures the video
model alone. --grid-dir DIR writes what was scored as clip strips (`pipelines.t2v.clip_strip`),
one PNG per split, to look at before believing the numbers.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

import world
from bench.common import (acceleration_name, cells, fidelity_columns, headers, markdown_table, median, peak_rss_mb,
                          reset_peak_rss, score_row, timed, to_uint8, torch_threads)
from bench.tiny_models import tiny_t2v
from pipelines.core.allocator import keep_freed_memory
from pipelines.core.cli import acceleration_from_args, add_acceleration_args, quiet_libraries
from pipelines.core.compile import compile_transformer
from pipelines.core.errors import UserError
from pipelines.t2v.clip_strip import reading_note, reference_clip, strip_image
from pipelines.t2v.first_frame import add_first_frame_arg, configure_first_frame_model
from pipelines.t2v.loading import load_t2v_pipeline
from world.video_oracle import VIDEO_ATTRIBUTES


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="pipeline folder (default: the shipped model)")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--guidance", type=float, default=4.0)
    parser.add_argument("--frames", type=int, default=None, help="frames per clip (default: the model's, 16)")
    parser.add_argument("--prompts", type=int, default=32, help="oracle prompts per split")
    parser.add_argument("--batch", type=int, default=8, help="clips per call while scoring")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    add_first_frame_arg(parser)
    parser.add_argument("--compile", action="store_true", help="also time one clip compiled (as the CLI's --compile)")
    parser.add_argument("--quick", action="store_true", help="tiny random model, 3 steps, 2 prompts: a smoke run")
    parser.add_argument("--quality-only", action="store_true", help="the oracle table only: no timing or memory rows")
    parser.add_argument("--grid-dir", default=None, help="write the scored clips as strips, one PNG per split")
    add_acceleration_args(parser)
    args = parser.parse_args(argv)
    if args.quality_target is not None:
        parser.error("--quality-target is not benchmarked here: name the cache with --cache")
    try:
        args.acceleration = acceleration_from_args(args)
    except UserError as err:
        parser.error(str(err))
    if args.quick:
        args.steps, args.prompts, args.repeats, args.batch = 3, 2, 1, 2
        args.threads = args.threads or 1  # a smoke run should not crowd the machine
    return args


def load(args):
    if args.quick:
        return tiny_t2v()
    return load_t2v_pipeline(args.model)


def time_compiled(transformer, clip, repeats: int) -> list[list[str]]:
    """--compile: compile in place on one clip, then time eager and compiled clips alternately
    (the compiled call is switched off and on), so drift reaches both alike → table rows."""
    start = time.perf_counter()
    problem = compile_transformer(transformer, clip)
    if problem is not None:
        return [["--compile", f"could not compile: {problem}"]]
    first = time.perf_counter() - start
    compiled_call, eager, compiled = transformer._compiled_call_impl, [], []
    for _ in range(repeats):
        transformer._compiled_call_impl = None
        eager += timed(clip, 1)
        transformer._compiled_call_impl = compiled_call
        compiled += timed(clip, 1)
    transformer._compiled_call_impl = None
    e, c = median(eager), median(compiled)
    return [["--compile: compile + its first clip", f"{first:.1f} s"],
            [f"1 clip eager / compiled, alternating, median of {repeats}", f"{e:.2f} s / {c:.2f} s ({e / c:.2f}x)"]]


def time_accelerated(clip, accelerated, repeats: int, label: str) -> list[list[str]]:
    """Plain and accelerated clips alternately (drift reaches both alike) → a table row."""
    accelerated()  # warm-up: the first cached call allocates its stores
    plain, fast = [], []
    for _ in range(repeats):
        plain += timed(clip, 1)
        fast += timed(accelerated, 1)
    p, f = median(plain), median(fast)
    return [[f"1 clip plain / {label}, alternating, median of {repeats}", f"{p:.2f} s / {f:.2f} s ({p / f:.2f}x)"]]


def describe_first_frame(args, model) -> str:
    if model is None:
        return "video model"
    if args.first_frame_model == "auto":
        return "shipped image model"
    return f"image model {args.first_frame_model}"


def main(argv=None) -> None:
    args = parse_args(argv)
    with torch_threads(args.threads):
        run(args)


def run(args: argparse.Namespace) -> None:
    quiet_libraries()
    keep_freed_memory()

    pipe = load(args)
    configure_first_frame_model(pipe, args.first_frame_model)
    pipe.set_progress_bar_config(disable=True)
    first_frames = getattr(pipe, "first_frame_model", None)
    frames = args.frames or pipe.config.num_frames

    def clips(prompts: list[str], seed: int = 0, acceleration=None):
        """(B, F, H, W, 3) floats; prompt i gets seed + i whatever the batch."""
        generators = [torch.Generator().manual_seed(seed + i) for i in range(len(prompts))]
        return pipe(prompts, num_frames=frames, num_inference_steps=args.steps, guidance_scale=args.guidance,
                    generator=generators, output_type="np", acceleration=acceleration).frames

    prompt = world.video_eval_prompts(1, "any", seed=3)[0]
    accel = args.acceleration
    label = " + ".join(acceleration_name(config) for config in accel) if accel else ""
    timing = None if args.quality_only else time_rows(args, pipe, clips, prompt, first_frames, frames, accel, label)

    scores = {}
    for split in ("heldout", "any"):
        prompts = world.video_eval_prompts(args.prompts, split, seed=0)
        for name, acceleration in [(split, None)] + ([(f"{split}, {label}", accel)] if accel else []):
            made = []
            for i in range(0, len(prompts), args.batch):
                made.extend(to_uint8(clips(prompts[i:i + args.batch], seed=i, acceleration=acceleration)))
            scores[name] = world.score_video(prompts, made)
            if args.grid_dir:
                write_strip(Path(args.grid_dir) / f"t2v_{name.replace(', ', '_').replace(' ', '-')}.png", prompts, made)

    h, w = pipe.native_size, pipe.native_size
    params = sum(p.numel() for p in pipe.transformer.parameters()) / 1e6
    print(f"model: {'tiny random (--quick)' if args.quick else args.model or 'shipped default'}  "
          f"{frames}x{w}x{h}  steps={args.steps} cfg={args.guidance}  threads={torch.get_num_threads()}  "
          f"params={params:.2f}M  first frame: {describe_first_frame(args, first_frames)}")
    print()
    if timing is not None:
        print(markdown_table(["measure", "value"], timing))
        print()
    columns = fidelity_columns(video=True)
    print(markdown_table(["prompts", "n", *VIDEO_ATTRIBUTES, "joint", *headers(columns)],
                         [[split, s["n"], *score_row(s, VIDEO_ATTRIBUTES), *cells(s, columns)]
                          for split, s in scores.items()]))


def time_rows(args, pipe, clips, prompt, first_frames, frames, accel, label) -> list[list[str]]:
    """The timing and memory rows: one clip plain (and accelerated / compiled when asked), the
    first frame's share, peak RSS."""
    rss_loaded = peak_rss_mb()
    clips([prompt])  # warm-up
    times, peaks = [], []
    for _ in range(args.repeats):
        reset_peak_rss()
        times += timed(lambda: clips([prompt]), 1)
        peaks.append(peak_rss_mb())
    accel_rows = (time_accelerated(lambda: clips([prompt]), lambda: clips([prompt], acceleration=accel),
                                   args.repeats, label) if accel else [])
    compiled_rows = time_compiled(pipe.transformer, lambda: clips([prompt]), args.repeats) if args.compile else []
    first_frame_rows = []
    if first_frames is not None:  # what the image model's frame costs of a clip
        def draw():
            first_frames.draw([prompt], None, pipe.native_size, pipe.native_size, args.steps, args.guidance,
                              torch.Generator().manual_seed(0))
        first_frame_rows = [[f"of which the first frame (image model), median of {args.repeats}",
                             f"{median(timed(draw, args.repeats)):.2f} s"]]
    t = median(times)
    return [
        [f"1 clip, median of {args.repeats} (min)", f"{t:.2f} s ({min(times):.2f} s)"],
        *first_frame_rows,
        ["per frame / per step", f"{t / frames * 1000:.0f} ms / {t / args.steps * 1000:.0f} ms"],
        ["peak RSS: loaded / during a clip (max of repeats)", f"{rss_loaded:.0f} / {max(peaks):.0f} MB"],
        *accel_rows,
        *compiled_rows,
    ]


def write_strip(path: Path, prompts: list[str], clips) -> None:
    """The scored clips as a strip: each with its prompt, the strict reading and the reference."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t, h = clips[0].shape[:2]
    strip_image(prompts, list(clips), [reference_clip(p, t, h) for p in prompts],
                [reading_note(p, c) for p, c in zip(prompts, clips)]).save(path)

if __name__ == "__main__":
    main()
