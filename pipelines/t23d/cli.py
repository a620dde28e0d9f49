"""`python -m pipelines.t23d`: one point cloud (`--prompt … --out x.ply`) or a resumable batch
(`--prompts file --out-dir DIR`) from the shipped model or a saved text-to-3D pipeline folder.

Each prompt gives a binary point-cloud `.ply` (x, y, z and red, green, blue when the model colours
its points); with `--mesh`, also a closed mesh beside it, as `.glb` and `.obj` with the points'
colours on its vertices (`pipelines.t23d.mesh`).

    python -m pipelines.t23d --prompt "a tall red cone" --out cone.ply --mesh
    python -m pipelines.t23d --prompts prompts.txt --out-dir shapes/ --mesh
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..core import inputs
from ..core.atomic import remove_partial_writes
from ..core.batch import Claims, Manifest, ensure_writable_dir, output_name
from ..core.cli import (ArgumentParser, acceleration_for_target, acceleration_from_args, add_acceleration_args,
                        add_sampling_args, batch_summary, check_new_output, check_sampling_args, report_acceleration,
                        run_prompts_cli)
from ..core.cores import CoreShare
from ..core.errors import UserError
from ..core.schedulers import make_scheduler
from .files import POINT_SUFFIX, write_point_cloud
from .loading import load_t23d_pipeline
from .mesh import MESH_SUFFIXES, mesh_from_points, write_mesh
from .pipeline import MAX_POINTS, MIN_POINTS

DEFAULT_POINTS = 2048


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m pipelines.t23d", description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--prompt", help="one prompt (with --out)")
    src.add_argument("--prompts", help="prompt file: one per line, or .jsonl with 'prompt' and optional 'seed'")
    p.add_argument("--out", help="output point cloud for --prompt (.ply); --mesh puts .glb and .obj beside it")
    p.add_argument("--out-dir", help="output folder for --prompts (gets manifest.jsonl)")
    p.add_argument("--overwrite", action="store_true", help="replace existing --out files")
    p.add_argument("--negative-prompt", default=None)
    p.add_argument("--num-points", type=int, default=DEFAULT_POINTS, help="points per cloud (default 2048)")
    p.add_argument("--mesh", action="store_true", help="also write a mesh (marching cubes) as .glb and .obj")
    add_sampling_args(p, default_steps=25, default_guidance=4.0)
    add_acceleration_args(p)
    return p


def mesh_paths(ply: Path) -> list[Path]:
    """The `.glb` and `.obj` written beside a cloud's `.ply` with --mesh."""
    return [ply.with_suffix(suffix) for suffix in MESH_SUFFIXES]


def check_args(args) -> None:
    """Every argument checked before the model loads: bad input costs milliseconds."""
    check_sampling_args(args)
    inputs.integer("--num-points", args.num_points, MIN_POINTS, MAX_POINTS)
    if args.bottleneck:
        raise UserError("--bottleneck resizes image latents; it does not apply to point clouds (use --cache)")
    args.acceleration = acceleration_from_args(args)
    if args.prompt is not None:
        if not args.prompt.strip():
            raise UserError("empty prompt: --prompt needs some text")
        if not args.out:
            raise UserError("--prompt needs --out FILE.ply")
        if Path(args.out).suffix.lower() != POINT_SUFFIX:
            raise UserError(f"--out {args.out!r} must end in {POINT_SUFFIX} (a point cloud; --mesh adds "
                            f"{' and '.join(MESH_SUFFIXES)} beside it)")
        for path in [Path(args.out)] + (mesh_paths(Path(args.out)) if args.mesh else []):
            check_new_output(path, args.overwrite)
    elif not args.out_dir:
        raise UserError("--prompts needs --out-dir DIR")


def sample(pipe, prompt: str, seed: int, args, acceleration, output_type: str = "np"):
    """(points (N, 3), colours (N, 3) or None) of one prompt, seeded."""
    generator = torch.Generator(device="cpu").manual_seed(seed)
    out = pipe(prompt, negative_prompt=args.negative_prompt, num_inference_steps=args.steps,
               guidance_scale=args.guidance, generator=generator, num_points=args.num_points,
               output_type=output_type, acceleration=acceleration)
    return out.points[0], None if out.colours is None else out.colours[0]


