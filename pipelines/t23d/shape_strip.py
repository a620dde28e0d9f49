"""`python -m pipelines.t23d.shape_strip`: a PNG of a few generated point clouds, one row per prompt
(by default one held-out prompt per shape class), each row labelled with its prompt and what the 3D
reader (`world.reader3d`) reads back, the cloud drawn from a fixed view, and beside it Shapes
World's own sample of the same caption drawn the same way — so clouds can be judged without
opening `.ply` files (the README's picture for text to 3D).

    python -m pipelines.t23d.shape_strip --out docs/shapes3d.png --overwrite [--model PATH]
        [--prompts FILE] [--views 1] [--no-reference]

Each cloud is normalised as the world normalises a solid (centred on its bounding box, largest
coordinate magnitude 1) and splatted from elevation 20°, azimuth 30° (the orbit's sense: +z turning
towards +x; `--views N` adds N − 1 more azimuths spread round the turn), points as small discs,
darker with depth, points without colour in the world's neutral grey. Cube and pyramid have no
held-out combination, so their default prompts are training combinations (the label says which).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from world.reader3d import read_shape3d
from world.shapes3d import (SHAPES3D, Shape3DSpec, caption3d, is_held_out, normalise_points, parse_caption3d,
                            sample_shape3d, split_specs3d)

from ..core import inputs
from ..core.allocator import keep_freed_memory
from ..core.atomic import atomic_write
from ..core.cli import (ArgumentParser, add_sampling_args, check_new_output, check_sampling_args, figure_prompts,
                        parse_device, parse_dtype, quiet_libraries, run_cli)
from ..core.errors import UserError
from ..core.schedulers import make_scheduler
from .loading import load_t23d_pipeline
from .pipeline import MAX_POINTS, MIN_POINTS

TILE = 160              # one view of one cloud, px
ELEVATION_DEG = 20.0    # the world's orbit elevation (WORLD.md)
AZIMUTH_DEG = 30.0      # the first view; --views spreads the others round the turn
VIEW_DISTANCE = 5.0     # camera to origin
VIEW_FOV_DEG = 44.0     # the [-1, 1]³ box fits from any side (its corners at √3: asin(√3/5) ≈ 20.3°)
POINT_RADIUS = 2        # px: each point a disc of 21 pixels (5×5 less its corners)
NEAR_SHADE, FAR_SHADE = 1.0, 0.45   # brightness at the front and back of the [-1, 1]³ box
GREY = (0.5, 0.5, 0.5)  # points without colour: the neutral grey an uncoloured caption is trained with
TILE_BACKGROUND = (242, 242, 242)
LINE_H = 11             # caption line height, px
LABEL_W = 196           # the label column left of each row, px
MAX_VIEWS = 12
GAP = 16                # between the generated views and the reference views, px
WRONG = (190, 20, 20)   # label lines of attributes read wrong
NOTE = (90, 90, 90)


#################################################################################
#                              Points to pixels                                 #
#################################################################################

def splat_points(points: np.ndarray, colours: np.ndarray | None = None, size: int = TILE,
                 elevation_deg: float = ELEVATION_DEG, azimuth_deg: float = AZIMUTH_DEG,
                 radius: int = POINT_RADIUS, background=TILE_BACKGROUND) -> np.ndarray:
    """A cloud seen through a pinhole camera → uint8 image (size, size, 3).

    points (N, 3) in the world's frame (+y up); colours (N, 3) RGB in [0, 1], or None for grey.
    The camera sits at VIEW_DISTANCE from the origin, at `elevation_deg` above the xz plane and
    `azimuth_deg` round from +z towards +x, looking at the origin with a VIEW_FOV_DEG field of view.
    Every point is a disc of `radius` px, shaded from NEAR_SHADE to FAR_SHADE over the depth of the
    [-1, 1]³ box (a fixed range, so clouds compare across tiles); a z-buffer keeps the nearest
    fragment of each pixel. Points behind the camera, off the image or not finite are skipped.
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)                        # (N, 3)
    rgb = np.broadcast_to(np.asarray(GREY), points.shape) if colours is None else np.asarray(colours, np.float64)
    keep = np.isfinite(points).all(1) & np.isfinite(rgb).all(1)
    points, rgb = points[keep], np.clip(rgb[keep], 0, 1)                                # (M, 3), (M, 3)
    image = np.empty((size, size, 3), dtype=np.uint8)
    image[:] = background

    # camera frame: eye on the orbit, forward to the origin, right and up (+y of the world stays up)
    e, a = math.radians(elevation_deg), math.radians(azimuth_deg)
    eye = VIEW_DISTANCE * np.array([math.cos(e) * math.sin(a), math.sin(e), math.cos(e) * math.cos(a)])
    forward = -eye / np.linalg.norm(eye)
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    rel = points - eye                                                                  # (M, 3)
    x, y, depth = rel @ right, rel @ up, rel @ forward                                  # (M,) each
    front = depth > 1e-6
    x, y, depth, rgb = x[front], y[front], depth[front], rgb[front]

    # pinhole projection, pixel centres at +0.5: the origin lands at (size/2, size/2)
    focal = 0.5 * size / math.tan(math.radians(VIEW_FOV_DEG) / 2)
    u = size / 2 + focal * x / depth                                                    # (M,) column
    v = size / 2 - focal * y / depth                                                    # (M,) row
    reach = math.sqrt(3)
    shade = np.interp(depth, [VIEW_DISTANCE - reach, VIEW_DISTANCE + reach], [NEAR_SHADE, FAR_SHADE])
    colour = np.round(rgb * shade[:, None] * 255).astype(np.uint8)                     # (M, 3)

    # discs: every point's fragments at the offsets within `radius`
    dy, dx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    disc = dx ** 2 + dy ** 2 <= radius ** 2 + radius / 2                                # round, not diamond
    dx, dy = dx[disc], dy[disc]                                                         # (K,) each
    cols = np.floor(u)[:, None].astype(np.int64) + dx                                   # (M, K)
    rows = np.floor(v)[:, None].astype(np.int64) + dy                                   # (M, K)
    owner = np.broadcast_to(np.arange(len(depth))[:, None], cols.shape)                 # (M, K)
    inside = (cols >= 0) & (cols < size) & (rows >= 0) & (rows < size)
    pixel, owner = (rows * size + cols)[inside], owner[inside]                          # (F,) fragments

    # z-buffer: per pixel, the fragment of the nearest point
    order = np.lexsort((depth[owner], pixel))                                           # by pixel, then depth
    pixel, owner = pixel[order], owner[order]
    first = np.ones(len(pixel), dtype=bool)
    first[1:] = pixel[1:] != pixel[:-1]
    image.reshape(-1, 3)[pixel[first]] = colour[owner[first]]
    return image


