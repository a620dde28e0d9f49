"""Fitting benchmark (issue 23's targets): static fits of world 3D objects and 4D fits of world orbit clips.

    python -m bench.gaussians_fit --static                    # 6 still objects (one per solid), 24 views at 128²
    python -m bench.gaussians_fit --clips 30 --results r.jsonl --keep fits/  # 30 orbit clips, every motion (resumable)
    python -m bench.gaussians_fit --reread fits/                # read the kept .ply sequences again
    python -m bench.gaussians_fit --reader 228                  # the 4D reader on ground truth
    python -m bench.gaussians_fit --picture docs/gaussians_orbit.png --caption "a red cube spinning"

Static: `gaussians.fit` (defaults) on a still world object's 24 orbit views (128², WORLD.md's
cameras); PSNR on 12 held-out views half-way between them. Target: ≥ 32 dB in ≤ 2 min on 2 cores.
4D: `gaussians.fit4d` (defaults) on a 24-frame orbit clip (one view per time step); PSNR on the 23
held-out (time, view) pairs half-way between frames in both; the fit is written as a `.ply`
sequence, read back from disk and read by `world.read_object4d` (colour, shape, motion from the
opaque Gaussians' centres). Targets: ≥ 27 dB, ≤ 4 min per clip, the caption read back on ≥ 0.9 of
30 clips. `--results` appends one JSON row per object and skips those already there, so a long run
resumes. Timings on shared cores are indicative.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle OpenMP threads sleep instead of spinning on shared cores

import argparse
import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gaussians import fit, fit4d, held_out_views, read_ply_sequence, sequence_arrays, world_clip, write_ply_sequence
from gaussians.fitting import psnr
from world.objects4d import Object4DSpec, caption4d, parse_caption4d, sample_object4d, spread_specs4d
from world.reader4d import read_object4d, score4d
from world.shapes3d import SHAPES3D

FRAMES, SIZE = 24, 128
STATIC_COLOURS = ("red", "green", "blue", "yellow", "cyan", "magenta")


def held_out_psnr(render_at, views) -> list[float]:
    with torch.no_grad():
        return [psnr(render_at(views.times[i]).render(views.cameras[i])[0][0], views.frames[i])
                for i in range(len(views.cameras))]


def static_row(spec: Object4DSpec, seed: int) -> dict:
    """A still object's 24 views → `fit`; held-out PSNR on the 12 views half-way between every other pair."""
    clip = world_clip(spec, FRAMES, SIZE, seed)
    test = held_out_views(spec, FRAMES, SIZE, seed)
    test.cameras, test.times, test.frames = test.cameras[::2], test.times[::2], test.frames[::2]
    start = time.perf_counter()
    g, log = fit(clip.frames, clip.cameras, seed=seed, progress=False)
    seconds = time.perf_counter() - start
    values = held_out_psnr(lambda t: g, test)
    return dict(mode="static", caption=caption4d(spec), seconds=round(seconds, 1), gaussians=len(g),
                psnr=round(float(np.mean(values)), 2), psnr_min=round(min(values), 2))


def clip_row(spec: Object4DSpec, seed: int, keep: Path | None = None) -> dict:
    """A 24-frame orbit clip → `fit4d` → .ply sequence on disk (in `keep`/<caption>/ when given) → read
    back and read."""
    clip = world_clip(spec, FRAMES, SIZE, seed)
    test = held_out_views(spec, FRAMES, SIZE, seed)
    start = time.perf_counter()
    model, log = fit4d(clip.frames, clip.cameras, clip.times, seed=seed, progress=False)
    seconds = time.perf_counter() - start
    values = held_out_psnr(model.at, test)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) if keep is None else keep / caption4d(spec).replace(" ", "_")
        folder.mkdir(parents=True, exist_ok=True)
        write_ply_sequence(folder, model, clip.times, clip.cameras)
        frames, _, _ = read_ply_sequence(folder)
    reading = read_object4d(*sequence_arrays(frames))
    return dict(mode="4d", caption=caption4d(spec), seconds=round(seconds, 1), gaussians=len(model),
                psnr=round(float(np.mean(values)), 2), psnr_min=round(min(values), 2),
                read=f"{reading.colour} {reading.shape} {reading.motion}", match=reading.matches(spec),
                scores={k: round(v, 2) for k, v in reading.scores.items()})


