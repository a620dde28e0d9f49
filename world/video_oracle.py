"""The tolerant oracle for clips: the first frame's attributes plus the motion, read from the object's track.

Not the default reader any more: `world.read_video` / `world.score_video` are the strict reader
(`strict_video_reader`); this one stays as `world.read_video_tolerant` / `world.score_video_tolerant`.

The first frame is read like a still image (a clip's size and position describe its start).
The motion comes from the object's alpha map over time: its centroid travelling at least 1/6
of the side is a move (real moves travel >= 1/3), its area changing by 1.5x is growing or
shrinking (real ones change >= 2x), and a fixed object whose orientation changes is spinning.
Orientation is read from normalised complex moments sum(alpha * z^k) / sum(alpha * |z|^k),
k = 2, 3, 4, around the centroid: turning the object by theta multiplies the k-th by
exp(i k theta), so they catch a square's or cross's 4-fold and a triangle's turn alike, and as
sums over the whole object they shrug off pixel noise. Thresholds sit well between the
clean values of still and moving objects, so blur and flicker in generated clips have room.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from .captions import parse_video_caption
from .oracle import read_image, tally
from .segment import segment
from .video_scene import VideoSpec

VIDEO_ATTRIBUTES = ("background", "colour", "shape", "size", "position", "motion")
MOVE_THRESHOLD = 1 / 6        # centroid travel, fraction of the side
AREA_THRESHOLD = 1.5          # last / first area
SPIN_THRESHOLD = 0.45         # largest change of an orientation moment vs the first frame
                              # (spinning >= 0.7; still <= 0.22 even under blur + noise)


def object_track(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame alpha (T, H, W), area (T,) and centroid (T, 2) as (x, y) in pixels."""
    alphas = []
    for frame in frames:
        found = segment(frame)
        alphas.append(found.alpha if found.alpha is not None else np.zeros(frame.shape[:2], np.float32))
    alpha = np.stack(alphas)                                        # (T, H, W)
    area = alpha.sum((1, 2))                                        # (T,)
    ys, xs = np.indices(alpha.shape[1:], dtype=np.float32) + 0.5
    safe = np.maximum(area, 1e-6)
    centre = np.stack([(alpha * xs).sum((1, 2)) / safe, (alpha * ys).sum((1, 2)) / safe], -1)
    return alpha, area, centre


def orientation_moments(alpha: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Normalised complex moments of orders 2, 3, 4 about each frame's centroid: (T, 3) complex.

    alpha: (T, H, W); centre: (T, 2) as (x, y).
    """
    ys, xs = np.indices(alpha.shape[1:], dtype=np.float32) + 0.5
    z = (xs - centre[:, 0, None, None]) + 1j * (ys - centre[:, 1, None, None])  # (T, H, W)
    moments = []
    for k in (2, 3, 4):
        zk = z ** k
        norm = np.maximum((alpha * np.abs(zk)).sum((1, 2)), 1e-6)
        moments.append((alpha * zk).sum((1, 2)) / norm)
    return np.stack(moments, -1)


def read_motion(frames: np.ndarray) -> str | None:
    """The motion word of a clip, uint8 (T, H, W, 3); None when no object is seen throughout."""
    alpha, area, centre = object_track(frames)
    return motion_of_track(alpha, area, centre, frames.shape[1])


def motion_of_track(alpha: np.ndarray, area: np.ndarray, centre: np.ndarray, side: int) -> str | None:
    """The motion word of an object's track: alpha (T, H, W) (soft or a 0/1 mask), area (T,) and
    centroid (T, 2) as (x, y) in pixels, on side x side frames; None when a frame shows nothing."""
    if area.min() < 0.5:
        return None
    dx, dy = centre[-1] - centre[0]
    if max(abs(dx), abs(dy)) >= MOVE_THRESHOLD * side:
        if abs(dx) >= abs(dy):
            return "moving right" if dx > 0 else "moving left"
        return "moving down" if dy > 0 else "moving up"
    ratio = area[-1] / area[0]
    if ratio >= AREA_THRESHOLD:
        return "growing"
    if ratio <= 1 / AREA_THRESHOLD:
        return "shrinking"
    moments = orientation_moments(alpha, centre)                    # (T, 3)
    turn = np.abs(moments - moments[0]).max()
    return "spinning" if turn >= SPIN_THRESHOLD else "still"


def read_video(frames: np.ndarray) -> dict[str, str | None]:
    """Attributes of a clip, uint8 (T, H, W, 3): the first frame's five plus the motion."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected a (T, H, W, 3) RGB clip, got shape {frames.shape}")
    return {**read_image(frames[0]), "motion": read_motion(frames)}


def video_prompt_attributes(prompt: str | VideoSpec) -> dict[str, str]:
    """What a clip prompt asks for: a canonical video caption's attributes, or a spec's."""
    if isinstance(prompt, VideoSpec):
        return {k: v for k, v in prompt.as_dict().items() if v is not None}
    return parse_video_caption(prompt)


def score_video(prompts: Sequence[str | VideoSpec], clips: Iterable[np.ndarray]) -> dict:
    """Like `oracle.score` for clips (T, H, W, 3): per-attribute accuracy over the prompts that
    state it (None if none does), 'joint' and 'n'."""
    clips = list(clips)
    if len(clips) != len(prompts):
        raise ValueError(f"{len(prompts)} prompts but {len(clips)} clips")
    return tally(((video_prompt_attributes(p), read_video(c)) for p, c in zip(prompts, clips)), VIDEO_ATTRIBUTES)
