"""Benchmark training-free acceleration side by side on the shipped text-to-image and text-to-video
models: every ditkit method at a few strengths, bottleneck sampling, and peers attached to the
same transformer (diffusers' FirstBlockCache, TaylorSeerCache and calibrated MagCache; cache-dit's
DBCache with its TaylorSeer calibrator) — one run, the same prompts and seeds for every row.

    python -m bench.cache [--only t2i|t2v] [--t2i-model PATH] [--t2v-model PATH] [--steps 50]
                          [--prompts 16] [--clips 8] [--repeats 2] [--methods cg-taylor,...]
                          [--no-peers] [--out-dir bench/results]
    python -m bench.cache --quick      # a seconds-long smoke run on tiny random models
    python -m bench.cache --only t2i --prompts 16 --quality-only   # quality columns only (a busy machine)

Per row: wall time over all prompts (the fastest of --repeats passes, each pass running every row in
turn, so drift on a shared machine reaches all rows alike); speed-up against the uncached
row of this run; the fraction of block evaluations skipped (ours: `samplers.stats`; peers and
bottleneck: blocks whose MLP did not run, counted by hooks); PSNR and SSIM against the uncached
output of the same seed (clips: PSNR per clip, SSIM averaged over frames); beside them the strict
reader's (`world.score` / `world.score_video`) joint accuracy, share of clean samples (template IoU
>= 0.85 and background noise <= 6; clips: the share of clean frames, and the share of frames that
show the prompt's shape) and mean template IoU; then its accuracy per attribute (motion too for
clips). "bottleneck + best" pairs bottleneck sampling with
the fastest of our caches whose PSNR stays above --psnr-floor. The uncached row runs again at the
end: its time against the first shows how steady the machine was, and speed-ups are taken against
the faster of the two. Writes a table per model to stdout, and to --out-dir a PNG of speed-up
against PSNR with the Pareto front per model and `cache.json` with every row. A peer that cannot
attach to our pipeline is listed with the reason, not fatal.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

import samplers
import world
from bench.cache_methods import (BlockCounter, Setting, bottleneck_settings, cache_dit_settings, diffusers_settings,
                                 our_cache_settings)
from bench.common import cells, headers, markdown_table, quality_columns, to_uint8, torch_threads
from bench.pareto import matched_speedup, pareto_front, plot
from bench.tiny_models import tiny_t2i, tiny_t2v
from pipelines.core.allocator import keep_freed_memory
from pipelines.core.cli import quiet_libraries
from pipelines.t2i import load_t2i_pipeline
from pipelines.t2v.first_frame import add_first_frame_arg, configure_first_frame_model
from pipelines.t2v.loading import load_t2v_pipeline
from samplers.fidelity import PSNR_IDENTICAL, psnr, ssim
from world.oracle import ATTRIBUTES
from world.video_oracle import VIDEO_ATTRIBUTES


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=("t2i", "t2v"), default=None, help="benchmark one model only")
    parser.add_argument("--t2i-model", default=None, help="text-to-image pipeline folder (default: shipped)")
    parser.add_argument("--t2v-model", default=None, help="text-to-video pipeline folder (default: shipped)")
    add_first_frame_arg(parser)  # t2v only; the caches act on the video model either way
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--guidance", type=float, default=4.0)
    parser.add_argument("--prompts", type=int, default=16, help="text-to-image prompts")
    parser.add_argument("--clips", type=int, default=8, help="text-to-video prompts")
    parser.add_argument("--frames", type=int, default=None, help="frames per clip (default: the model's)")
    parser.add_argument("--split", choices=("any", "heldout"), default="any", help="which prompts (world eval)")
    parser.add_argument("--batch", type=int, default=8, help="samples per pipeline call")
    parser.add_argument("--repeats", type=int, default=2,
                        help="timing passes over all rows, each row's fastest kept (samples: the first pass)")
    parser.add_argument("--methods", default=None,
                        help="comma-separated: only these of ours (e.g. cg-taylor,bwcache; 'bottleneck' alone: "
                             "no caches, the bottleneck row only); peers still run unless --no-peers")
    parser.add_argument("--psnr-floor", type=float, default=30.0, help="dB a cache must keep to pair with bottleneck")
    parser.add_argument("--no-peers", action="store_true", help="ditkit's methods only")
    parser.add_argument("--out-dir", default=None, help="plots and JSON (default bench/results; --quick: a temp dir)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--quality-only", action="store_true",
                        help="one pass, and the table leaves out time and speed-up (and the speed-up front and "
                             "matched comparison): for a machine busy with other work, where times mean nothing")
    parser.add_argument("--quick", action="store_true", help="tiny random models, 6 steps, 2 prompts, one "
                                                             "strength per method: a smoke run")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    if args.methods is not None:
        args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
        choices = [m for m in samplers.METHODS if m != "none"] + ["bottleneck"]
        unknown = [m for m in args.methods if m not in choices]
        if unknown or not args.methods:
            parser.error(f"--methods: unknown {', '.join(unknown) or '(empty)'}; choose from {', '.join(choices)}")
    if args.quick:
        args.steps, args.prompts, args.clips, args.batch, args.repeats = 6, 2, 2, 2, 2
    if args.quality_only:
        args.repeats = 1
        args.threads = args.threads or 1  # a smoke run should not crowd the machine
    if args.out_dir is None:
        args.out_dir = (Path(tempfile.gettempdir()) / "ditkit-cache-quick") if args.quick else \
            Path(__file__).resolve().parent / "results"
    return args


# ---------------------------------------------------------------- what differs between images and clips


@dataclass
class Task:
    """One model under test: how to load it, call it and score what it makes."""

    name: str
    pipe: object
    prompts: list[str]
    attributes: tuple[str, ...]
    call: Callable  # (prompts, first seed, acceleration) → float array (B, [F,] H, W, 3)
    score: Callable  # (prompts, uint8 array) → oracle dict

    def frames(self, samples: np.ndarray) -> torch.Tensor:
        """(B, [F,] H, W, 3) → (B, F, 3, H, W) for the fidelity metrics (F = 1 for images)."""
        x = torch.from_numpy(samples)
        if x.ndim == 4:
            x = x[:, None]
        return x.permute(0, 1, 4, 2, 3)


def t2i_task(args) -> Task:
    if args.quick:
        pipe = tiny_t2i()
    else:
        pipe = load_t2i_pipeline(args.t2i_model)

    def call(prompts, seed, acceleration):
        generators = [torch.Generator().manual_seed(seed + i) for i in range(len(prompts))]
        return pipe(prompts, num_inference_steps=args.steps, guidance_scale=args.guidance, generator=generators,
                    output_type="np", acceleration=acceleration).images

    return Task("t2i", pipe, world.eval_prompts(args.prompts, args.split, seed=0), ATTRIBUTES, call, world.score)


def t2v_task(args) -> Task:
    if args.quick:
        pipe = tiny_t2v()
    else:
        pipe = load_t2v_pipeline(args.t2v_model)
        configure_first_frame_model(pipe, args.first_frame_model)

    def call(prompts, seed, acceleration):
        generators = [torch.Generator().manual_seed(seed + i) for i in range(len(prompts))]
        return pipe(prompts, num_frames=args.frames, num_inference_steps=args.steps, guidance_scale=args.guidance,
                    generator=generators, output_type="np", acceleration=acceleration).frames

    return Task("t2v", pipe, world.video_eval_prompts(args.clips, args.split, seed=0), VIDEO_ATTRIBUTES, call,
                world.score_video)


# ---------------------------------------------------------------- running one setting


def attach(setting: Setting, pipe) -> str | None:
    """Put a peer's hooks on the pipeline → None, or the reason it does not fit (then nothing is left on)."""
    try:
        if setting.attach is not None:
            setting.attach(pipe)
        return None
    except Exception as err:  # a peer that does not fit our pipeline is a finding, not a crash
        if setting.detach is not None:
            try:
                setting.detach(pipe)
            except Exception:
                pass
        return f"not attached: {type(err).__name__}: {err}"


