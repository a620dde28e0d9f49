"""CPU rasteriser benchmark: ditkit's tiled compositor against the brute-force reference and a
plain per-tile loop, forward and forward+backward, at 1k / 10k / 100k Gaussians, 256².

    python -m bench.gaussians                      # the table (3–4 minutes on 2 cores, most of it baselines)
    python -m bench.gaussians --sizes 10000 --threads 2

The scene stands in for a fitted WORLD.md object: N Gaussians in a ball of radius 0.6 seen by
the first orbit camera (distance 4, elevation 20°, vertical FoV 40°), standard deviations
0.3 · √(4π/N) · exp(0.3 · z) (an object surface's worth of area shared out, jittered), random
rotations, opacities sigmoid(1 + z), random colours. "forward" renders inputs that require grad
(the autograd graph is built, as in training); "fwd+bwd" adds the backward of a sum of the image
and alpha. Each time is the median of `--repeats` runs after one warm-up. Every backend's image
is compared with ditkit's ("max |Δ|"). The backends are timed in turns, so that a change of load
on shared cores hits them alike. The brute-force reference holds [H·W, N] tensors (a few GB for
its backward at 1k Gaussians), so it is skipped above `--reference-limit` pixel × Gaussian pairs
(the output says so).

OpenMP's wait policy is the caller's: unset (what a Python user of `gaussians.rasterize` gets),
or `OMP_WAIT_POLICY=PASSIVE python -m bench.gaussians` as `python -m gaussians.fit` runs (idle
threads sleep, right on shared cores; every small kernel then pays a thread wake-up, which the
vectorised compositor's many kernels feel more than the loop's).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time

import torch

from gaussians import Cameras, rasterize
from gaussians.rasterization import TILE_SIZES

SIZE = 256


def object_scene(n: int, seed: int = 0) -> dict:
    """rasterize() keyword arguments for n Gaussians in a ball of radius 0.6 (see the module docstring)."""
    g = torch.Generator().manual_seed(seed)
    direction = torch.nn.functional.normalize(torch.randn(n, 3, generator=g), dim=-1)
    means = direction * 0.6 * torch.rand(n, 1, generator=g) ** (1 / 3)
    sigma = 0.3 * math.sqrt(4 * math.pi / n)
    cams = Cameras.orbit(1, SIZE, SIZE)
    return dict(means=means, quats=torch.randn(n, 4, generator=g),
                scales=sigma * torch.exp(0.3 * torch.randn(n, 3, generator=g)),
                opacities=torch.sigmoid(1 + torch.randn(n, generator=g)), colors=torch.rand(n, 3, generator=g),
                viewmats=cams.viewmats, Ks=cams.Ks, width=SIZE, height=SIZE)


def runners(scene: dict, backend: str, tile_size: int | None):
    """(forward, forward+backward) closures of one backend on one scene, and its image."""
    params = ("means", "quats", "scales", "opacities", "colors")
    inputs = {k: (v.clone().requires_grad_() if k in params else v) for k, v in scene.items()}

    def forward():
        return rasterize(**inputs, backend=backend, tile_size=tile_size)

    def forward_backward():
        image, alpha, _ = forward()
        (image.sum() + alpha.sum()).backward()
        for k in params:
            inputs[k].grad = None

    return forward, forward_backward, forward()[0].detach()


def interleaved_medians(fns: list, repeats: int) -> list[float]:
    """Median wall-clock seconds of each function, timed in turns (so that a change of load on shared
    cores hits all alike); one warm-up each, and a function whose warm-up took over a second runs once."""
    times: list[list[float]] = [[] for _ in fns]
    slow = []
    for fn in fns:
        start = time.perf_counter()
        fn()
        slow.append(time.perf_counter() - start > 1.0)
    for r in range(repeats):
        for i, fn in enumerate(fns):
            if slow[i] and r > 0:
                continue
            start = time.perf_counter()
            fn()
            times[i].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed runs per measurement (median; runs over a second get 1)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's own)")
    parser.add_argument("--reference-limit", type=float, default=7e7,
                        help="largest H·W·N the brute-force reference is run at")
    parser.add_argument("--loop-tiles", type=int, nargs="+", default=[8, 16],
                        help="tile sizes of the per-tile loop (16 is gsplat's; 8 is the loop's fastest here)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"# bench.gaussians: {SIZE}×{SIZE}, 1 camera, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset (OpenMP default: idle threads spin a while)')}")
    print()
    print("| Gaussians | backend | tile | forward ms | fwd+bwd ms | ditkit faster by (fwd / fwd+bwd) "
          "| max \\|Δ\\| vs ditkit |")
    print("|---|---|---|---|---|---|---|")
    notes = []
    for n in args.sizes:
        scene = object_scene(n)
        runs = [("ditkit (torch)", "torch", None)] + [("plain per-tile loop", "loop", t) for t in args.loop_tiles]
        if SIZE * SIZE * n <= args.reference_limit:
            runs.append(("reference (brute force)", "reference", None))
        else:
            notes.append(f"brute-force reference skipped at {n:,} Gaussians: {SIZE * SIZE * n:.2g} pixel × Gaussian "
                         f"pairs per image > --reference-limit {args.reference_limit:.2g} (its [H·W, N] tensors)")
        prepared = [runners(scene, backend, tile) for _, backend, tile in runs]
        fwd = interleaved_medians([p[0] for p in prepared], args.repeats)
        both = interleaved_medians([p[1] for p in prepared], args.repeats)
        image = prepared[0][2]
        for i, (name, backend, tile) in enumerate(runs):
            tile = TILE_SIZES["torch"] if backend == "torch" else tile
            if i == 0:
                print(f"| {n:,} | **{name}** | {tile} | {fwd[0] * 1e3:.1f} | {both[0] * 1e3:.1f} | — | — |",
                      flush=True)
                continue
            diff = (prepared[i][2] - image).abs().max().item()
            print(f"| {n:,} | {name} | {tile or '—'} | {fwd[i] * 1e3:.1f} | {both[i] * 1e3:.1f} | "
                  f"{fwd[i] / fwd[0]:.1f}× / {both[i] / both[0]:.1f}× | {diff:.1e} |", flush=True)
        if len(runs) == len(args.loop_tiles) + 1:
            print(f"| {n:,} | reference (brute force) | — | skipped | skipped | — | — |", flush=True)
    print()
    for note in notes:
        print(f"- {note}")
    print("- targets (issue 23, 2 cores): 10k Gaussians at 256²: forward ≤ 60 ms, forward+backward ≤ 250 ms, "
          "≥ 3× faster than the plain per-tile loop")


if __name__ == "__main__":
    main()
