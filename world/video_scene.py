"""What one video clip shows (`VideoSpec`), which clips are possible, and how clips are drawn.

A clip is an `ImageSpec` plus a motion; `size` and `position` describe the first frame. Not
every combination can be drawn faithfully: a large square spinning in the top left would need
its centre outside its cell to stay inside the image, and a clip moving right needs room to
its right. `is_valid_clip` checks this under the worst-case jitter, and the sampler only draws
valid clips. The held-out split of a clip is the held-out split of its image attributes.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, fields

from .layout import MIN_TRAVEL, cell_of, clip_poses
from .scene import SPLITS, ImageSpec, as_rng, is_held_out
from .vocab import BACKGROUNDS, COLOURS, JITTER, MOTIONS, POSITIONS, SHAPES, SIZES

# Where a clip whose caption leaves out the position starts: where its motion has room.
DEFAULT_START: dict[str, str] = {
    "moving left": "right", "moving right": "left", "moving up": "bottom", "moving down": "top",
    "growing": "center", "shrinking": "center", "spinning": "center", "still": "center",
}


@dataclass(frozen=True)
class VideoSpec:
    """One object with one motion; `position` is where it starts (None: where its motion has room)."""

    colour: str
    shape: str
    size: str
    position: str | None
    background: str
    motion: str

    def __post_init__(self):
        if self.motion not in MOTIONS:
            raise ValueError(f"unknown motion {self.motion!r}; expected one of {list(MOTIONS)}")
        if self.motion == "spinning" and self.shape == "circle":
            raise ValueError("circles do not spin (WORLD.md)")
        self.image_spec()  # validates the other words

    @property
    def start_position(self) -> str:
        return self.position if self.position is not None else DEFAULT_START[self.motion]

    def image_spec(self) -> ImageSpec:
        """The first frame's attributes as an `ImageSpec`."""
        return ImageSpec(colour=self.colour, shape=self.shape, size=self.size,
                         position=self.start_position, background=self.background)

    def as_dict(self) -> dict[str, str | None]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@functools.lru_cache(maxsize=None)
def is_valid_clip(size: str, shape: str, position: str, motion: str) -> bool:
    """Whether every jitter keeps the first frame's centre in `position`'s cell and, for moving
    clips, lets the centre travel at least 1/3 of the side."""
    if motion == "spinning" and shape == "circle":
        return False
    for jx, jy in itertools.product((-JITTER, 0.0, JITTER), repeat=2):
        poses = clip_poses(shape, size, position, motion, side=1.0, num_frames=2, jitter=(jx, jy))
        if cell_of(poses[0].cx, poses[0].cy, 1.0) != POSITIONS[position]:
            return False
        travel = abs(poses[-1].cx - poses[0].cx) + abs(poses[-1].cy - poses[0].cy)
        if motion.startswith("moving") and travel < MIN_TRAVEL:
            return False
    return True


@functools.lru_cache(maxsize=None)
def video_split_specs(split: str, motion: str) -> tuple[VideoSpec, ...]:
    """All valid clips of one motion in one split, each with an explicit start position."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    specs = []
    for size, colour, shape, position, background in itertools.product(
            SIZES, COLOURS, SHAPES, POSITIONS, BACKGROUNDS):
        if not is_valid_clip(size, shape, position, motion):
            continue
        spec = VideoSpec(colour, shape, size, position, background, motion)
        if split == "any" or is_held_out(spec.image_spec()) == (split == "heldout"):
            specs.append(spec)
    return tuple(specs)


def sample_video_spec(rng, split: str = "train") -> VideoSpec:
    """A motion drawn uniformly, then a valid clip of that motion uniformly from `split`."""
    rng = as_rng(rng)
    while True:
        motion = MOTIONS[int(rng.integers(len(MOTIONS)))]
        specs = video_split_specs(split, motion)
        if specs:  # a tiny held-out split may lack a motion
            return specs[int(rng.integers(len(specs)))]