def timed_pass(task: Task, setting: Setting, batch: int, after_call: Callable | None = None) -> float:
    """Seconds for all prompts under `setting` (already attached); after_call(output) after each call."""
    seconds = 0.0
    for i in range(0, len(task.prompts), batch):
        start = time.perf_counter()
        out = task.call(task.prompts[i:i + batch], i, setting.acceleration)
        seconds += time.perf_counter() - start
        if after_call is not None:
            after_call(out)
    return seconds


def run_setting(task: Task, setting: Setting, batch: int, counter: BlockCounter) -> dict:
    """All prompts under one setting → {time, skipped, samples} (or {error} if it cannot attach).
    Samples and skip counts come from this pass; `time_again` re-times it in later passes."""
    pipe = task.pipe
    problem = attach(setting, pipe)
    if problem is not None:
        return {"error": problem}
    counter.reset()
    samples, counts = [], {"computed": 0, "skipped": 0}
    cache_config, _ = samplers.split_acceleration(setting.acceleration)

    def keep(out) -> None:
        samples.append(out)
        if cache_config is not None:
            st = samplers.stats(pipe.transformer)
            counts["computed"] += st.computed
            counts["skipped"] += st.skipped

    try:
        seconds = timed_pass(task, setting, batch, keep)
    except Exception as err:
        return {"error": f"failed while sampling: {type(err).__name__}: {err}"}
    finally:
        if setting.detach is not None:
            setting.detach(pipe)
    counted, total = counter.skipped_fraction, counts["computed"] + counts["skipped"]
    by_stats = counts["skipped"] / total if cache_config is not None and total else None
    return {"time": seconds, "skipped": counted if by_stats is None else by_stats, "skipped_counted": counted,
            "samples": np.concatenate(samples)}