def choose_cache(pipe, args, prompt: str, seed: int) -> None:
    """--quality-target: calibrate on the first prompt and its seed (PSNR over the points'
    coordinates mapped from [-1, 1] to [0, 1]; the same noise makes the points correspond)."""
    def draw(acceleration):
        points, _ = sample(pipe, prompt, seed, args, acceleration, "pt")
        return ((points.float()[None] + 1) / 2).clamp(0, 1)  # (1, N, 3)

    args.acceleration = acceleration_for_target(pipe, draw, args.quality_target, args.acceleration)


def write_outputs(ply: Path, points: np.ndarray, colours: np.ndarray | None, with_mesh: bool) -> list[str]:
    """The cloud's `.ply`, and with `with_mesh` its `.glb` and `.obj`, each written atomically;
    returns the names written, the `.ply` first. The mesh is made before anything is written."""
    meshes = []
    if with_mesh:
        try:
            mesh = mesh_from_points(points, colours)
        except ValueError as err:
            raise UserError(f"no mesh from this cloud: {err}") from None
        meshes = [(path, mesh) for path in mesh_paths(ply)]
    write_point_cloud(ply, points, colours)
    for path, mesh in meshes:
        write_mesh(path, mesh)
    return [ply.name] + [path.name for path, _ in meshes]


def finished(manifest: Manifest, with_mesh: bool) -> set[str]:
    """Keys of jobs whose outputs are all there: the `.ply`, and the meshes when --mesh asks for them
    (a batch first run without --mesh gets its meshes on a re-run with it)."""
    done = set()
    for row in manifest.rows():
        names = [row.get("path", "")] + ((row.get("meshes") or [None, None]) if with_mesh else [])
        if "key" in row and all(n and (manifest.folder / n).is_file() for n in names):
            done.add(row["key"])
    return done


def run_batch(pipe, jobs, args, cores: CoreShare) -> int:
    """Every prompt not yet in the manifest, each claimed first: processes sharing --out-dir split
    the work and never make a cloud twice."""
    out_dir = ensure_writable_dir(args.out_dir)
    manifest, claims = Manifest(out_dir), Claims(out_dir)
    done = finished(manifest, args.mesh)
    todo = [j for j in jobs if j.key not in done]
    pipe.set_progress_bar_config(leave=False, desc="steps")
    made = failed = skipped = 0
    for job in tqdm(todo, desc="prompts", unit="shape"):
        ply = out_dir / output_name(job, POINT_SUFFIX)
        names = [ply.name] + ([p.name for p in mesh_paths(ply)] if args.mesh else [])
        with claims.claim(ply.name) as mine:
            # another process has it, or finished it since we read the manifest
            if not mine or job.key in finished(manifest, args.mesh):
                skipped += 1
                continue
            remove_partial_writes(out_dir, names)  # what a killed run left of this job
            cores.share()
            try:
                points, colours = sample(pipe, job.prompt, job.seed, args, getattr(args, "acceleration", None))
                written = write_outputs(ply, points, colours, args.mesh)
            except UserError as err:  # a bad prompt is recorded and the batch goes on
                manifest.record_failure(job, str(err))
                failed += 1
                continue
            manifest.record(job, written[0], meshes=written[1:] or None, points=len(points),
                            coloured=colours is not None)
            made += 1
    return batch_summary(made, len(jobs) - len(todo), failed, skipped, manifest.path)


def main(argv: list[str] | None = None) -> int:
    return run_prompts_cli(build_parser().parse_args(argv), check_args, generate_all)


def generate_all(args, jobs, device, dtype, cores: CoreShare) -> int:
    """The model loaded once, then the batch or the single cloud."""
    pipe = load_t23d_pipeline(args.model, device, dtype)
    if args.scheduler:
        pipe.scheduler = make_scheduler(args.scheduler, pipe.scheduler)
    if args.quality_target is not None and (jobs is None or jobs):
        prompt, seed = (args.prompt, args.seed) if jobs is None else (jobs[0].prompt, jobs[0].seed)
        choose_cache(pipe, args, prompt, seed)
    if args.prompts:
        return run_batch(pipe, jobs, args, cores)
    points, colours = sample(pipe, args.prompt, args.seed, args, args.acceleration)
    out = Path(args.out)
    remove_partial_writes(out.parent, [out.name] + ([p.name for p in mesh_paths(out)] if args.mesh else []))
    written = write_outputs(out, points, colours, args.mesh)
    report_acceleration(pipe)
    print(f"wrote {', '.join(str(out.parent / name) for name in written)}", file=sys.stderr)
    return 0
