"""Benchmark the text-to-image pipeline: latency, peak memory, backbone throughput vs the machine's
matmul peak, and oracle quality — all measured side by side in one run.

    python -m bench.t2i [--model PATH] [--steps 25] [--prompts 64] [--threads N] [--quality-only]

Quality is read by the strict reader (`world.score`: what a person sees) on
`world.eval_prompts(n, "heldout")` — combinations training never showed — and on `"any"`, one row
each: accuracy per attribute over the prompts that state it, joint (every attribute right), and
the fidelity figures: mean template IoU (the best WORLD.md template stretched to the object's
box), background noise (RMS RGB distance, 0-255, of the pixels away from the object), the share
of clean images (IoU >= 0.85 and noise <= 6) and the mean number of stray components.
--quality-only skips the timing and memory rows (for a machine busy with other work, where
times would mean nothing). --grid-dir DIR writes what was scored, each image with its prompt, as
one grid per split (`pipelines.t2i.sample_grid.grid_image`), to look at before believing numbers.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

import world
from bench.common import cells, fidelity_columns, headers, markdown_table, peak_rss_mb, score_row, timed
from pipelines.core.allocator import keep_freed_memory
from pipelines.core.cli import quiet_libraries
from pipelines.t2i import load_t2i_pipeline
from pipelines.t2i.sample_grid import grid_image
from world.oracle import ATTRIBUTES


def matmul_peak_gflops(dtype: torch.dtype, n: int = 1024, seconds: float = 1.5) -> float:
    """Best sustained GFLOP/s of an n×n matmul in `dtype` on this machine."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(3):
        a @ b
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    return 2 * n**3 * count / (time.perf_counter() - start) / 1e9


def forward_flops(pipe, height: int, width: int) -> float:
    """FLOPs of one backbone forward (batch 1) on the pipeline's own inputs."""
    cond = pipe.encode_prompt(["a red circle"], pipe.device)
    x = torch.randn(1, pipe.latent_channels, height // pipe.vae_scale_factor, width // pipe.vae_scale_factor)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        pipe.transformer(x, torch.tensor([500.0]), **cond)
    return counter.get_total_flops()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--guidance", type=float, default=4.0)
    parser.add_argument("--prompts", type=int, default=64, help="oracle prompts per split")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--quality-only", action="store_true", help="the oracle table only: no timing or memory")
    parser.add_argument("--grid-dir", default=None, help="write the scored images as grids, one PNG per split")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    quiet_libraries()
    keep_freed_memory()
    pipe = load_t2i_pipeline(args.model)
    pipe.set_progress_bar_config(disable=True)
    size = pipe.native_size
    gen = lambda s: torch.Generator().manual_seed(s)
    call = lambda prompts, seed=0: pipe(prompts, num_inference_steps=args.steps, guidance_scale=args.guidance,
                                        generator=gen(seed), output_type="np")
    timing = None if args.quality_only else timing_table(pipe, call, args)  # before scoring: RSS as loaded
    scores = {}
    for split in ("heldout", "any"):
        prompts = world.eval_prompts(args.prompts, split, seed=0)
        images = []
        for i in range(0, len(prompts), 16):
            images.extend(world.tensor_to_images(torch.from_numpy(call(prompts[i:i + 16], seed=i).images)
                                                 .permute(0, 3, 1, 2) * 2 - 1))
        scores[split] = world.score(prompts, images)
        if args.grid_dir:
            Path(args.grid_dir).mkdir(parents=True, exist_ok=True)
            grid_image([Image.fromarray(im) for im in images], prompts, columns=8).save(
                Path(args.grid_dir) / f"t2i_{split}.png")

    print(f"model: {args.model or 'shipped default'}  {size}x{size}  steps={args.steps} cfg={args.guidance} "
          f"threads={torch.get_num_threads()}  params={sum(p.numel() for p in pipe.transformer.parameters()) / 1e6:.2f}M")
    if timing is not None:
        print()
        print(timing)
    print()
    columns = fidelity_columns(video=False)
    print(markdown_table(["prompts", "n", *ATTRIBUTES, "joint", *headers(columns)],
                         [[split, s["n"], *score_row(s, ATTRIBUTES), *cells(s, columns)] for split, s in scores.items()]))


def timing_table(pipe, call, args) -> str:
    """Latency, peak memory and backbone throughput against this machine's matmul peak."""
    size = pipe.native_size
    rss_loaded = peak_rss_mb()
    call("a red circle")  # warm-up
    one = timed(lambda: call("a large red circle in the top left on a white background"), args.repeats)
    rss_one = peak_rss_mb()
    batch_prompts = world.eval_prompts(16, "any", seed=1)
    sixteen = timed(lambda: call(batch_prompts), max(1, args.repeats // 2))
    rss_batch = peak_rss_mb()

    forwards = args.steps * (2 if args.guidance > 1 else 1)
    flops = forward_flops(pipe, size, size)
    achieved = flops * forwards / statistics.median(one) / 1e9
    peak_bf16, peak_fp32 = matmul_peak_gflops(torch.bfloat16), matmul_peak_gflops(torch.float32)
    return markdown_table(["measure", "value"], [
        [f"1 image, median of {args.repeats}", f"{statistics.median(one):.3f} s"],
        ["batch of 16", f"{statistics.median(sixteen):.2f} s ({statistics.median(sixteen) / 16:.3f} s/image)"],
        ["peak RSS: loaded / after 1 image / after batch 16", f"{rss_loaded:.0f} / {rss_one:.0f} / {rss_batch:.0f} MB"],
        ["backbone forward (batch 1)", f"{flops / 1e9:.3f} GFLOP"],
        ["backbone achieved, 1 image", f"{achieved:.1f} GFLOP/s"],
        ["matmul peak bf16 / fp32 (1024², same run)", f"{peak_bf16:.1f} / {peak_fp32:.1f} GFLOP/s"],
        ["achieved / bf16 peak", f"{achieved / peak_bf16:.2f}"],
        ["achieved / fp32 peak", f"{achieved / peak_fp32:.2f}"]])


if __name__ == "__main__":
    main()