def time_again(task: Task, setting: Setting, batch: int) -> float | None:
    """Seconds for all prompts under `setting` once more (None if it fails this time)."""
    if attach(setting, task.pipe) is not None:
        return None
    try:
        return timed_pass(task, setting, batch)
    except Exception:
        return None
    finally:
        if setting.detach is not None:
            setting.detach(task.pipe)


def evaluate(task: Task, setting: Setting, result: dict, baseline: dict | None) -> dict:
    """A result → its table row (JSON-ready): speed, fidelity against the baseline, oracle scores."""
    row = {"name": setting.name, "family": setting.family, "knobs": setting.knobs}
    if "error" in result:
        return {**row, "error": result["error"]}
    samples = result["samples"]
    row.update(time=result["time"], skipped=result["skipped"], skipped_counted=result["skipped_counted"])
    reference = baseline["samples"] if baseline is not None else samples
    row["speedup"] = (baseline["time"] if baseline is not None else result["time"]) / result["time"]
    ours, theirs = task.frames(samples), task.frames(reference)
    row["psnr"] = psnr(ours.flatten(1), theirs.flatten(1)).mean().item()
    b, f = ours.shape[:2]
    row["ssim"] = ssim(ours.flatten(0, 1), theirs.flatten(0, 1)).reshape(b, f).mean().item()
    row["oracle"] = task.score(task.prompts, list(to_uint8(samples)))
    return row


# ---------------------------------------------------------------- a model's whole comparison


REPEAT = "none (again, end of run)"  # timing drift and clean detaching; kept off the front and the plot


def settings_in_order(args) -> list[Setting]:
    ours = our_cache_settings(args.quick)
    if args.methods is not None:
        ours = [s for s in ours if s.name.split(" ")[0] in args.methods]
    rows = [Setting("none (uncached)", "baseline"), *ours]
    if not args.no_peers:
        rows += diffusers_settings(args.steps, args.quick) + cache_dit_settings(args.steps, args.guidance > 1,
                                                                                args.quick)
    return rows


