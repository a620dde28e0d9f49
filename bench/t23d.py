"""Benchmark the text-to-3D pipeline: the PointFlow set metrics per shape class against world
samples, read-back of shape / proportion / colour, time per shape, mesh time and peak memory.

    python -m bench.t23d [--model PATH] [--steps 25] [--per-class 64] [--readback 64] [--emd-points 128]
    python -m bench.t23d --quick      # a seconds-long smoke run on a tiny random model

Set metrics (`world.metrics3d`, over the full sets, not per batch): for each of the six shapes,
`--per-class` specs are drawn from every proportion and colour (seed 0); the model makes one cloud
per spec's caption (seed = index) and the world draws a reference cloud of the same spec (other
seeds), so both sets follow one distribution of proportions. MMD-CD, COV-CD and 1-NNA-CD per
class (1-NNA near 50 % is the goal: generated and reference indistinguishable), and the same
under EMD computed exactly on `--emd-points`-point subsets (0 skips it; an exact assignment is
O(N³), PointFlow's figures approximate it on full clouds).

Read-back (`world.reader3d`): `--readback` prompts from the held-out combinations (cycled) and
from all of them at random; accuracy of shape, proportion, colour (over prompts that name one)
and joint; the mean Chamfer distance to the template read, and the clean share (`Shape3DReading.clean`:
a surface as crisp as a world sample's, ≥ 95 % of points in one colour — what a person would call
a clean shape; the read-back alone forgives fuzz and specks). Time: one shape at `--num-points`, median of `--repeats`, and its mesh
(`pipelines.t23d.mesh`); peak RSS over a shape's generation.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from bench.common import markdown_table, median, peak_rss_mb, reset_peak_rss, timed, torch_threads
from bench.tiny_models import tiny_t23d
from pipelines.core.allocator import keep_freed_memory
from pipelines.core.cli import quiet_libraries
from pipelines.core.errors import UserError
from pipelines.t23d import load_t23d_pipeline
from pipelines.t23d.mesh import mesh_from_points
from world.metrics3d import SetMetrics, compare_sets
from world.reader3d import read_shape3d
from world.shapes3d import SHAPES3D, Shape3DSpec, caption3d, sample_shape3d, split_specs3d

REFERENCE_SEED = 1_000_000  # reference clouds: seeds far from the generated ones' 0, 1, 2 …


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="pipeline folder (default: the shipped model)")
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--guidance", type=float, default=4.0)
    p.add_argument("--num-points", type=int, default=2048)
    p.add_argument("--per-class", type=int, default=64, help="generated and reference clouds per shape class")
    p.add_argument("--classes", default=",".join(SHAPES3D), help="comma-separated shape classes")
    p.add_argument("--emd-points", type=int, default=128, help="points per cloud for exact EMD (0: no EMD)")
    p.add_argument("--readback", type=int, default=64, help="read-back prompts per split")
    p.add_argument("--batch", type=int, default=16, help="clouds per pipeline call")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--skip-metrics", action="store_true", help="no set metrics (read-back, time and memory only)")
    p.add_argument("--quick", action="store_true", help="tiny random model and tiny sets: a smoke run")
    args = p.parse_args(argv)
    classes = [c.strip() for c in args.classes.split(",") if c.strip()]
    unknown = [c for c in classes if c not in SHAPES3D]
    if unknown or not classes:
        p.error(f"unknown shape class(es) {unknown}; choose from {', '.join(SHAPES3D)}")
    args.classes = classes
    if args.quick:
        args.steps, args.num_points, args.per_class, args.readback, args.repeats = 2, 128, 4, 3, 1
        args.emd_points, args.batch = min(args.emd_points, 16), 4
        args.classes = args.classes[:2]
        args.threads = args.threads or 1  # a smoke run should not crowd the machine
    for name in ("steps", "num_points", "per_class", "readback", "batch", "repeats"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.per_class < 2:
        p.error("--per-class must be at least 2 (1-NNA leaves one out)")
    return args


# ---------------------------------------------------------------- what is measured

def class_specs(shape: str, n: int, seed: int = 0) -> list[Shape3DSpec]:
    """n specs of one shape, proportion and colour drawn uniformly (every combination, held out or not)."""
    specs = [s for s in split_specs3d("any") if s.shape == shape]
    rng = np.random.default_rng(seed)
    return [specs[i] for i in rng.integers(len(specs), size=n)]


def readback_specs(split: str, n: int, seed: int = 0) -> list[Shape3DSpec]:
    """n specs: 'heldout' cycles the held-out combinations (shuffled), 'any' draws from all."""
    specs = list(split_specs3d(split))
    rng = np.random.default_rng(seed)
    if split == "heldout":
        order = rng.permutation(len(specs))
        return [specs[order[i % len(specs)]] for i in range(n)]
    return [specs[i] for i in rng.integers(len(specs), size=n)]


def readback_scores(clouds, colours, specs) -> dict:
    """Accuracy of each attribute read back by `world.reader3d` (colour: over specs naming one; a
    cloud without colours never reads a colour), and joint (`Shape3DReading.matches`)."""
    readings = [read_shape3d(p, c) for p, c in zip(clouds, colours)]
    pairs = list(zip(readings, specs))
    coloured = [(r, s) for r, s in pairs if s.colour is not None]
    return {"n": len(specs),
            "shape": float(np.mean([r.shape == s.shape for r, s in pairs])),
            "proportion": float(np.mean([r.proportion == s.proportion for r, s in pairs])),
            "colour": float(np.mean([r.colour == s.colour for r, s in coloured])) if coloured else None,
            "coloured": len(coloured),
            "joint": float(np.mean([r.matches(s) for r, s in pairs])),
            "chamfer": float(np.mean([r.chamfer for r in readings])),
            "clean": float(np.mean([r.clean for r in readings]))}


def readback_rows(scores: dict[str, dict]) -> list[list[str]]:
    fmt = lambda v: "–" if v is None else f"{v:.3f}"
    return [[split, s["n"], fmt(s["shape"]), fmt(s["proportion"]), f"{fmt(s['colour'])} (of {s['coloured']})",
             fmt(s["joint"]), f"{s['chamfer']:.4f}", fmt(s["clean"])] for split, s in scores.items()]


def metric_rows(by_class: dict[str, dict[str, SetMetrics]]) -> list[list[str]]:
    """One row per class, and a mean row over classes: MMD (CD ×10³, EMD ×10²), COV and 1-NNA in %,
    for CD then EMD ("–" where EMD was not measured)."""
    values = {}
    for name, metrics in by_class.items():
        row = []
        for distance, scale in (("CD", 1e3), ("EMD", 1e2)):
            m = metrics.get(distance)
            row += [m.mmd * scale, m.cov * 100, m.nna * 100] if m else [None] * 3
        values[name] = row
    sizes = {name: f"{m['CD'].num_generated}/{m['CD'].num_reference}" for name, m in by_class.items()}
    if len(values) > 1:
        columns = list(zip(*values.values()))
        values["mean"] = [None if None in col else float(np.mean(col)) for col in columns]
        sizes["mean"] = ""
    cell = lambda i, v: "–" if v is None else (f"{v:.2f}" if i % 3 == 0 else f"{v:.1f} %")
    return [[name, sizes[name], *(cell(i, v) for i, v in enumerate(row))] for name, row in values.items()]


METRIC_HEADERS = ["class", "gen/ref", "MMD-CD (×10³)", "COV-CD", "1-NNA-CD", "MMD-EMD (×10²)", "COV-EMD",
                  "1-NNA-EMD"]


# ---------------------------------------------------------------- the run

def load(args):
    if args.quick:
        return tiny_t23d()
    return load_t23d_pipeline(args.model)


def main(argv=None) -> int:
    args = parse_args(argv)
    with torch_threads(args.threads):
        try:
            run(args)
        except UserError as err:  # e.g. the default model is not shipped yet
            print(f"error: {err}")
            return 2
    return 0


def run(args: argparse.Namespace) -> None:
    quiet_libraries()
    keep_freed_memory()
    pipe = load(args)
    pipe.set_progress_bar_config(disable=True)

    def generate(specs: list[Shape3DSpec], seed: int = 0):
        """(clouds, colours) of the specs' captions; cloud i gets seed + i whatever the batch."""
        clouds, colours = [], []
        for i in range(0, len(specs), args.batch):
            chunk = specs[i:i + args.batch]
            generators = [torch.Generator().manual_seed(seed + i + j) for j in range(len(chunk))]
            out = pipe([caption3d(s) for s in chunk], num_inference_steps=args.steps, guidance_scale=args.guidance,
                       generator=generators, num_points=args.num_points, output_type="np")
            clouds += out.points
            colours += out.colours if out.colours is not None else [None] * len(chunk)
        return clouds, colours

    timing = time_rows(args, generate)
    scores = {split: readback_scores(*generate(specs), specs)
              for split in ("heldout", "any") for specs in [readback_specs(split, args.readback)]}
    by_class = {}
    if not args.skip_metrics:
        for shape in args.classes:
            specs = class_specs(shape, args.per_class)
            made, _ = generate(specs)
            reference = [sample_shape3d(s, REFERENCE_SEED + i, num_points=args.num_points).points
                         for i, s in enumerate(specs)]
            by_class[shape] = compare_sets(made, reference, emd_points=args.emd_points or None)

    params = sum(p.numel() for p in pipe.transformer.parameters()) / 1e6
    print(f"model: {'tiny random (--quick)' if args.quick else args.model or 'shipped default'}  "
          f"points={args.num_points}  steps={args.steps} cfg={args.guidance}  threads={torch.get_num_threads()}  "
          f"params={params:.2f}M  coloured={pipe.is_coloured}")
    print()
    print(markdown_table(["measure", "value"], timing))
    print()
    print(markdown_table(["prompts", "n", "shape", "proportion", "colour", "joint", "chamfer", "clean"],
                         readback_rows(scores)))
    if by_class:
        print()
        emd_size = min(args.emd_points, args.num_points)  # metrics3d cuts every cloud to the smallest size
        emd = f"EMD exact on {emd_size}-point subsets" if args.emd_points else "no EMD"
        print(f"set metrics per class, full sets, PointFlow convention (CD: sum of the two mean squared NN "
              f"distances); {emd}")
        print()
        print(markdown_table(METRIC_HEADERS, metric_rows(by_class)))


def time_rows(args, generate) -> list[list[str]]:
    """One shape's time (median of --repeats, after a warm-up), its mesh's, and the peak RSS."""
    spec = Shape3DSpec("cone", "tall", "red")
    rss_loaded = peak_rss_mb()
    generate([spec])  # warm-up
    times, peaks, clouds = [], [], []
    for _ in range(args.repeats):
        reset_peak_rss()
        start = time.perf_counter()
        clouds.append(generate([spec]))
        times.append(time.perf_counter() - start)
        peaks.append(peak_rss_mb())
    (points,), (colours,) = clouds[-1]
    mesh_times = timed(lambda: mesh_from_points(points, colours), args.repeats)
    return [[f"1 shape ({args.num_points} points, {args.steps} steps), median of {args.repeats}",
             f"{median(times):.3f} s"],
            [f"its mesh (.glb/.obj field + marching cubes), median of {args.repeats}", f"{median(mesh_times):.3f} s"],
            ["peak RSS: loaded / while generating", f"{rss_loaded:.0f} MB / {max(peaks):.0f} MB"]]


if __name__ == "__main__":
    raise SystemExit(main())
