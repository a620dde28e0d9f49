"""`python -m pipelines.t2v.clip_strip`: a PNG of a few frames of a few clips, one row per clip
(by default one held-out prompt per motion), each row labelled with its prompt and what the strict
reader sees in it, and beside it the frames of Shapes World's own render of the same prompt — so
clips can be judged without opening video files (the README's clip strip).

    python -m pipelines.t2v.clip_strip --out docs/clips.png --overwrite [--model PATH]
        [--first-frame-model auto|none|PATH] [--prompts FILE] [--frames-shown 8] [--no-reference]

Frames shown are spread evenly from the first to the last. The reference is drawn without jitter;
attributes a prompt leaves out take `REFERENCE_DEFAULTS` (motion: still).
"""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

import world

from ..core.allocator import keep_freed_memory
from ..core.atomic import atomic_write
from ..core.cli import (ArgumentParser, add_sampling_args, check_new_output, check_sampling_args, figure_prompts,
                        parse_device, parse_dtype, quiet_libraries, run_cli)
from ..core.errors import UserError
from ..core.schedulers import make_scheduler
from .first_frame import add_first_frame_arg, configure_first_frame_model
from .loading import load_t2v_pipeline

REFERENCE_DEFAULTS = {"size": "large", "background": "white", "motion": "still"}
LINE_H = 11   # caption line height, px
GAP = 16      # between the generated frames and the reference frames, px


def reference_clip(prompt: str, num_frames: int, size: int) -> np.ndarray | None:
    """Shapes World's render of a clip prompt, uint8 (T, H, W, 3), or None outside the grammar (or a
    clip the world does not have, such as a spinning circle)."""
    try:
        attrs = {**REFERENCE_DEFAULTS, **world.parse_video_caption(prompt)}
        spec = world.VideoSpec(attrs["colour"], attrs["shape"], attrs["size"], attrs.get("position"),
                               attrs["background"], attrs["motion"])
        return world.render_video(spec, num_frames=num_frames, resolution=size)
    except ValueError:
        return None


def shown_frames(num_frames: int, count: int) -> list[int]:
    """`count` frame indices spread evenly over the clip, first and last included."""
    count = max(1, min(count, num_frames))
    return sorted({int(round(i)) for i in np.linspace(0, num_frames - 1, count)})


def reading_note(prompt: str, clip: np.ndarray) -> str:
    """What the strict reader sees in a clip, in a line: the share of frames with the prompt's shape,
    the motion read, and the attributes that differ from the prompt."""
    got = world.read_video(clip)
    try:
        want = world.parse_video_caption(prompt)
    except ValueError:
        return f"strict reader: {got.shape or 'no steady shape'}, {got.motion or 'no motion'}"
    parts = []
    if "shape" in want:
        parts.append(f"{want['shape']} in {sum(s == want['shape'] for s in got.frame_shapes)}/{len(clip)} frames")
    parts.append(f"motion: {got.motion or 'none'}")
    wrong = [k for k, v in want.items() if got.get(k) != v]
    parts.append("all read right" if not wrong else "wrong: " + ", ".join(wrong))
    return "strict reader: " + " · ".join(parts)


def strip_image(prompts: list[str], clips: list[np.ndarray], references: list[np.ndarray | None] | None,
                notes: list[str] | None = None, frames_shown: int = 8, scale: int = 2) -> Image.Image:
    """One row per clip: its label (prompt, then the note) above the shown frames (each upscaled
    `scale`x nearest-neighbour, so pixels stay honest), and the reference's same frames to the right."""
    font = ImageFont.load_default()
    t, h, w = clips[0].shape[:3]
    idx = shown_frames(t, frames_shown)
    fw, fh = w * scale, h * scale
    block = len(idx) * (fw + 2)
    width = block + ((GAP + block) if references is not None else 0) + 8
    label_lines = 2
    row_h = label_lines * LINE_H + fh + 10
    head = 2 * LINE_H + 6
    strip = Image.new("RGB", (width, head + len(clips) * row_h), "white")
    draw = ImageDraw.Draw(strip)
    numbers = "  ".join(str(i) for i in idx)
    draw.text((4, 2), f"generated (frames {numbers})", fill="black", font=font)
    if references is not None:
        draw.text((4 + block + GAP, 2), "Shapes World's render of the same prompt", fill="black", font=font)
    for r, (prompt, clip) in enumerate(zip(prompts, clips)):
        y = head + r * row_h
        draw.text((4, y), textwrap.shorten(prompt, width=width // 6), fill="black", font=font)
        if notes is not None:
            draw.text((4, y + LINE_H), textwrap.shorten(notes[r], width=width // 6), fill=(90, 90, 90), font=font)
        y += label_lines * LINE_H + 2
        for j, f in enumerate(idx):
            strip.paste(Image.fromarray(clip[f]).resize((fw, fh), Image.NEAREST), (4 + j * (fw + 2), y))
        reference = None if references is None else references[r]
        if reference is not None:
            for j, f in enumerate(idx):
                strip.paste(Image.fromarray(reference[f]).resize((fw, fh), Image.NEAREST),
                            (4 + block + GAP + j * (fw + 2), y))
    return strip


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m pipelines.t2v.clip_strip", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output PNG")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--prompts", default=None, help="prompt file (default: one held-out Shapes World clip per motion)")
    p.add_argument("--split", choices=("heldout", "any"), default="heldout", help="default prompts' split")
    p.add_argument("--frames-shown", type=int, default=8, help="frames shown per clip, spread first to last")
    p.add_argument("--no-reference", action="store_true", help="leave out the reference renders")
    add_first_frame_arg(p)
    add_sampling_args(p, default_steps=25, default_guidance=4.0)
    args = p.parse_args(argv)
    quiet_libraries()
    keep_freed_memory()

    def body() -> int:
        check_sampling_args(args)
        check_new_output(args.out, args.overwrite)
        if args.frames_shown < 1:
            raise UserError(f"--frames-shown must be at least 1, got {args.frames_shown}")
        prompts, seeds = figure_prompts(  # default: the motions in turn
            args, lambda: world.video_eval_prompts(len(world.MOTIONS), args.split, seed=args.seed))
        pipe = load_t2v_pipeline(args.model, parse_device(args.device), parse_dtype(args.dtype))
        configure_first_frame_model(pipe, args.first_frame_model)
        if args.scheduler:
            pipe.scheduler = make_scheduler(args.scheduler, pipe.scheduler)
        pipe.set_progress_bar_config(disable=True)
        out = pipe(prompts, num_inference_steps=args.steps, guidance_scale=args.guidance, output_type="np",
                   generator=[torch.Generator().manual_seed(s) for s in seeds]).frames
        clips = [(np.clip(np.asarray(c), 0, 1) * 255).round().astype(np.uint8) for c in out]
        t, h = clips[0].shape[:2]
        references = None if args.no_reference else [reference_clip(q, t, h) for q in prompts]
        notes = [reading_note(q, c) for q, c in zip(prompts, clips)]
        strip = strip_image(prompts, clips, references, notes, args.frames_shown)
        atomic_write(Path(args.out), lambda tmp: strip.save(tmp, format="PNG"))
        print(f"wrote {args.out} ({len(clips)} clips)")
        return 0

    return run_cli(body)


if __name__ == "__main__":
    raise SystemExit(main())