def best_cache(rows: list[dict], settings: dict[str, Setting], floor: float) -> Setting | None:
    """The fastest of our caches whose PSNR stays above `floor`; else the most faithful one that skips."""
    ours = [r for r in rows if r["family"] == "ours" and "error" not in r and r["skipped"] > 0]
    good = [r for r in ours if r["psnr"] >= floor]
    pick = max(good, key=lambda r: r["speedup"]) if good else max(ours, key=lambda r: r["psnr"], default=None)
    return settings[pick["name"]] if pick else None


def rebase_speedups(rows: list[dict]) -> None:
    """Speed-ups against the faster of the two uncached runs (first and last), so a slow first
    baseline cannot flatter every method; the uncached rows then read ≤ 1.00x."""
    times = [r["time"] for r in rows if r["family"] == "baseline" and "error" not in r]
    if times:
        fastest = min(times)
        for r in rows:
            if "error" not in r:
                r["speedup"] = fastest / r["time"]


def benchmark(task: Task, args) -> list[dict]:
    task.pipe.set_progress_bar_config(disable=True)
    counter = BlockCounter(task.pipe.transformer)
    task.call(task.prompts[:1], 0, None)  # warm-up
    settings = settings_in_order(args)
    by_name = {s.name: s for s in settings}
    rows, ran, baseline = [], [], None

    def calibrate(pipe):  # one uncounted run, with a seed no row uses
        task.call(task.prompts[-1:], 10_000, None)

    def run(setting: Setting) -> None:
        nonlocal baseline
        if setting.prepare is not None:
            try:
                setting.prepare(task.pipe, calibrate)
            except Exception as err:
                print(f"  {setting.name}: calibration failed: {type(err).__name__}: {err}", file=sys.stderr)
        result = run_setting(task, setting, args.batch, counter)
        if baseline is None and "error" not in result:
            baseline = result
        rows.append(evaluate(task, setting, result, baseline))
        ran.append(setting)
        r = rows[-1]
        done = r["error"] if "error" in r else f"{r['time']:.1f}s x{r['speedup']:.2f} psnr {r['psnr']:.1f}"
        print(f"  [{task.name}] {setting.name}: {done}", file=sys.stderr, flush=True)

    for setting in settings:
        if setting.family in ("baseline", "ours"):
            run(setting)
    for setting in bottleneck_settings(best_cache(rows, by_name, args.psnr_floor)):
        run(setting)
    for setting in settings:
        if setting.family not in ("baseline", "ours"):
            run(setting)
    run(Setting(REPEAT, "baseline"))
    for again in range(1, args.repeats):  # whole passes over every row: drift reaches all rows alike
        for setting, row in zip(ran, rows):
            if "error" not in row:
                seconds = time_again(task, setting, args.batch)
                if seconds is not None:
                    row["time"] = min(row["time"], seconds)
        print(f"  [{task.name}] timing pass {again + 1} of {args.repeats} done", file=sys.stderr, flush=True)
    counter.remove()
    rebase_speedups(rows)
    if rows[-1].get("psnr") != PSNR_IDENTICAL:  # a method left something on the model
        print(f"WARNING [{task.name}]: the uncached run at the end differs from the first "
              f"({rows[-1].get('psnr', rows[-1].get('error'))}); a method did not detach cleanly", file=sys.stderr)
    return rows


# ---------------------------------------------------------------- output


