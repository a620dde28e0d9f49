"""Where the object sits, in pixels: centre, extent and rotation, for a still image or per frame.

Geometry follows WORLD.md: the centre starts in the middle of its 3x3 cell plus a jitter of at
most side/20, then moves toward the middle just enough for the object's footprint to lie fully
inside the image (a large object in the top left ends up at side/4, side/4). Coordinates are
continuous pixels: x to the right, y down, the image covering [0, side] x [0, side].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .vocab import CROSS_ARM, JITTER, POSITIONS, SIZES

GROWTH = 1.5               # growing/shrinking scale the extent by this: area x 2.25 (>= 2)
SPIN = math.pi / 2         # spinning turns the object by 90 degrees over a clip
MIN_TRAVEL = 1 / 3         # moving clips travel at least this fraction of the side

# Farthest point of each shape from its bounding-box centre, in units of its extent: the
# footprint radius of a spinning object.
ROTATION_RADIUS: dict[str, float] = {
    "circle": 0.5,
    "square": math.sqrt(0.5),
    "triangle": math.sqrt(0.5),                  # the base corners (+-1/2, +1/2)
    "cross": math.hypot(0.5, CROSS_ARM / 2),     # the arm corners (+-1/2, +-1/6)
}

# Direction of travel, (dx, dy), for each moving motion.
MOTION_DIRECTIONS: dict[str, tuple[int, int]] = {
    "moving left": (-1, 0), "moving right": (1, 0), "moving up": (0, -1), "moving down": (0, 1),
}


@dataclass(frozen=True)
class Pose:
    """The object in one frame: centre (cx, cy) and extent in pixels, angle in radians
    (counter-clockwise as seen on screen)."""

    cx: float
    cy: float
    extent: float
    angle: float = 0.0


def draw_jitter(rng: np.random.Generator | None, side: float) -> tuple[float, float]:
    """A centre offset uniform in [-side/20, side/20]^2; (0, 0) without an rng."""
    if rng is None:
        return 0.0, 0.0
    jx, jy = rng.uniform(-JITTER * side, JITTER * side, size=2)
    return float(jx), float(jy)


def cell_centre(position: str, side: float) -> tuple[float, float]:
    """Middle of the position's 3x3 cell, as (x, y)."""
    row, col = POSITIONS[position]
    return (col + 0.5) * side / 3, (row + 0.5) * side / 3


def cell_of(x: float, y: float, side: float) -> tuple[int, int]:
    """The (row, col) of the 3x3 cell holding point (x, y)."""
    col = min(max(int(math.floor(3 * x / side)), 0), 2)
    row = min(max(int(math.floor(3 * y / side)), 0), 2)
    return row, col


def clamp_centre(x: float, y: float, radius: float, side: float) -> tuple[float, float]:
    """Move (x, y) toward the middle just enough that a footprint of `radius` lies inside."""
    low, high = radius, side - radius
    if low > high:
        return side / 2, side / 2
    return min(max(x, low), high), min(max(y, low), high)


def image_pose(shape: str, size: str, position: str, side: float,
               jitter: tuple[float, float] = (0.0, 0.0)) -> Pose:
    """Pose of an upright object in a still image."""
    del shape  # every upright shape has an e x e bounding box
    extent = SIZES[size] * side
    x, y = cell_centre(position, side)
    cx, cy = clamp_centre(x + jitter[0], y + jitter[1], extent / 2, side)
    return Pose(cx, cy, extent)


def clip_poses(shape: str, size: str, position: str, motion: str, side: float, num_frames: int,
               jitter: tuple[float, float] = (0.0, 0.0)) -> list[Pose]:
    """One pose per frame for a video clip; `position` and `size` describe the first frame.

    moving <dir>: the centre travels in a straight line at constant speed until the object
      touches the far border; growing / shrinking: the extent goes linearly from e to e*1.5 /
      e/1.5; spinning: the angle goes from 0 to 90 degrees (circles never spin); still: fixed.
    The start is clamped with the footprint of the whole clip, so every frame lies inside.
    """
    if motion == "spinning" and shape == "circle":
        raise ValueError("circles do not spin (WORLD.md); pick another motion or shape")
    extent = SIZES[size] * side
    x, y = cell_centre(position, side)
    x, y = x + jitter[0], y + jitter[1]
    steps = np.linspace(0.0, 1.0, num_frames)  # (T,) from 0 at the first frame to 1 at the last

    if motion == "spinning":
        cx, cy = clamp_centre(x, y, extent * ROTATION_RADIUS[shape], side)
        return [Pose(cx, cy, extent, float(s) * SPIN) for s in steps]
    if motion in ("growing", "shrinking"):
        end = extent * GROWTH if motion == "growing" else extent / GROWTH
        cx, cy = clamp_centre(x, y, max(extent, end) / 2, side)
        return [Pose(cx, cy, extent + float(s) * (end - extent)) for s in steps]
    cx, cy = clamp_centre(x, y, extent / 2, side)
    if motion == "still":
        return [Pose(cx, cy, extent)] * num_frames
    if motion not in MOTION_DIRECTIONS:
        raise ValueError(f"unknown motion {motion!r}")
    dx, dy = MOTION_DIRECTIONS[motion]
    ex = _travel_end(dx, cx, extent / 2, side)
    ey = _travel_end(dy, cy, extent / 2, side)
    return [Pose(cx + float(s) * (ex - cx), cy + float(s) * (ey - cy), extent) for s in steps]


def _travel_end(direction: int, start: float, half: float, side: float) -> float:
    """Where a moving centre stops along one axis: where the object touches the far border."""
    if direction == 0:
        return start
    return side - half if direction > 0 else half
