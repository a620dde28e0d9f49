"""Benchmark the text-to-image pipeline: latency, peak memory, backbone throughput vs the machine's
matmul peak, and oracle quality — all measured side by side in one run.

    python -m bench.t2i [--model PATH] [--steps 25] [--prompts 64] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

import world
from bench.common import peak_rss_mb, timed
from pipelines.core.allocator import keep_freed_memory
from pipelines.core.cli import quiet_libraries
from pipelines.t2i import load_t2i_pipeline


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--guidance", type=float, default=4.0)
    parser.add_argument("--prompts", type=int, default=64, help="oracle prompts per split")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
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

    scores = {}
    for split in ("heldout", "any"):
        prompts = world.eval_prompts(args.prompts, split, seed=0)
        images = []
        for i in range(0, len(prompts), 16):
            images.extend(world.tensor_to_images(torch.from_numpy(call(prompts[i:i + 16], seed=i).images)
                                                 .permute(0, 3, 1, 2) * 2 - 1))
        scores[split] = world.score(prompts, images)

    print(f"model: {args.model or 'shipped default'}  {size}x{size}  steps={args.steps} cfg={args.guidance} "
          f"threads={torch.get_num_threads()}  params={sum(p.numel() for p in pipe.transformer.parameters()) / 1e6:.2f}M")
    print()
    print("| measure | value |")
    print("|---|---|")
    print(f"| 1 image, median of {args.repeats} | {statistics.median(one):.3f} s |")
    print(f"| batch of 16 | {statistics.median(sixteen):.2f} s ({statistics.median(sixteen) / 16:.3f} s/image) |")
    print(f"| peak RSS: loaded / after 1 image / after batch 16 | {rss_loaded:.0f} / {rss_one:.0f} / {rss_batch:.0f} MB |")
    print(f"| backbone forward (batch 1) | {flops / 1e9:.3f} GFLOP |")
    print(f"| backbone achieved, 1 image | {achieved:.1f} GFLOP/s |")
    print(f"| matmul peak bf16 / fp32 (1024², same run) | {peak_bf16:.1f} / {peak_fp32:.1f} GFLOP/s |")
    print(f"| achieved / bf16 peak | {achieved / peak_bf16:.2f} |")
    print(f"| achieved / fp32 peak | {achieved / peak_fp32:.2f} |")
    for split, s in scores.items():
        parts = " ".join(f"{k}={v:.3f}" for k, v in s.items() if isinstance(v, float))
        print(f"| oracle, {split} prompts (n={s['n']}) | {parts} |")


if __name__ == "__main__":
    main()