def print_table(task: Task, rows: list[dict], args) -> None:
    ok = [r for r in rows if "error" not in r]
    model = "tiny random (--quick)" if args.quick else getattr(args, f"{task.name}_model") or "shipped"
    params = sum(p.numel() for p in task.pipe.transformer.parameters()) / 1e6
    print(f"\n## {task.name}: {model}  {len(task.prompts)} prompts ({args.split})  steps={args.steps} "
          f"cfg={args.guidance} batch={args.batch} threads={torch.get_num_threads()} repeats={args.repeats}  "
          f"params={params:.2f}M{'  (quality only: no timing)' if getattr(args, 'quality_only', False) else ''}\n")
    quality = quality_columns(video=task.name == "t2v")
    attributes = tuple((a, a, ".2f") for a in task.attributes)
    timing = not getattr(args, "quality_only", False)
    print(markdown_table(["method", "family", *(["time s", "speed-up"] if timing else []), "skipped", "PSNR dB", "SSIM",
                          *headers(quality), *headers(attributes)], [
        [r["name"], r["family"], *([f"{r['time']:.2f}", f"{r['speedup']:.2f}x"] if timing else []), f"{r['skipped']:.0%}",
         f"{r['psnr']:.1f}", f"{r['ssim']:.3f}", *cells(r["oracle"], quality), *cells(r["oracle"], attributes)]
        for r in ok]))
    for r in rows:
        if "error" in r:
            print(f"- {r['name']} ({r['family']}): {r['error']}")
    if not timing:
        return
    ranked = [r for r in ok if r["name"] != REPEAT]
    front = pareto_front([(r["speedup"], r["psnr"]) for r in ranked])
    print("\nPareto front (speed-up vs PSNR): " + "  ->  ".join(
        f"{ranked[i]['name']} ({ranked[i]['speedup']:.2f}x, {ranked[i]['psnr']:.1f} dB)" for i in front))
    matched = matched_speedup(ranked)
    if matched:
        print("\nMatched speed-up: each peer setting against our highest-PSNR setting that is at least as fast\n")
        print(markdown_table(["peer", "speed-up", "PSNR dB", "ours (at least as fast)", "speed-up", "PSNR dB", "margin dB"], [
            [m["peer"]["name"], f"{m['peer']['speedup']:.2f}x", f"{m['peer']['psnr']:.1f}",
             *((m["ours"]["name"], f"{m['ours']['speedup']:.2f}x", f"{m['ours']['psnr']:.1f}", f"{m['margin_db']:+.1f}")
               if m["ours"] else ("none as fast", "", "", ""))] for m in matched]))
        print(f"\nours ahead at {sum(m['ahead'] for m in matched)} of {len(matched)} peer settings")


def main(argv=None) -> None:
    args = parse_args(argv)
    with torch_threads(args.threads):
        run(args)


def run(args: argparse.Namespace) -> None:
    os.environ.setdefault("CACHE_DIT_LOG_LEVEL", "error")
    quiet_libraries()
    keep_freed_memory()
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = {"steps": args.steps, "guidance": args.guidance, "split": args.split, "batch": args.batch,
              "repeats": args.repeats,
              "threads": torch.get_num_threads(), "quick": args.quick, "quality_only": args.quality_only, "models": {}}
    for name, make in (("t2i", t2i_task), ("t2v", t2v_task)):
        if args.only not in (None, name):
            continue
        task = make(args)
        rows = benchmark(task, args)
        print_table(task, rows, args)
        ok = [r for r in rows if "error" not in r and r["name"] != REPEAT]
        if not args.quality_only:  # speed-up on x: not drawn from one pass on a busy machine
            plot(ok, out_dir / f"cache_{name}.png", f"{name}: {args.steps} steps, cfg {args.guidance}")
        report["models"][name] = {"model": getattr(args, f"{name}_model") or ("tiny" if args.quick else "shipped"),
                                  "prompts": task.prompts, "rows": rows}
        del task
    (out_dir / "cache.json").write_text(json.dumps(report, indent=1))
    print(f"\nwrote {out_dir / 'cache.json'}{'' if args.quality_only else ' and cache_*.png'}", file=sys.stderr)


if __name__ == "__main__":
    main()
