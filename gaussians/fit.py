"""`python -m gaussians.fit`: 3D Gaussians from posed views, or moving ones from a clip with a camera and a
time per frame, written as standard 3DGS `.ply` files, an orbit render and a manifest.

    python -m gaussians.fit --frames views/ --cameras cameras.json --out fitted/
    python -m gaussians.fit --frames clip.mp4 --cameras cameras.json --out fitted4d/ --steps 1500

--frames: a folder of numbered images, a video or a GIF (one frame per camera, in order).
--cameras: JSON as `gaussians.Cameras.to_dict()` writes it (viewmats [C, 4, 4] world-to-camera with
OpenCV axes, Ks [C, 3, 3], width, height), or a `sequence.json` holding it under "cameras";
with a "times" list (one normalised time in [0, 1] per frame) the fit is 4D (`gaussians.fit4d`),
without it static (`gaussians.fit`). A 4D fit expects one object on a flat background of colour
--background (world clips: black): its track starts from the silhouettes.

--out (a new folder; written whole or not at all):
    static: gaussians.ply, orbit.mp4 (48 views around the origin), manifest.json
    4D:     frame_0000.ply … (one per input time), sequence.json (times, cameras), orbit.mp4 (time
            0 → 1 seen from an orbit at twice the input's frame count: views between the input's),
            manifest.json
Bad input (no cameras file, frames and cameras or times that differ in number or size, an
unreadable frame) ends with one `error:` line and exit code 2, before any fitting.

An entry point, not a library module: it uses pipelines.core (the parser, atomic writes, video
I/O), which the `gaussians` package may not import; nothing imports this module. On a machine
others share, idle OpenMP threads must sleep rather than spin (otherwise the rasteriser's small
kernels run up to 100× slower), so without OMP_WAIT_POLICY set the command restarts itself once,
first thing, with OMP_WAIT_POLICY=PASSIVE (OpenMP reads it only when it loads, with torch).
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__" and "OMP_WAIT_POLICY" not in os.environ:  # before torch's OpenMP loads again
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    os.execv(sys.executable, [sys.executable, "-m", "gaussians.fit", *sys.argv[1:]])

import argparse
import json
import math
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from gaussians.cameras import Cameras
from gaussians.fitting import FitConfig, psnr
from gaussians.fitting import fit as fit_static
from gaussians.fitting4d import Fit4DConfig, fit4d
from gaussians.ply import write_ply
from gaussians.sequence import write_ply_sequence
from pipelines.core.atomic import atomic_write_dir
from pipelines.core.cli import ArgumentParser, check_new_output, run_cli
from pipelines.core.errors import UserError
from pipelines.core.video_io import read_clip, write_mp4

ORBIT_VIEWS = 48
FPS = 12.0


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m gaussians.fit", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", required=True, help="folder of numbered images, a video or a GIF")
    p.add_argument("--cameras", required=True, help="cameras.json (Cameras.to_dict(), optional 'times')")
    p.add_argument("--out", required=True, help="output folder (new, unless --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    p.add_argument("--steps", type=int, default=None,
                   help=f"static: optimisation steps (default {FitConfig().steps}); 4D: motion-stage steps "
                        f"(default {Fit4DConfig().motion_steps})")
    p.add_argument("--static-steps", type=int, default=None,
                   help=f"4D: static-stage steps (default {Fit4DConfig().static.steps})")
    p.add_argument("--points", type=int, default=None,
                   help=f"random initial points (default {FitConfig().num_points})")
    p.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    p.add_argument("--background", default="0,0,0", help="R,G,B in [0, 1] behind the object (default 0,0,0)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


# ---------------------------------------------------------------------------------------------- input

def parse_background(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or not all(0 <= v <= 1 for v in values):
        raise UserError(f"--background must be three numbers in [0, 1] like 0,0,0, got {text!r}")
    return values


def read_cameras(path: str) -> tuple[Cameras, list[float] | None]:
    """Cameras and optional times from a cameras.json (or a sequence.json holding one)."""
    file = Path(path)
    if not file.is_file():
        raise UserError(f"cameras file not found: {file}")
    try:
        data = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"cannot read cameras file {file}: {err}") from None
    if not isinstance(data, dict):
        raise UserError(f"cameras file {file} must hold a JSON object (Cameras.to_dict())")
    times = data.get("times")
    cams = data.get("cameras") if isinstance(data.get("cameras"), dict) else data
    missing = [key for key in ("viewmats", "Ks", "width", "height") if key not in cams]
    if missing:
        raise UserError(f"cameras file {file} is not Cameras.to_dict(): no {', '.join(missing)}")
    if not all(type(cams[key]) in (int, float) and float(cams[key]).is_integer() for key in ("width", "height")):
        raise UserError(f"cameras file {file}: width and height must be whole numbers of pixels, "
                        f"got {cams['width']!r}×{cams['height']!r}")
    try:
        cameras = Cameras.from_dict(cams)
    except (TypeError, ValueError, RuntimeError) as err:
        raise UserError(f"cameras file {file} is not Cameras.to_dict() (viewmats, Ks, width, height): {err}") from None
    if not (torch.isfinite(cameras.viewmats).all() and torch.isfinite(cameras.Ks).all()):
        raise UserError(f"cameras file {file} holds non-finite numbers")
    if times is not None:
        if not isinstance(times, list) or not all(type(t) in (int, float) for t in times):  # not JSON true/false
            raise UserError(f"'times' in {file} must be a list of numbers")
        if len(times) != len(cameras):
            raise UserError(f"{file} has {len(cameras)} cameras but {len(times)} times")
        if not all(math.isfinite(t) and 0 <= t <= 1 for t in times):
            raise UserError(f"'times' in {file} must be normalised to [0, 1]")
    return cameras, times


def check_counts(frames: np.ndarray, cameras: Cameras, frames_arg: str, cameras_arg: str) -> None:
    if len(frames) != len(cameras):
        raise UserError(f"{len(frames)} frames in {frames_arg} but {len(cameras)} cameras in {cameras_arg}")
    h, w = frames.shape[1:3]
    if (h, w) != (cameras.height, cameras.width):
        raise UserError(f"frames in {frames_arg} are {w}×{h} but the cameras in {cameras_arg} are "
                        f"{cameras.width}×{cameras.height}")
    if len(frames) < 2:
        raise UserError(f"a fit needs at least 2 views, got {len(frames)} frame in {frames_arg}")


# ---------------------------------------------------------------------------------------------- output

def orbit_around(cameras: Cameras, n: int) -> Cameras:
    """An orbit of n views about the origin at the input cameras' mean distance (WORLD.md's elevation and FoV)."""
    distance = cameras.positions.norm(dim=-1).mean().item()
    return Cameras.orbit(n, cameras.width, cameras.height, distance=distance)


def render_frames(gaussians_at, cameras: Cameras, times, background) -> np.ndarray:
    """uint8 [n, H, W, 3] renders of `gaussians_at(t)` from each camera."""
    bg = torch.tensor([background], dtype=torch.float32)
    out = []
    with torch.no_grad():
        for i in range(len(cameras)):
            image, _, _ = gaussians_at(times[i]).render(cameras[i], backgrounds=bg)
            out.append((image[0].clamp(0, 1).numpy() * 255).round().astype(np.uint8))
    return np.stack(out)


def given(**values) -> dict:
    """The keyword arguments that were given (not None)."""
    return {k: v for k, v in values.items() if v is not None}


def psnr_u8(a: np.ndarray, b: np.ndarray) -> float:
    return psnr(torch.from_numpy(a).float() / 255, torch.from_numpy(b).float() / 255)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> int:
        background = parse_background(args.background)
        for flag in ("steps", "static_steps", "points"):
            value = getattr(args, flag)
            if value is not None and value < 1:
                raise UserError(f"--{flag.replace('_', '-')} must be >= 1, got {value}")
        if args.threads is not None:
            if args.threads < 1:
                raise UserError(f"--threads must be >= 1, got {args.threads}")
            torch.set_num_threads(args.threads)
        out = check_new_output(args.out, args.overwrite, kind="folder")
        cameras, times = read_cameras(args.cameras)
        frames = read_clip(args.frames)
        check_counts(frames, cameras, args.frames, args.cameras)
        images = torch.from_numpy(frames).float() / 255
        start = time.perf_counter()
        manifest = dict(frames=str(args.frames), cameras=str(args.cameras), num_frames=len(frames),
                        width=cameras.width, height=cameras.height, seed=args.seed, background=list(background))
        if times is None:
            if args.static_steps is not None:
                raise UserError("--static-steps is for 4D fits (a cameras file with 'times')")
            config = replace(FitConfig(), **given(steps=args.steps, num_points=args.points))
            model, log = fit_static(images, cameras, config, background=background, seed=args.seed,
                                    progress=not args.quiet)
            orbit = orbit_around(cameras, ORBIT_VIEWS)
            video = render_frames(lambda t: model, orbit, [0.0] * len(orbit), background)
            train = [psnr_u8(render_frames(lambda t: model, cameras[i], [0.0], background)[0], frames[i])
                     for i in range(len(cameras))]
            outputs = ["gaussians.ply", "orbit.mp4", "manifest.json"]
            manifest.update(kind="static", config=asdict(config), num_gaussians=len(model))

            def write(tmp: Path) -> None:
                write_ply(tmp / "gaussians.ply", model)
                write_mp4(tmp / "orbit.mp4", video, FPS)
                (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        else:
            default = Fit4DConfig()
            config = replace(default, static=replace(default.static, **given(steps=args.static_steps,
                                                                             num_points=args.points)),
                             **given(motion_steps=args.steps))
            t_in = torch.tensor(times, dtype=torch.float32)
            model, log = fit4d(images, cameras, t_in, config, background=background, seed=args.seed,
                               progress=not args.quiet)
            orbit = orbit_around(cameras, 2 * len(cameras))
            video = render_frames(model.at, orbit, torch.linspace(0, 1, len(orbit)), background)
            train = [psnr_u8(render_frames(model.at, cameras[i], t_in[i:i + 1], background)[0], frames[i])
                     for i in range(len(cameras))]
            outputs = [f"frame_{i:04d}.ply" for i in range(len(t_in))] + ["sequence.json", "orbit.mp4",
                                                                          "manifest.json"]
            manifest.update(kind="4d", config=asdict(config), num_gaussians=len(model), times=times)

            def write(tmp: Path) -> None:
                write_ply_sequence(tmp, model, t_in, cameras)
                write_mp4(tmp / "orbit.mp4", video, FPS)
                (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        manifest.update(seconds=round(time.perf_counter() - start, 1), fit_seconds=round(log.seconds, 1),
                        train_psnr_db=round(float(np.mean(train)), 2), outputs=outputs,
                        log=dict(steps=log.steps, psnr=[round(p, 2) for p in log.psnrs],
                                 num_gaussians=log.num_gaussians, stages=log.stages))
        atomic_write_dir(out, write)
        print(f"{out}: {manifest['kind']} fit of {len(frames)} frames, {len(model)} Gaussians, "
              f"{manifest['train_psnr_db']:.1f} dB on the input views, {manifest['seconds']:.0f} s", file=sys.stderr)
        return 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