def view_azimuths(views: int) -> list[float]:
    """The azimuths of `views` views: AZIMUTH_DEG, then evenly round the turn."""
    return [AZIMUTH_DEG + 360.0 * i / views for i in range(views)]


def render_views(points: np.ndarray, colours: np.ndarray | None, views: int) -> list[np.ndarray]:
    """A cloud (N, 3) normalised as the world normalises a solid, then splatted from each view:
    `views` images (TILE, TILE, 3). Non-finite points are left out before normalising."""
    points = np.asarray(points, dtype=np.float64)
    finite = np.isfinite(points).all(1)
    if finite.sum() >= 2:
        points, colours = normalise_points(points[finite]), None if colours is None else np.asarray(colours)[finite]
    return [splat_points(points, colours, azimuth_deg=a) for a in view_azimuths(views)]


#################################################################################
#                              Prompts and labels                               #
#################################################################################

def default_specs(split: str = "heldout", seed: int = 0) -> list[Shape3DSpec]:
    """One spec per shape class, in `SHAPES3D` order: a combination of `split` ('heldout': the ones
    training never shows, as the trainer's evaluation and `bench.t23d` draw them; 'any': all) in a
    seeded order. A class with no combination in the split (cube and pyramid have no held-out one)
    takes a training combination instead."""
    rng = np.random.default_rng(seed)
    specs = []
    for shape in SHAPES3D:
        pool = [s for s in split_specs3d(split) if s.shape == shape]
        pool = pool or [s for s in split_specs3d("train") if s.shape == shape]
        specs.append(pool[int(rng.integers(len(pool)))])
    return specs


