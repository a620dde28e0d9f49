"""The strict reader: an image read back the way a person sees it, with fidelity figures.

The tolerant reader (`oracle`) sums soft alpha over the largest blob, so halos, stray specks
and blur barely move it. This one looks at every pixel that stands out:

- background colour: the median of the border pixels; its word the nearest background;
- object mask: every pixel more than 60 (RGB distance, 0-255) from that colour, halo and
  stray speckles included;
- size: the mask's bounding-box extent (larger side), small below 0.42 of the image side;
- position: the 3x3 cell of the bounding box's centre;
- shape: the WORLD.md template (circle, square, triangle, cross) stretched to the box with the
  best IoU against the mask (`templates`); no shape when even the best is below 0.7 (a circle's
  template overlaps a square's at 0.79, so a real shape is far above that and a blob below),
  when the box is under 4 px, or when the box is no square (a template stretched 1.3x more one
  way than the other fits a rectangle or an oval, not a WORLD.md shape);
- colour: the palette word nearest the median of the largest component's core (its pixels
  farthest from the background, so a halo does not tint it).

Fidelity per image: that best template IoU, the background noise (RMS RGB distance from their
median of the pixels away from the object: outside the largest component's box grown by 2 px,
specks included) and the number of stray components (mask components other than the largest).
An image is clean when its template IoU is at least 0.85 and its noise at most 6. When the
noise itself reaches 60, nothing stands out from the background and no object is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np

from .components import label_components
from .layout import cell_of
from .oracle import ATTRIBUTES, prompt_attributes, tally
from .scene import ImageSpec
from .segment import border_pixels, nearest, nearest_colour
from .templates import best_iou, upright
from .vocab import BACKGROUNDS, POSITIONS, SHAPES

MASK_DISTANCE = 60.0    # RGB distance (0-255) from the background beyond which a pixel is object
SIZE_THRESHOLD = 0.42   # bbox extent / side: small below, large above (small 1/3, large 1/2)
SHAPE_MIN_IOU = 0.7     # below this best template IoU the object is no shape at all
MIN_SHAPE_PX = 4        # a box narrower than this shows no shape (WORLD.md's smallest: 7 px)
CORE_SHARE = 0.8        # colour from pixels at least this share as far out as the object's 90th percentile
NOISE_MARGIN = 2        # pixels within this many of the object's box are not background for the noise
CLEAN_IOU = 0.85        # a clean sample: template IoU at least this ...
CLEAN_NOISE = 6.0       # ... and background noise at most this (RMS, 0-255)

_BACKGROUND_NAMES = list(BACKGROUNDS)
_BACKGROUND_RGB = np.array(list(BACKGROUNDS.values()), dtype=np.float32)  # (3, 3)
_POSITION_OF_CELL = {cell: word for word, cell in POSITIONS.items()}


# ---------------------------------------------------------------------------- what one image shows

@dataclass(frozen=True)
class Look:
    """The strict mask of one image and what it shows, before any word is chosen.

    box is (x0, y0, x1, y1) in pixels, end-exclusive, None without an object; ious holds each
    shape's best template IoU (empty without an object).
    """

    background_rgb: np.ndarray            # (3,) median of the border
    mask: np.ndarray                      # (H, W) bool, the object's pixels, strays included
    box: tuple[int, int, int, int] | None
    object_rgb: np.ndarray | None         # (3,) median of the largest component's core (`core_colour`)
    ious: dict[str, float]                # shape -> best template IoU
    noise: float                          # background noise, RMS RGB distance (0-255)
    strays: int                           # mask components other than the largest

    @property
    def template_iou(self) -> float:
        """The best IoU of any template; 0 without an object."""
        return max(self.ious.values(), default=0.0)

    @property
    def shape(self) -> str | None:
        """The best-fitting shape, None without an object or below `SHAPE_MIN_IOU`."""
        if not self.ious or self.template_iou < SHAPE_MIN_IOU:
            return None
        return max(self.ious, key=self.ious.get)


def check_image(img: np.ndarray) -> np.ndarray:
    """A square RGB image (H, W, 3) as float32, or a ValueError naming the bad shape."""
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[-1] != 3 or img.shape[0] != img.shape[1] or img.shape[0] < 3:
        raise ValueError(f"expected a square (H, W, 3) RGB image at least 3x3, got shape {img.shape}")
    return img.astype(np.float32)


def object_mask(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Background colour (3,) (median of the border) and object mask (H, W) bool of a float
    (H, W, 3) image: every pixel farther than `MASK_DISTANCE` from that colour."""
    background = np.median(border_pixels(img), axis=0)                    # (3,)
    distance = np.sqrt(((img - background) ** 2).sum(-1))                 # (H, W)
    return background, distance > MASK_DISTANCE


