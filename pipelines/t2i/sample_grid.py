"""`python -m pipelines.t2i.sample_grid`: a PNG grid of generated images, each captioned with its prompt
(the README's sample grid, and a quick look at any model).

    python -m pipelines.t2i.sample_grid --out docs/samples.png --overwrite [--model PATH] [--prompts FILE] [--n 12]
    python -m pipelines.t2i.sample_grid --reference --out docs/samples_reference.png --overwrite

--reference draws no model: each cell is Shapes World's own render of its prompt
(`world.parse_caption` → `world.render_image`, the object at its cell's centre), the same prompts
in the same order, so the two grids can be set side by side. A prompt that leaves an attribute
out is drawn with `REFERENCE_DEFAULTS` for it; one outside the caption grammar gets a grey cell.
"""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

import torch
import numpy as np
from PIL import Image, ImageDraw, ImageFont

import world

from ..core.allocator import keep_freed_memory
from ..core.atomic import atomic_write
from ..core.cli import (ArgumentParser, add_sampling_args, check_new_output, check_sampling_args, figure_prompts,
                        parse_device, parse_dtype, quiet_libraries, run_cli)
from ..core.errors import UserError
from ..core.schedulers import make_scheduler
from .loading import load_t2i_pipeline


def grid_image(images: list[Image.Image], prompts: list[str], columns: int = 4, scale: int = 2,
               caption_lines: int = 4) -> Image.Image:
    """Tiles images (each upscaled `scale`× with nearest-neighbour, so pixels stay honest) with
    their prompts wrapped beneath."""
    font = ImageFont.load_default()
    w, h = images[0].size[0] * scale, images[0].size[1] * scale
    cell_w = max(w, 150)
    line_h = 11
    cell_h = h + caption_lines * line_h + 8
    rows = (len(images) + columns - 1) // columns
    grid = Image.new("RGB", (columns * cell_w, rows * cell_h), "white")
    draw = ImageDraw.Draw(grid)
    for i, (image, prompt) in enumerate(zip(images, prompts)):
        x, y = (i % columns) * cell_w, (i // columns) * cell_h
        grid.paste(image.resize((w, h), Image.NEAREST), (x + (cell_w - w) // 2, y + 2))
        for j, line in enumerate(textwrap.wrap(prompt, width=cell_w // 6)[:caption_lines]):
            draw.text((x + 3, y + h + 4 + j * line_h), line, fill="black", font=font)
    return grid


# what a reference render shows for an attribute its prompt leaves out
REFERENCE_DEFAULTS = {"size": "large", "position": "center", "background": "white"}


def reference_image(prompt: str, size: int = 64) -> Image.Image:
    """Shapes World's own render of `prompt` (size x size): attributes the prompt leaves out take
    `REFERENCE_DEFAULTS`, no jitter; a prompt outside the caption grammar gets a plain grey cell."""
    try:
        attrs = {**REFERENCE_DEFAULTS, **world.parse_caption(prompt)}
        return Image.fromarray(world.render_image(world.ImageSpec(**attrs), resolution=size))
    except ValueError:
        return Image.fromarray(np.full((size, size, 3), 200, dtype=np.uint8))


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m pipelines.t2i.sample_grid", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output PNG")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--prompts", default=None, help="prompt file (default: held-out Shapes World prompts)")
    p.add_argument("--n", type=int, default=12, help="number of prompts when no file is given")
    p.add_argument("--columns", type=int, default=4)
    p.add_argument("--reference", action="store_true",
                   help="draw Shapes World's own render of each prompt instead of a model's sample (no model)")
    p.add_argument("--reference-size", type=int, default=64, help="side of each reference render (default 64)")
    add_sampling_args(p, default_steps=25, default_guidance=4.0)
    args = p.parse_args(argv)
    quiet_libraries()
    keep_freed_memory()

    def body() -> int:
        check_sampling_args(args)
        check_new_output(args.out, args.overwrite)
        prompts, seeds = figure_prompts(args, lambda: world.eval_prompts(args.n, "heldout", seed=args.seed))
        if args.reference:
            if args.reference_size < 32:
                raise UserError(f"--reference-size must be at least 32 (WORLD.md), got {args.reference_size}")
            images = [reference_image(prompt, args.reference_size) for prompt in prompts]
        else:
            pipe = load_t2i_pipeline(args.model, parse_device(args.device), parse_dtype(args.dtype))
            if args.scheduler:
                pipe.scheduler = make_scheduler(args.scheduler, pipe.scheduler)
            images = [pipe(prompt, num_inference_steps=args.steps, guidance_scale=args.guidance,
                           generator=torch.Generator().manual_seed(seed)).images[0]
                      for prompt, seed in zip(prompts, seeds)]
        grid = grid_image(images, prompts, columns=args.columns)
        atomic_write(Path(args.out), lambda tmp: grid.save(tmp, format="PNG"))
        print(f"wrote {args.out} ({len(images)} {'reference renders' if args.reference else 'samples'})")
        return 0

    return run_cli(body)


if __name__ == "__main__":
    raise SystemExit(main())