def run_rows(specs, make_row, results: Path | None, seed: int, **kwargs) -> list[dict]:
    done = {}
    if results is not None and results.exists():
        for line in results.read_text().splitlines():
            row = json.loads(line)
            done[(row["mode"], row["caption"])] = row
    rows = []
    mode = "static" if make_row is static_row else "4d"
    for spec in specs:
        row = done.get((mode, caption4d(spec)))
        if row is None:
            row = make_row(spec, seed, **kwargs)
            if results is not None:
                with results.open("a") as f:
                    f.write(json.dumps(row) + "\n")
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def summary(rows: list[dict]) -> None:
    if not rows:
        return
    mode = rows[0]["mode"]
    seconds = [r["seconds"] for r in rows]
    psnrs = [r["psnr"] for r in rows]
    print(f"\n{mode}: {len(rows)} objects; held-out PSNR mean {np.mean(psnrs):.2f} dB, min {min(psnrs):.2f} dB "
          f"(lowest single view {min(r['psnr_min'] for r in rows):.2f} dB); fit time mean {np.mean(seconds):.0f} s, "
          f"max {max(seconds):.0f} s")
    if mode == "4d":
        print(f"caption read back from the .ply sequence: {np.mean([r['match'] for r in rows]):.3f}")
        by_motion = defaultdict(list)
        for r in rows:
            by_motion[parse_caption4d(r["caption"]).motion].append(r["match"])
        print("by motion: " + ", ".join(f"{m} {sum(v)}/{len(v)}" for m, v in by_motion.items()))
        misses = [f"{r['caption']} → {r['read']}" for r in rows if not r["match"]]
        if misses:
            print("misread: " + "; ".join(misses))


def reread(folder: Path) -> None:
    """Score the kept .ply sequences again with the current reader."""
    matches = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        spec = parse_caption4d(sub.name.replace("_", " "))
        reading = read_object4d(*sequence_arrays(read_ply_sequence(sub)[0]))
        matches.append(reading.matches(spec))
        print(f"{caption4d(spec)} → {reading.colour} {reading.shape} {reading.motion}"
              f"{'' if matches[-1] else '  (miss)'}")
    print(f"caption read back: {np.mean(matches):.3f} of {len(matches)}")


def reader_on_truth(n: int) -> None:
    """The 4D reader on n ground-truth objects (every motion, fresh seeds): it must read ≥ 0.98."""
    specs = spread_specs4d(n)
    start = time.perf_counter()
    readings = [read_object4d(s.points, s.colours)
                for s in (sample_object4d(spec, n_frames=16, num_points=2048, rng=10_000 + i)
                          for i, spec in enumerate(specs))]
    misses = [f"{caption4d(s)} → {r.colour} {r.shape} {r.motion}"
              for r, s in zip(readings, specs) if not r.matches(s)]
    print(f"4D reader on ground truth: {score4d(readings, specs):.3f} of {n} "
          f"({(time.perf_counter() - start) / n:.2f} s each)" + ("; misread: " + "; ".join(misses) if misses else ""))


def picture(path: Path, caption: str, seed: int, columns: int = 8) -> None:
    """Two rows: the clip's frames (ground truth, every third) over the fitted model at the held-out
    (time, view) pairs next to them."""
    spec = parse_caption4d(caption)
    clip = world_clip(spec, FRAMES, SIZE, seed)
    test = held_out_views(spec, FRAMES, SIZE, seed)
    model, _ = fit4d(clip.frames, clip.cameras, clip.times, seed=seed, progress=True)
    picks = np.linspace(0, len(test.cameras) - 1, columns).round().astype(int)
    with torch.no_grad():
        top = [clip.frames[i] for i in picks]
        bottom = [model.at(test.times[i]).render(test.cameras[i])[0][0].clamp(0, 1) for i in picks]
    rows = [torch.cat(top, dim=1), torch.cat(bottom, dim=1)]
    image = (torch.cat(rows, dim=0).numpy() * 255).round().astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    print(f"{path}: {caption}; top: input frames, bottom: the fit at novel (time, view) pairs")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--static", action="store_true", help="the static target: one still object per solid")
    parser.add_argument("--clips", type=int, default=0, help="the 4D target on this many clips (issue 23: 30)")
    parser.add_argument("--results", type=Path, default=None, help="JSONL of rows: appended to, and resumed from")
    parser.add_argument("--keep", type=Path, default=None, help="keep each clip's .ply sequence in this folder")
    parser.add_argument("--reread", type=Path, default=None,
                        help="read the .ply sequences kept in this folder again (no fitting) and score them")
    parser.add_argument("--reader", type=int, default=0,
                        help="the 4D reader on this many ground-truth objects (16 frames, 2048 points)")
    parser.add_argument("--picture", type=Path, default=None, help="write an orbit strip of one fitted clip here")
    parser.add_argument("--caption", default="a red cube spinning", help="the clip of --picture")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"# bench.gaussians_fit: {FRAMES} views at {SIZE}², torch {torch.__version__}, {torch.get_num_threads()} "
          f"threads, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}")
    if args.static:
        specs = [Object4DSpec(c, s, "still") for c, s in zip(STATIC_COLOURS, SHAPES3D)]
        summary(run_rows(specs, static_row, args.results, args.seed))
    if args.clips:
        summary(run_rows(spread_specs4d(args.clips), clip_row, args.results, args.seed, keep=args.keep))
    if args.reread is not None:
        reread(args.reread)
    if args.reader:
        reader_on_truth(args.reader)
    if args.picture is not None:
        picture(args.picture, args.caption, args.seed)


if __name__ == "__main__":
    main()
