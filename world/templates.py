"""Shape templates stretched to a bounding box, upright or turned, and their IoU with a mask.

The strict reader asks of an object's mask: which of the four WORLD.md shapes, drawn to fill
exactly the mask's bounding box, overlaps it best? A template is the shape turned by `angle`
(counter-clockwise on screen, as `layout.Pose` turns it), whose own bounding box is then
stretched onto the mask's, x and y separately. A template is what the strict mask of a perfect
render would be: a pixel belongs to it when more than `level` of it is covered (the coverage at
which an anti-aliased edge pixel stands out by 60 from the background), and the box it fills
is the mask's shrunk by the sub-pixel distances from the box to the object's true edges. So
reference renders match their template at IoU ~0.97 even at 32x32, and what costs IoU is what
a person sees: ragged outlines, halos, specks. Turned templates read the frames of a spinning
clip; upright ones (angle 0) everything else.
"""

from __future__ import annotations

import math

import numpy as np

from .raster import inside_shape
from .vocab import CROSS_ARM, SHAPES

# Corners of each outline in units of the extent around the bbox centre (v down); a turned
# shape's bounding box is that of its turned corners. None: a circle, whose box never changes.
_ARM = CROSS_ARM / 2
CORNERS: dict[str, np.ndarray | None] = {
    "circle": None,
    "square": np.array([(-0.5, -0.5), (0.5, -0.5), (0.5, 0.5), (-0.5, 0.5)]),
    "triangle": np.array([(0.0, -0.5), (0.5, 0.5), (-0.5, 0.5)]),
    "cross": np.array([(-0.5, -_ARM), (-0.5, _ARM), (0.5, -_ARM), (0.5, _ARM),
                       (-_ARM, -0.5), (_ARM, -0.5), (-_ARM, 0.5), (_ARM, 0.5)]),
}

# The turn after which each shape looks the same again, in radians (a circle at any turn).
SYMMETRY: dict[str, float] = {"circle": 0.0, "square": math.pi / 2, "triangle": 2 * math.pi / 3,
                              "cross": math.pi / 2}

UPRIGHT = (0.0,)
ANGLE_STEP = math.radians(5)  # turned templates every 5 degrees: a corner misses by < 2.5 degrees
# A template stretched this much more one way than the other is no longer its shape (a 2:1 box
# holds a rectangle or an oval, not a square or a circle); WORLD.md shapes fill square boxes.
MAX_STRETCH = 1.3


def upright(shape: str) -> tuple[float, ...]:
    """The only angle tried for a still image or a clip that does not spin: 0."""
    return UPRIGHT


def turns(shape: str, step: float = ANGLE_STEP) -> tuple[float, ...]:
    """The angles (radians) worth trying for a turned `shape`: one symmetry period in `step`s."""
    if shape not in SYMMETRY:
        raise ValueError(f"unknown shape {shape!r}; expected one of {list(SHAPES)}")
    if SYMMETRY[shape] == 0.0:
        return UPRIGHT
    return tuple(float(a) for a in np.arange(0.0, SYMMETRY[shape] - 1e-9, step))


def turned_boxes(shape: str, angles) -> np.ndarray:
    """Bounding boxes (u0, v0, u1, v1) of `shape` turned by each angle, in units of its extent: (A, 4)."""
    angles = np.asarray(angles, dtype=np.float64).reshape(-1)             # (A,)
    corners = CORNERS[shape]
    if corners is None:
        return np.tile([-0.5, -0.5, 0.5, 0.5], (len(angles), 1))
    cos, sin = np.cos(angles)[:, None], np.sin(angles)[:, None]           # (A, 1)
    # shape coordinates (u, v) -> screen offsets: the inverse of raster's turn
    x = corners[:, 0] * cos + corners[:, 1] * sin                         # (A, K)
    y = -corners[:, 0] * sin + corners[:, 1] * cos
    return np.stack([x.min(1), y.min(1), x.max(1), y.max(1)], -1)


