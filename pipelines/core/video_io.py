"""Clips to and from disk: mp4 / gif / a folder of PNGs out, videos, images and PNG folders in.

Every writer is atomic (a temp file or folder beside the target, renamed into place), so a
killed batch never leaves a half-written clip under its final name. Readers turn whatever a
user points `--init-frames` / `--keyframes` at into uint8 arrays and fail with a `UserError`
naming the path.
"""

from __future__ import annotations

import re
from pathlib import Path

import imageio_ffmpeg
import numpy as np
from PIL import Image, ImageSequence, UnidentifiedImageError

from .atomic import atomic_write, atomic_write_dir
from .errors import UserError

FORMATS = ("mp4", "gif", "frames")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v"}


# ---------------------------------------------------------------- arrays

def to_uint8(frames) -> np.ndarray:
    """(F, H, W, 3) float in [0, 1] or uint8 → contiguous uint8 (F, H, W, 3)."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"a clip is (frames, height, width, 3), got shape {frames.shape}")
    if frames.dtype != np.uint8:
        frames = (np.clip(frames, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    return np.ascontiguousarray(frames)


def pad_to_even(frames: np.ndarray) -> np.ndarray:
    """H.264 in yuv420p stores colour at half resolution, so odd sides are refused by the
    encoder; repeating the last row/column keeps every pixel and makes the sides even."""
    f, h, w, _ = frames.shape
    return np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")


# ---------------------------------------------------------------- writing

def write_mp4(path: Path, frames: np.ndarray, fps: float) -> None:
    """H.264 (libx264, yuv420p: plays everywhere), near-lossless crf 17, no resizing."""
    frames = pad_to_even(frames)
    _, h, w, _ = frames.shape
    # macro_block_size=1: imageio would otherwise rescale sides that are not multiples of 16
    writer = imageio_ffmpeg.write_frames(str(path), (w, h), fps=fps, codec="libx264", pix_fmt_out="yuv420p",
                                         quality=None, macro_block_size=1, ffmpeg_log_level="error",
                                         output_params=["-crf", "17"])
    writer.send(None)
    try:
        for frame in frames:
            writer.send(frame)
    finally:
        writer.close()


def write_gif(path: Path, frames: np.ndarray, fps: float) -> None:
    """An endlessly looping GIF. GIF timing is in 1/100 s, so fps is approximate; Pillow folds a
    frame identical to the one before into it (longer duration), so a still stretch plays the
    same but holds fewer frames."""
    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=1000.0 / fps,
                   loop=0, optimize=False)


def write_frame_folder(folder: Path, frames: np.ndarray) -> None:
    """frame_0000.png, frame_0001.png, … — lossless, and any tool can read them."""
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"frame_{i:04d}.png", format="PNG")


def write_clip(path: str | Path, frames, fps: float, fmt: str) -> None:
    """Writes frames (F, H, W, 3) — float in [0, 1] or uint8 — at `path` as mp4, gif or a folder
    of PNGs, atomically: the target appears complete or not at all."""
    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if not fps > 0:
        raise UserError(f"fps must be positive, got {fps}")
    frames = to_uint8(frames)
    path = Path(path)
    if fmt == "frames":
        atomic_write_dir(path, lambda tmp: write_frame_folder(tmp, frames))
    elif fmt == "gif":
        atomic_write(path, lambda tmp: write_gif(tmp, frames, fps))
    else:
        atomic_write(path, lambda tmp: write_mp4(tmp, frames, fps))


# ---------------------------------------------------------------- reading

def frame_number(path: Path) -> int | None:
    """The frame index in a file name: the last run of digits (`frame_0015.png`, `15.png`)."""
    digits = re.findall(r"\d+", path.stem)
    return int(digits[-1]) if digits else None


def read_image(path: str | Path) -> np.ndarray:
    """One image file → uint8 (H, W, 3)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"image not found: {path}")
    try:
        with Image.open(path) as image:
            return np.array(image.convert("RGB"))
    except (UnidentifiedImageError, OSError) as err:
        raise UserError(f"cannot read image {path}: {err}") from None


def image_files(folder: Path) -> list[Path]:
    """The image files in `folder`, in frame order (by the number in their names, then by name)."""
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
             and not p.name.startswith(".")]
    return sorted(files, key=lambda p: (frame_number(p) is None, frame_number(p) or 0, p.name))


def read_gif(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as gif:
            return np.stack([np.asarray(frame.convert("RGB")) for frame in ImageSequence.Iterator(gif)])
    except (UnidentifiedImageError, OSError) as err:
        raise UserError(f"cannot read GIF {path}: {err}") from None


def read_video_file(path: Path) -> np.ndarray:
    try:
        reader = imageio_ffmpeg.read_frames(str(path))
        meta = next(reader)
        w, h = meta["size"]
        frames = [np.frombuffer(raw, dtype=np.uint8).reshape(h, w, 3) for raw in reader]
    except (RuntimeError, OSError, StopIteration, KeyError, ValueError) as err:
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise UserError(f"cannot read video {path}: {first_line}") from None
    if not frames:
        raise UserError(f"video {path} has no frames")
    return np.stack(frames)


def read_clip(path: str | Path) -> np.ndarray:
    """A video file (mp4, gif, …), a folder of numbered images, or one image → uint8 (k, H, W, 3)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"frames not found: {path}")
    if path.is_dir():
        files = image_files(path)
        if not files:
            raise UserError(f"no image files (.png, .jpg, …) in folder {path}")
        frames = [read_image(f) for f in files]
        sizes = {f.shape for f in frames}
        if len(sizes) > 1:
            raise UserError(f"frames in {path} differ in size: {sorted(s[:2] for s in sizes)}")
        return np.stack(frames)
    suffix = path.suffix.lower()
    if suffix == ".gif":
        return read_gif(path)
    if suffix in IMAGE_SUFFIXES:
        return read_image(path)[None]
    if suffix in VIDEO_SUFFIXES:
        return read_video_file(path)
    raise UserError(f"cannot read frames from {path}: expected a video ({', '.join(sorted(VIDEO_SUFFIXES))}, "
                    f".gif), an image or a folder of images")


def read_keyframes(spec: str) -> dict[int, np.ndarray]:
    """`0=a.png,15=b.png`, or a folder of images named by frame index (`0.png`, `frame_0015.png`)
    → {frame index: uint8 (H, W, 3)}."""
    if Path(spec).is_dir():
        files = image_files(Path(spec))
        if not files:
            raise UserError(f"no image files (.png, .jpg, …) in keyframe folder {spec}")
        keyframes = {}
        for f in files:
            index = frame_number(f)
            if index is None:
                raise UserError(f"keyframe file {f} has no frame index in its name (e.g. 15.png)")
            if index in keyframes:
                raise UserError(f"two keyframe files in {spec} name frame {index}")
            keyframes[index] = read_image(f)
        return keyframes
    keyframes = {}
    for item in spec.split(","):
        index, sep, file = item.partition("=")
        if not sep or not file.strip():
            raise UserError(f"bad keyframe spec {spec!r}: expected INDEX=IMAGE[,INDEX=IMAGE…] or a folder")
        try:
            index = int(index.strip())
        except ValueError:
            raise UserError(f"keyframe index {index.strip()!r} in {spec!r} is not an integer") from None
        if index < 0:
            raise UserError(f"keyframe index {index} in {spec!r} must be >= 0")
        if index in keyframes:
            raise UserError(f"keyframe index {index} appears twice in {spec!r}")
        keyframes[index] = read_image(file.strip())
    return keyframes
