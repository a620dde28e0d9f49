"""Benchmark the text-to-video pipeline: time and peak memory per clip, and the oracle's reading of
clips for held-out and random prompts — all measured in one run, with the model loaded once.

    python -m bench.t2v [--model PATH] [--steps 25] [--frames 16] [--prompts 32] [--repeats 3] [--compile]
                        [--cache fbcache [--cache-threshold 0.1]] [--bottleneck]
    python -m bench.t2v --quick      # a seconds-long smoke run on a tiny random model

Times are per clip (batch 1, classifier-free guidance: two forwards a step), median of
--repeats after a warm-up. Peak RSS is the process's during one clip, weights included (Linux
resets the peak before each clip; elsewhere it is the peak since start). Oracle scores: per
attribute over the prompts that state it, and joint (every attribute right), on
`world.video_eval_prompts(n, "heldout")` — combinations training never showed — and `"any"`.
With --compile the clip is also timed with the CLI's `--compile` (torch.compile in place), eager
and compiled runs alternating, and the compile's own cost (with its first clip) is printed.
With --cache/--bottleneck (the CLI's acceleration flags) the clip is also timed accelerated,
plain and accelerated runs alternating, and the oracle reads both: the accelerated rows are
marked with the method. Why: the time target is per clip at 25 steps, where a cache has fewer
steps to skip than in bench/cache.py's 50.
The shipped pipeline is image-first (the shipped image model draws each clip's first frame):
its time is in the clip's, and printed on its own; `--first-frame-model none` measures the video
model alone. "last shape" is the share of clips whose last frame still reads the prompt's shape
(the oracle's shape is the first frame's).
"""

from __future__ import annotations

import argparse
import time

import torch

import world
from bench.common import (acceleration_name, markdown_table, median, peak_rss_mb, reset_peak_rss, score_row, timed,
                          to_uint8, torch_threads)
from bench.tiny_models import tiny_t2v
from pipelines.core.allocator import keep_freed_memory
from pipelines.core.cli import acceleration_from_args, add_acceleration_args, quiet_libraries
from pipelines.core.compile import compile_transformer
from pipelines.core.errors import UserError
from pipelines.t2v.first_frame import add_first_frame_arg, configure_first_frame_model
from pipelines.t2v.loading import load_t2v_pipeline
from world.oracle import read_image
from world.video_oracle import VIDEO_ATTRIBUTES, video_prompt_attributes


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


def last_frame_shape(prompts: list[str], clips) -> float:
    """Share of clips whose last frame still reads the prompt's shape: the oracle reads shape from
    the first frame, which image-first generation gives the video model, so this is what says the
    video model kept the object's shape while moving it."""
    wanted = [video_prompt_attributes(p).get("shape") for p in prompts]
    kept = [read_image(clip[-1])["shape"] == want for want, clip in zip(wanted, clips) if want is not None]
    return sum(kept) / max(len(kept), 1)


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

    rss_loaded = peak_rss_mb()
    prompt = world.video_eval_prompts(1, "any", seed=3)[0]
    clips([prompt])  # warm-up
    times, peaks = [], []
    for _ in range(args.repeats):
        reset_peak_rss()
        times += timed(lambda: clips([prompt]), 1)
        peaks.append(peak_rss_mb())
    accel = args.acceleration
    label = " + ".join(acceleration_name(config) for config in accel) if accel else ""
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

    scores = {}
    for split in ("heldout", "any"):
        prompts = world.video_eval_prompts(args.prompts, split, seed=0)
        for name, acceleration in [(split, None)] + ([(f"{split}, {label}", accel)] if accel else []):
            made = []
            for i in range(0, len(prompts), args.batch):
                made.extend(to_uint8(clips(prompts[i:i + args.batch], seed=i, acceleration=acceleration)))
            scores[name] = world.score_video(prompts, made)
            scores[name]["last shape"] = last_frame_shape(prompts, made)

    h, w = pipe.native_size, pipe.native_size
    params = sum(p.numel() for p in pipe.transformer.parameters()) / 1e6
    print(f"model: {'tiny random (--quick)' if args.quick else args.model or 'shipped default'}  "
          f"{frames}x{w}x{h}  steps={args.steps} cfg={args.guidance}  threads={torch.get_num_threads()}  "
          f"params={params:.2f}M  first frame: {describe_first_frame(args, first_frames)}")
    print()
    t = median(times)
    print(markdown_table(["measure", "value"], [
        [f"1 clip, median of {args.repeats} (min)", f"{t:.2f} s ({min(times):.2f} s)"],
        *first_frame_rows,
        ["per frame / per step", f"{t / frames * 1000:.0f} ms / {t / args.steps * 1000:.0f} ms"],
        ["peak RSS: loaded / during a clip (max of repeats)", f"{rss_loaded:.0f} / {max(peaks):.0f} MB"],
        *accel_rows,
        *compiled_rows,
    ]))
    print()
    print(markdown_table(["prompts", "n", *VIDEO_ATTRIBUTES, "joint", "last shape"],
                         [[split, s["n"], *score_row(s, VIDEO_ATTRIBUTES), f"{s['last shape']:.2f}"]
                          for split, s in scores.items()]))


if __name__ == "__main__":
    main()