def parse_or_none(prompt: str) -> Shape3DSpec | None:
    """The spec a prompt states, or None outside the 3D caption grammar."""
    try:
        return parse_caption3d(prompt)
    except ValueError:
        return None


def reference_cloud(prompt: str, num_points: int, seed: int) -> tuple[np.ndarray, np.ndarray | None] | None:
    """Shapes World's sample of a caption: (points (N, 3), colours (N, 3) or None), or None for a
    prompt outside the grammar."""
    spec = parse_or_none(prompt)
    if spec is None:
        return None
    sample = sample_shape3d(spec, rng=seed, num_points=num_points)
    return sample.points, sample.colours


def reading_lines(prompt: str, points: np.ndarray, colours: np.ndarray | None) -> list[tuple[str, tuple]]:
    """The label under a prompt, as (text, colour) lines: whether the prompt is a held-out
    combination, what `world.reader3d` reads back (shape, proportion, colour; wrong ones in red
    with what was asked), the Chamfer distance to the nearest template and a verdict."""
    spec = parse_or_none(prompt)
    lines = [("not a 3D caption" if spec is None else
              "held-out combination" if is_held_out(spec) else "training combination", NOTE)]
    try:
        got = read_shape3d(points, colours)
    except ValueError as err:  # non-finite points (a diverged model)
        return lines + [(f"not read: {err}", WRONG)]
    lines.append(("3D reader:", NOTE))
    want = None if spec is None else spec.as_dict()
    wrong = []
    for key, value in (("shape", got.shape), ("proportion", got.proportion), ("colour", got.colour)):
        shown = value or ("unstretched" if key == "proportion" else "none")
        if want is None or (key == "colour" and value is None and want["colour"] is None):
            lines.append((f"{key}: {shown}", (0, 0, 0)))
        elif key == "colour" and want["colour"] is None:  # a coloured model paints every cloud
            lines.append((f"{key}: {shown} (none asked)", (0, 0, 0)))
        elif value != want[key]:
            wrong.append(key)
            asked = want[key] or ("unstretched" if key == "proportion" else "none")
            lines.append((f"{key}: {shown} (asked {asked})", WRONG))
        else:
            lines.append((f"{key}: {shown}", (0, 0, 0)))
    lines.append((f"chamfer {got.chamfer:.4f}", NOTE))
    if want is not None:
        lines.append(("all read right" if not wrong else "wrong: " + ", ".join(wrong), WRONG if wrong else NOTE))
    return lines


def fit_text(draw: ImageDraw.ImageDraw, font, text: str, room: float) -> str:
    """`text`, cut short with an ellipsis where it would take more than `room` px."""
    if draw.textlength(text, font=font) <= room:
        return text
    while text and draw.textlength(text + "…", font=font) > room:
        text = text[:-1]
    return text.rstrip() + "…"


def wrap_text(draw: ImageDraw.ImageDraw, font, text: str, room: float, max_lines: int) -> list[str]:
    """`text` broken between words into at most `max_lines` lines of `room` px (the last line
    keeps what is left; `fit_text` cuts it short when it is drawn)."""
    words, lines = text.split(), []
    while words and len(lines) < max_lines - 1:
        take = len(words)
        while take > 1 and draw.textlength(" ".join(words[:take]), font=font) > room:
            take -= 1
        lines.append(" ".join(words[:take]))
        words = words[take:]
    return lines + ([" ".join(words)] if words else [])


