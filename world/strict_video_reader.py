"""The strict reader for clips: the shape read in every frame, the motion from the strict mask.

Every frame gets the strict image reading (`strict_reader.look`): its mask, box, best template
IoU, background noise and stray components. The clip's shape is the shape most frames show,
and counts only when at least 90% of frames show it (a square that turns into a circle half
way is no square). A clip read as spinning is matched against templates turned every 5 degrees
over each shape's symmetry period, so a square at 45 degrees is still a square. Size, position,
colour and background come from the first frame; the motion from the track of the strict mask
(its pixel count and centroid, and its orientation moments for spinning), with the tolerant
reader's thresholds (`video_oracle.motion_of_track`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from .oracle import tally
from .strict_reader import CLEAN_IOU, CLEAN_NOISE, check_image, look, object_mask, reading_of
from .templates import turns, upright
from .video_oracle import VIDEO_ATTRIBUTES, motion_of_track, video_prompt_attributes
from .video_scene import VideoSpec

SHAPE_HOLD = 0.9  # share of frames that must show the clip's shape


@dataclass(frozen=True, eq=False)
class ClipReading(Mapping):
    """What the strict reader sees in one clip: the six attribute words and per-frame figures.

    It is also a read-only mapping of the six attributes (`reading["motion"]`, `.get`,
    `dict(r)`), so code written for the tolerant reader's dicts keeps working. Per-frame tuples
    have one entry per frame (T,).
    """

    background: str
    colour: str | None
    shape: str | None                       # the shape of >= 90% of frames, else None
    size: str | None
    position: str | None
    motion: str | None
    frame_shapes: tuple[str | None, ...]    # (T,) the shape each frame shows
    frame_iou: tuple[float, ...]            # (T,) best template IoU per frame
    frame_noise: tuple[float, ...]          # (T,) background noise per frame, RMS 0-255
    frame_strays: tuple[int, ...]           # (T,) stray components per frame

    def shape_share(self, shape: str) -> float:
        """The share of frames that show `shape`."""
        return sum(s == shape for s in self.frame_shapes) / len(self.frame_shapes)

    @property
    def frame_clean(self) -> tuple[bool, ...]:
        """(T,) whether each frame is clean: template IoU >= 0.85 and noise <= 6."""
        return tuple(i >= CLEAN_IOU and n <= CLEAN_NOISE for i, n in zip(self.frame_iou, self.frame_noise))

    def __getitem__(self, key: str):
        if key not in VIDEO_ATTRIBUTES:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self):
        return iter(VIDEO_ATTRIBUTES)

    def __len__(self) -> int:
        return len(VIDEO_ATTRIBUTES)


def mask_track(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Track of the strict masks (T, H, W) bool: alpha (T, H, W) float32 (the masks as 0/1),
    area (T,) in pixels and centroid (T, 2) as (x, y) in pixels."""
    alpha = masks.astype(np.float32)                                       # (T, H, W)
    area = alpha.sum((1, 2))                                               # (T,)
    ys, xs = np.indices(alpha.shape[1:], dtype=np.float32) + 0.5
    safe = np.maximum(area, 1e-6)
    centre = np.stack([(alpha * xs).sum((1, 2)) / safe, (alpha * ys).sum((1, 2)) / safe], -1)  # (T, 2)
    return alpha, area, centre


def clip_shape(frame_shapes: Sequence[str | None]) -> str | None:
    """The shape that at least `SHAPE_HOLD` of the frames show, else None."""
    counts = Counter(s for s in frame_shapes if s is not None)
    if not counts:
        return None
    shape, count = counts.most_common(1)[0]
    return shape if count >= SHAPE_HOLD * len(frame_shapes) else None


def read_video(frames: np.ndarray) -> ClipReading:
    """Strict reading of a clip, uint8 (T, H, W, 3): the first frame's background, colour, size
    and position, the shape of >= 90% of frames, the motion of the whole clip, and per-frame
    shape, template IoU, background noise and stray components."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1:
        raise ValueError(f"expected a (T, H, W, 3) RGB clip, got shape {frames.shape}")
    images = [check_image(f) for f in frames]                               # T x (H, W, 3) float32
    masks = [object_mask(im) for im in images]                              # T x ((3,), (H, W))
    side = frames.shape[1]
    motion = motion_of_track(*mask_track(np.stack([m for _, m in masks])), side)
    angles = turns if motion == "spinning" else upright
    looks = [look(im, angles, found) for im, found in zip(images, masks)]
    if any(seen.box is None for seen in looks):  # a frame without an object (or all noise) has no motion
        motion = None
    first = reading_of(looks[0], side)
    frame_shapes = tuple(seen.shape for seen in looks)
    return ClipReading(first.background, first.colour, clip_shape(frame_shapes), first.size, first.position,
                       motion, frame_shapes, tuple(seen.template_iou for seen in looks),
                       tuple(seen.noise for seen in looks), tuple(seen.strays for seen in looks))


def clip_fidelity(wanted: Sequence[dict], readings: Sequence[ClipReading]) -> dict[str, float | None]:
    """Fidelity over clips: 'shape_frames' (mean share of frames showing the prompt's shape, over
    clips whose prompt states one), and over all frames 'template_iou', 'noise' (means),
    'clean_frames' (share clean) and 'strays' (mean); None where there is nothing to average."""
    shares = [r.shape_share(w["shape"]) for w, r in zip(wanted, readings) if w.get("shape") is not None]
    if not readings:
        return {"shape_frames": None, "template_iou": None, "noise": None, "clean_frames": None, "strays": None}
    return {"shape_frames": float(np.mean(shares)) if shares else None,
            "template_iou": float(np.mean([i for r in readings for i in r.frame_iou])),
            "noise": float(np.mean([n for r in readings for n in r.frame_noise])),
            "clean_frames": float(np.mean([c for r in readings for c in r.frame_clean])),
            "strays": float(np.mean([s for r in readings for s in r.frame_strays]))}


def score_video(prompts: Sequence[str | VideoSpec], clips: Iterable[np.ndarray]) -> dict:
    """How often clips (T, H, W, 3) show what their prompts ask for, read strictly, and how cleanly.

    Returns {attribute: accuracy over the prompts that state it (None if none does), 'joint',
    'n', 'shape_frames': mean share of frames showing the prompt's shape, 'template_iou' and
    'noise': means over all frames, 'clean_frames': share of clean frames, 'strays': mean stray
    components per frame}.
    """
    clips = list(clips)
    if len(clips) != len(prompts):
        raise ValueError(f"{len(prompts)} prompts but {len(clips)} clips")
    wanted = [video_prompt_attributes(p) for p in prompts]
    readings = [read_video(c) for c in clips]
    return {**tally(zip(wanted, readings), VIDEO_ATTRIBUTES), **clip_fidelity(wanted, readings)}
