"""`python -m gaussians.write_world_clip`: a Shapes World 4D object's orbit clip on disk, in the form
`python -m gaussians.fit` reads: numbered PNG frames and a cameras.json.

    python -m gaussians.write_world_clip "a red cube spinning" --out clip/
    python -m gaussians.fit --frames clip/frames --cameras clip/cameras.json --out fitted/

    python -m gaussians.write_world_clip "a green torus still" --static --out views/
    python -m gaussians.fit --frames views/frames --cameras views/cameras.json --out fitted_static/

The clip is `gaussians.world_clip(caption, frames, size, seed)` (docs/WORLD.md's 4D objects: frame i
at time i / (n − 1), seen from camera i of the orbit: distance 4, elevation 20°, vertical FoV 40°, one
turn), on a black background. --out (a new folder; written whole or not at all):
    frames/frame_0000.png …   the clip, lossless
    cameras.json              Cameras.to_dict() (viewmats, Ks, width, height), "times" (one normalised
                              time per frame: a 4D fit) and "caption"; with --static no "times", so
                              `gaussians.fit` fits one still set of Gaussians (the motion must be "still")

An entry point like `gaussians.fit`: it uses pipelines.core (the parser, atomic writes), which the
`gaussians` package may not import; nothing imports this module. (It is not called
`gaussians.world_clip`: importing that would replace the `gaussians.world_clip` function.)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from gaussians.world_render import WORLD_SIZE, world_clip
from pipelines.core.atomic import atomic_write_dir
from pipelines.core.cli import ArgumentParser, check_new_output, run_cli
from pipelines.core.errors import UserError
from pipelines.core.video_io import write_frame_folder
from world.objects4d import NUM_FRAMES, caption4d, parse_caption4d


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m gaussians.write_world_clip", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("caption", help="'a <colour> <shape> <motion>', e.g. 'a red cube spinning'")
    p.add_argument("--out", required=True, help="output folder (new, unless --overwrite)")
    p.add_argument("--frames", type=int, default=NUM_FRAMES, help=f"frames (and cameras) (default {NUM_FRAMES})")
    p.add_argument("--size", type=int, default=WORLD_SIZE, help=f"pixels per side (default {WORLD_SIZE})")
    p.add_argument("--seed", type=int, default=0, help="seed of the object's surface points (default 0)")
    p.add_argument("--static", action="store_true",
                   help="no times in cameras.json: views of a still object for a static fit")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> int:
        try:
            spec = parse_caption4d(args.caption)
        except ValueError as err:
            raise UserError(str(err)) from None
        if args.static and spec.motion != "still":
            raise UserError(f"--static needs a still object ('a {spec.colour} {spec.shape} still'), "
                            f"got {args.caption!r}")
        if args.frames < 2:
            raise UserError(f"--frames must be >= 2 (a fit needs two views), got {args.frames}")
        if args.size < 8:
            raise UserError(f"--size must be >= 8 pixels, got {args.size}")
        out = check_new_output(args.out, args.overwrite, kind="folder")
        clip = world_clip(spec, n_frames=args.frames, size=args.size, seed=args.seed)
        frames = (clip.frames.numpy() * 255).round().astype(np.uint8)
        cameras = dict(clip.cameras.to_dict(), caption=caption4d(spec))
        if not args.static:
            cameras["times"] = [float(t) for t in clip.times]

        def write(tmp: Path) -> None:
            (tmp / "frames").mkdir()
            write_frame_folder(tmp / "frames", frames)
            (tmp / "cameras.json").write_text(json.dumps(cameras) + "\n")

        atomic_write_dir(out, write)
        kind = "still views" if args.static else "orbit clip"
        print(f"{out}: {caption4d(spec)}, {kind} of {args.frames} frames at {args.size}²", file=sys.stderr)
        return 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