def strip_image(prompts: list[str], generated: list[list[np.ndarray]], references: list[list[np.ndarray] | None] | None,
                labels: list[list[tuple[str, tuple]]] | None = None) -> Image.Image:
    """One row per prompt: the label column (prompt, then the reading), the generated cloud's views
    (TILE px each, 2 px apart) and, GAP px further right, the reference's same views ("no world
    sample" for a prompt outside the grammar). `generated[r]` / `references[r]`: the views of row r."""
    font = ImageFont.load_default()
    views = len(generated[0])
    block = views * (TILE + 2)
    width = LABEL_W + block + ((GAP + block) if references is not None else 0) + 8
    row_h = TILE + 8
    head = 2 * LINE_H + 6
    strip = Image.new("RGB", (width, head + len(prompts) * row_h), "white")
    draw = ImageDraw.Draw(strip)
    azimuths = ", ".join(f"{a % 360:g}°" for a in view_azimuths(views))
    draw.text((4, 2), "prompt · 3D reader", fill="black", font=font)
    draw.text((4, 2 + LINE_H), f"elevation {ELEVATION_DEG:g}°, azimuth {azimuths}", fill=NOTE, font=font)
    x0 = 4 + LABEL_W
    draw.text((x0, 2 + LINE_H), "generated", fill="black", font=font)
    if references is not None:
        draw.text((x0 + block + GAP, 2 + LINE_H), "Shapes World's sample", fill="black", font=font)
    room = LABEL_W - 8  # px a label line may take
    for r, prompt in enumerate(prompts):
        y = head + r * row_h
        wrapped = wrap_text(draw, font, prompt, room, max_lines=2)
        lines = [(line, (0, 0, 0)) for line in wrapped]
        lines += [] if labels is None else labels[r]
        for i, (text, fill) in enumerate(lines[: TILE // LINE_H]):
            draw.text((4, y + i * LINE_H), fit_text(draw, font, text, room), fill=fill, font=font)
        for j, view in enumerate(generated[r]):
            strip.paste(Image.fromarray(view), (x0 + j * (TILE + 2), y))
        if references is None:
            continue
        if references[r] is None:
            draw.text((x0 + block + GAP, y + TILE // 2), "no world sample", fill=NOTE, font=font)
        else:
            for j, view in enumerate(references[r]):
                strip.paste(Image.fromarray(view), (x0 + block + GAP + j * (TILE + 2), y))
    return strip


#################################################################################
#                                    The CLI                                    #
#################################################################################

def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m pipelines.t23d.shape_strip", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output PNG")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--prompts", default=None,
                   help="prompt file (default: one held-out Shapes World caption per shape class)")
    p.add_argument("--split", choices=("heldout", "any"), default="heldout", help="default prompts' split")
    p.add_argument("--views", type=int, default=1, help="views per cloud, round the turn from azimuth 30°")
    p.add_argument("--num-points", type=int, default=2048, help="points per cloud (and per reference)")
    p.add_argument("--no-reference", action="store_true", help="leave out the world's samples")
    add_sampling_args(p, default_steps=25, default_guidance=4.0)
    args = p.parse_args(argv)
    quiet_libraries()
    keep_freed_memory()

    def body() -> int:
        check_sampling_args(args)
        check_new_output(args.out, args.overwrite)
        if not 1 <= args.views <= MAX_VIEWS:
            raise UserError(f"--views must be between 1 and {MAX_VIEWS}, got {args.views}")
        inputs.integer("--num-points", args.num_points, MIN_POINTS, MAX_POINTS)
        prompts, seeds = figure_prompts(  # default: the shapes in turn
            args, lambda: [caption3d(s) for s in default_specs(args.split, seed=args.seed)])
        pipe = load_t23d_pipeline(args.model, parse_device(args.device), parse_dtype(args.dtype))
        if args.scheduler:
            pipe.scheduler = make_scheduler(args.scheduler, pipe.scheduler)
        pipe.set_progress_bar_config(disable=True)
        out = pipe(prompts, num_inference_steps=args.steps, guidance_scale=args.guidance, num_points=args.num_points,
                   generator=[torch.Generator().manual_seed(s) for s in seeds], output_type="np")
        colours = out.colours or [None] * len(prompts)
        generated = [render_views(pts, c, args.views) for pts, c in zip(out.points, colours)]
        labels = [reading_lines(q, pts, c) for q, pts, c in zip(prompts, out.points, colours)]
        references = None
        if not args.no_reference:
            clouds = [reference_cloud(q, args.num_points, s) for q, s in zip(prompts, seeds)]
            references = [None if c is None else render_views(*c, args.views) for c in clouds]
        strip = strip_image(prompts, generated, references, labels)
        atomic_write(Path(args.out), lambda tmp: strip.save(tmp, format="PNG"))
        print(f"wrote {args.out} ({len(prompts)} clouds)")
        return 0

    return run_cli(body)


if __name__ == "__main__":
    raise SystemExit(main())