def templates(shape: str, width: int, height: int, angles=UPRIGHT, level: float = 0.5,
              insets: tuple[float, float, float, float] | None = None) -> np.ndarray:
    """`shape` turned by each angle and stretched onto a width x height pixel box: (A, height, width)
    bool, True where more than `level` of a pixel would be covered.

    `level` is the coverage at which the mask being matched starts: 60 / contrast for the strict
    mask of an anti-aliased object. A straight edge covers more than `level` of a pixel exactly
    when it passes within 0.5 - level of the pixel's centre, so a pixel is in the template when
    its centre or a point 0.5 - level away from it (in 8 directions) is inside the shape: exact
    at any level, where thresholding a supersampled coverage would be off by a sub-sample.
    Such a mask's box also reaches past the shape's true edges by a fraction of a pixel;
    `insets` (left, top, right, bottom), in pixels, say by how much, and the shape is stretched
    onto the box shrunk by them. Without them each side is inset by 0.5 - level, the average
    for an edge that falls anywhere within its pixel.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"box must be at least 1x1 pixels, got {width}x{height}")
    if not 0.0 < level <= 0.5:
        raise ValueError(f"level must lie in (0, 0.5], got {level}")
    reach = 0.5 - level
    left, top, right, bottom = (reach,) * 4 if insets is None else insets
    if left + right >= width or top + bottom >= height:  # negative insets (edges beyond the box) are fine
        raise ValueError(f"insets {insets} leave nothing of a {width}x{height} box")
    ring = np.arange(8) * np.pi / 4
    dx = np.concatenate([[0.0], reach * np.cos(ring)]) if reach > 0 else np.zeros(1)   # (S,) probe offsets, px
    dy = np.concatenate([[0.0], reach * np.sin(ring)]) if reach > 0 else np.zeros(1)
    fx = (np.arange(width) + 0.5 + dx[:, None] - left) / (width - left - right)        # (S, width) ~[0, 1]
    fy = (np.arange(height) + 0.5 + dy[:, None] - top) / (height - top - bottom)       # (S, height)
    boxes = turned_boxes(shape, angles)[:, None, :]                                    # (A, 1, 4)
    x = (boxes[..., 0:1] + fx * (boxes[..., 2:3] - boxes[..., 0:1]))[:, :, None, :]    # (A, S, 1, width)
    y = (boxes[..., 1:2] + fy * (boxes[..., 3:4] - boxes[..., 1:2]))[:, :, :, None]    # (A, S, height, 1)
    angles = np.asarray(angles, dtype=np.float64).reshape(-1, 1, 1, 1)
    cos, sin = np.cos(angles), np.sin(angles)
    return inside_shape(shape, x * cos - y * sin, x * sin + y * cos).any(axis=1)       # (A, height, width)


def best_iou(window: np.ndarray, shape: str, angles=UPRIGHT, level: float = 0.5,
             insets: tuple[float, float, float, float] | None = None) -> float:
    """Best IoU over `angles` of `shape`'s templates (at coverage `level`, box shrunk by `insets`)
    with a mask cropped to its bounding box: window (h, w) bool -> float in [0, 1]. A template
    stretched more than `MAX_STRETCH` times as much one way as the other counts 0."""
    h, w = window.shape
    t = templates(shape, w, h, angles, level, insets)                     # (A, h, w)
    inter = (t & window).sum(axis=(1, 2))
    union = (t | window).sum(axis=(1, 2))
    left, top, right, bottom = (0.5 - level,) * 4 if insets is None else insets
    boxes = turned_boxes(shape, angles)                                   # (A, 4)
    stretch = ((w - left - right) / (boxes[:, 2] - boxes[:, 0])) / ((h - top - bottom) / (boxes[:, 3] - boxes[:, 1]))
    fits = np.maximum(stretch, 1 / stretch) <= MAX_STRETCH                # (A,)
    return float(np.where(fits, inter / np.maximum(union, 1), 0.0).max())