def core_colour(img: np.ndarray, component: np.ndarray, background: np.ndarray) -> np.ndarray:
    """The object's own colour (3,): the median of the pixels of a component (H, W) bool of img
    (H, W, 3) that stand out most from the background (3,), at least `CORE_SHARE` as far from it
    as the component's 90th percentile. A halo or a blurred rim lies nearer the background and is
    left out, where the median of all the object's pixels would drift toward it."""
    pixels = img[component]                                               # (N, 3)
    distance = np.sqrt(((pixels - background) ** 2).sum(-1))             # (N,)
    core = distance >= CORE_SHARE * np.percentile(distance, 90)
    return np.median(pixels[core], axis=0)


def mask_level(object_rgb: np.ndarray, background: np.ndarray) -> float:
    """The coverage at which an anti-aliased object of colour object_rgb (3,) on background (3,)
    enters the mask: `MASK_DISTANCE` over their distance, kept within [0.05, 0.5]."""
    contrast = float(np.sqrt(((object_rgb - background) ** 2).sum()))
    return min(max(MASK_DISTANCE / max(contrast, 1e-6), 0.05), 0.5)


def edge_insets(img: np.ndarray, mask: np.ndarray, box: tuple[int, int, int, int], object_rgb: np.ndarray,
                background: np.ndarray, level: float) -> tuple[float, float, float, float]:
    """How far (px) inside the mask's box the object's edges lie: (left, top, right, bottom),
    each within [-level, 1 - level] (negative: the edge lies outside the box).

    img (H, W, 3) float, mask (H, W) bool. A pixel's coverage is read from its colour (its place
    on the line from background to object colour). A straight edge at a - for the left side -
    covers 1 - (a - x0) of the box's first column and x0 - a of the column before it (which
    stays below `level`, or it would be in the mask), so a - x0 = 1 - (first + before), with
    the best-covered pixel of each column standing for the column.
    """
    x0, y0, x1, y1 = box
    direction = object_rgb - background                                   # (3,)
    alpha = ((img - background) @ direction) / max(float(direction @ direction), 1e-6)  # (H, W)
    inner = np.where(mask, np.clip(alpha, level, 1.0), 0.0)               # (H, W) the box's edge pixels
    outer = np.clip(alpha, 0.0, level)                                    # (H, W) just outside the box
    h, w = mask.shape
    firsts = (inner[y0:y1, x0].max(), inner[y0, x0:x1].max(), inner[y0:y1, x1 - 1].max(), inner[y1 - 1, x0:x1].max())
    befores = (outer[y0:y1, x0 - 1].max() if x0 > 0 else 0.0, outer[y0 - 1, x0:x1].max() if y0 > 0 else 0.0,
               outer[y0:y1, x1].max() if x1 < w else 0.0, outer[y1, x0:x1].max() if y1 < h else 0.0)
    return tuple(float(1.0 - first - before) for first, before in zip(firsts, befores))


def bounding_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1), end-exclusive, of a (H, W) bool mask; None if it is empty."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if rows.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def background_noise(img: np.ndarray, box: tuple[int, int, int, int] | None) -> float:
    """RMS RGB distance (0-255) from their median of the pixels away from the object: those of
    img (H, W, 3) float outside its box (x0, y0, x1, y1) grown by `NOISE_MARGIN` px (all pixels
    when box is None). Stray specks out there count as the grain they are. The border ring
    stands in when the object leaves fewer than 8 such pixels."""
    away = np.ones(img.shape[:2], dtype=bool)                             # (H, W)
    if box is not None:
        x0, y0, x1, y1 = box
        away[max(y0 - NOISE_MARGIN, 0):y1 + NOISE_MARGIN, max(x0 - NOISE_MARGIN, 0):x1 + NOISE_MARGIN] = False
    pixels = img[away] if away.sum() >= 8 else border_pixels(img)         # (N, 3)
    spread = pixels - np.median(pixels, axis=0)
    return float(np.sqrt((spread ** 2).sum(-1).mean()))


def template_ious(img: np.ndarray, mask: np.ndarray, box: tuple[int, int, int, int], object_rgb: np.ndarray,
                  background: np.ndarray, angles: Callable[[str], Sequence[float]]) -> dict[str, float]:
    """Each shape's best template IoU with the mask (H, W) bool inside its box, over the turns
    `angles(shape)`; empty when the box is too small (< `MIN_SHAPE_PX`) to show a shape."""
    x0, y0, x1, y1 = box
    if min(x1 - x0, y1 - y0) < MIN_SHAPE_PX:
        return {}
    window = mask[y0:y1, x0:x1]                                           # (h, w)
    level = mask_level(object_rgb, background)
    insets = edge_insets(img, mask, box, object_rgb, background, level)
    return {shape: best_iou(window, shape, angles(shape), level, insets) for shape in SHAPES}


def look(img: np.ndarray, angles: Callable[[str], Sequence[float]] = upright,
         found: tuple[np.ndarray, np.ndarray] | None = None) -> Look:
    """The strict mask of a square RGB image (H, W, 3) and its figures.

    angles: shape -> the turns (radians) at which its template is tried; `templates.upright`
    by default, `templates.turns` for the frames of a spinning clip. found: a precomputed
    `object_mask(img)`, to skip computing it again. When the background's own noise reaches
    `MASK_DISTANCE`, no object can stand out from it and none is read.
    """
    img = check_image(img)
    background, mask = object_mask(img) if found is None else found
    box = bounding_box(mask)
    if box is None:
        return Look(background, mask, None, None, {}, background_noise(img, None), 0)
    labels, sizes = label_components(mask)
    largest = labels == 1
    noise = background_noise(img, bounding_box(largest))
    if noise >= MASK_DISTANCE:
        return Look(background, mask, None, None, {}, noise, len(sizes) - 1)
    object_rgb = core_colour(img, largest, background)
    ious = template_ious(img, mask, box, object_rgb, background, angles)
    return Look(background, mask, box, object_rgb, ious, noise, len(sizes) - 1)


def background_word(rgb: np.ndarray) -> str:
    """The background word nearest to one RGB colour (3,)."""
    return _BACKGROUND_NAMES[int(nearest(np.asarray(rgb, dtype=np.float32), _BACKGROUND_RGB))]


def size_word(box: tuple[int, int, int, int], side: int) -> str:
    """'small' or 'large' from a bounding box's larger side over the image side."""
    x0, y0, x1, y1 = box
    return "large" if max(x1 - x0, y1 - y0) / side > SIZE_THRESHOLD else "small"


def position_word(box: tuple[int, int, int, int], side: int) -> str:
    """The position word of the 3x3 cell holding the bounding box's centre."""
    x0, y0, x1, y1 = box
    return _POSITION_OF_CELL[cell_of((x0 + x1) / 2, (y0 + y1) / 2, side)]


# ---------------------------------------------------------------------------- reading and scoring

@dataclass(frozen=True, eq=False)
class ImageReading(Mapping):
    """What the strict reader sees in one image: the five attribute words and the fidelity figures.

    It is also a read-only mapping of the five attributes (`reading["shape"]`, `.get`, `dict(r)`,
    `reading == spec.as_dict()`), so code written for the tolerant reader's dicts keeps working.
    A word is None when it cannot be told (no object; no shape fits).
    """

    background: str
    colour: str | None
    shape: str | None
    size: str | None
    position: str | None
    template_iou: float    # best IoU of any template stretched to the mask's box; 0 without an object
    noise: float           # background noise, RMS RGB distance (0-255) from its median
    strays: int            # mask components other than the largest

    @property
    def clean(self) -> bool:
        """Template IoU at least `CLEAN_IOU` and background noise at most `CLEAN_NOISE`."""
        return self.template_iou >= CLEAN_IOU and self.noise <= CLEAN_NOISE

    def __getitem__(self, key: str):
        if key not in ATTRIBUTES:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self):
        return iter(ATTRIBUTES)

    def __len__(self) -> int:
        return len(ATTRIBUTES)


def reading_of(seen: Look, side: int) -> ImageReading:
    """The words and figures of one `look` at a side x side image."""
    if seen.box is None:
        return ImageReading(background_word(seen.background_rgb), None, None, None, None,
                            0.0, seen.noise, seen.strays)
    return ImageReading(background_word(seen.background_rgb), nearest_colour(seen.object_rgb), seen.shape,
                        size_word(seen.box, side), position_word(seen.box, side),
                        seen.template_iou, seen.noise, seen.strays)


def read_image(img: np.ndarray) -> ImageReading:
    """Strict reading of an image, uint8 (H, W, 3): the five attribute words and the fidelity
    figures (template IoU, background noise, stray components)."""
    img = check_image(img)
    return reading_of(look(img), img.shape[0])


def fidelity(readings: Sequence[ImageReading]) -> dict[str, float | None]:
    """Mean template IoU, mean background noise, share of clean images and mean stray
    components over some readings (None each if there are none)."""
    if not readings:
        return {"template_iou": None, "noise": None, "clean": None, "strays": None}
    return {"template_iou": float(np.mean([r.template_iou for r in readings])),
            "noise": float(np.mean([r.noise for r in readings])),
            "clean": float(np.mean([r.clean for r in readings])),
            "strays": float(np.mean([r.strays for r in readings]))}


def score(prompts: Sequence[str | ImageSpec | dict], images: Iterable[np.ndarray]) -> dict:
    """How often samples show what their prompts ask for, read strictly, and how cleanly.

    prompts: canonical captions (or specs / attribute dicts); images: uint8 (H, W, 3) each, or
    one (N, H, W, 3) array. Returns {attribute: accuracy over the prompts that state it (None
    if none does), 'joint': fraction with every stated attribute right, 'n': count,
    'template_iou': mean, 'noise': mean background noise, 'clean': share of clean images,
    'strays': mean stray components}.
    """
    images = list(images)
    if len(images) != len(prompts):
        raise ValueError(f"{len(prompts)} prompts but {len(images)} images")
    readings = [read_image(im) for im in images]
    result = tally(((prompt_attributes(p), r) for p, r in zip(prompts, readings)), ATTRIBUTES)
    return {**result, **fidelity(readings)}
