"""The tolerant Shapes World oracle: reads an image back into attributes and scores samples vs prompts.

Not the default reader any more: `world.read_image` / `world.score` are the strict reader
(`strict_reader`); this one stays as `world.read_image_tolerant` / `world.score_tolerant`.

No learned model: `segment` finds background and object (an alpha map); colour is the
palette entry nearest the object's interior. Shape, size and position come from fitting each
of the four exact WORLD.md shapes to the alpha map: a shape's fill of its bbox turns the
object's area into an extent, its centroid gives the bbox centre, and the shape whose
rendered coverage differs least from the alpha map wins. Areas and centroids are sums over
many pixels, so noise and blur in generated samples barely move them (a thresholded bbox
would grow by a pixel with every stray speck).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from .captions import parse_caption
from .layout import Pose, cell_of
from .raster import shape_coverage
from .scene import ImageSpec
from .segment import nearest_colour, segment
from .vocab import CROSS_ARM, POSITIONS, SIZES

ATTRIBUTES = ("background", "colour", "shape", "size", "position")

# Between the small (1/3) and large (1/2) extents, as a fraction of the side.
SIZE_THRESHOLD = (SIZES["small"] + SIZES["large"]) / 2

# Area of each shape over the area of its e x e bbox.
SHAPE_FILL: dict[str, float] = {
    "circle": math.pi / 4, "square": 1.0, "triangle": 0.5, "cross": 2 * CROSS_ARM - CROSS_ARM ** 2,
}
# Centroid below the bbox centre, in units of the extent (a triangle's is 2/3 down from its apex).
CENTROID_DROP: dict[str, float] = {"circle": 0.0, "square": 0.0, "triangle": 1 / 6, "cross": 0.0}

# A best fit whose squared error exceeds this fraction of the object's area is no shape at all
# (a smear, a bar, a rotated square): world samples stay below 0.01 clean and below 0.33 under
# heavy blur plus noise (sigma 40) at 32x32.
SHAPE_ERROR_LIMIT = 0.45

_POSITION_OF_CELL = {cell: word for word, cell in POSITIONS.items()}


@dataclass(frozen=True)
class ShapeFit:
    """One shape hypothesis fitted to an alpha map; `error` is the summed squared difference."""

    shape: str
    pose: Pose
    error: float


def fit_shapes(alpha: np.ndarray) -> list[ShapeFit]:
    """Fit every shape to an alpha map (H, W) by area and centroid; best (lowest error) first."""
    side = alpha.shape[0]
    area = float(alpha.sum())
    ys, xs = np.indices(alpha.shape, dtype=np.float32) + 0.5
    cx, cy = float((alpha * xs).sum()) / area, float((alpha * ys).sum()) / area
    fits = []
    for shape, fill in SHAPE_FILL.items():
        extent = math.sqrt(max(area, 0.0) / fill)
        pose = Pose(cx, cy - CENTROID_DROP[shape] * extent, extent)
        error = float(((alpha - shape_coverage(shape, pose, side, supersample=4)) ** 2).sum())
        fits.append(ShapeFit(shape, pose, error))
    return sorted(fits, key=lambda f: f.error)


def read_image(img: np.ndarray) -> dict[str, str | None]:
    """Attributes of an image, uint8 (H, W, 3): background, colour, shape, size, position.

    A value is None when it cannot be told: everything but the background without an object,
    the shape when no shape fits (size and position then come from the best fit anyway).
    """
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[-1] != 3 or img.shape[0] != img.shape[1]:
        raise ValueError(f"expected a square (H, W, 3) RGB image, got shape {img.shape}")
    found = segment(img)
    reading = dict.fromkeys(ATTRIBUTES)
    reading["background"] = found.background
    if found.object_rgb is not None:
        reading["colour"] = nearest_colour(found.object_rgb)
    area = float(found.alpha.sum()) if found.alpha is not None else 0.0
    if area < 0.5:  # no object, or less than half a pixel of one
        return reading
    best = fit_shapes(found.alpha)[0]
    side = img.shape[0]
    reading["shape"] = best.shape if best.error <= SHAPE_ERROR_LIMIT * area else None
    reading["size"] = "large" if best.pose.extent / side > SIZE_THRESHOLD else "small"
    reading["position"] = _POSITION_OF_CELL[cell_of(best.pose.cx, best.pose.cy, side)]
    return reading


def prompt_attributes(prompt: str | ImageSpec | dict) -> dict[str, str]:
    """What a prompt asks for: a canonical caption's stated attributes, or a whole spec."""
    if isinstance(prompt, ImageSpec):
        return prompt.as_dict()
    if isinstance(prompt, dict):
        return {k: v for k, v in prompt.items() if k in ATTRIBUTES and v is not None}
    return parse_caption(prompt)


def score(prompts: Sequence[str | ImageSpec | dict], images: Iterable[np.ndarray]) -> dict:
    """How often samples show what their prompts ask for.

    prompts: canonical captions (or specs / attribute dicts); images: uint8 (H, W, 3) each, or
    one (N, H, W, 3) array. Returns {attribute: accuracy over the prompts that state it (None
    if none does), 'joint': fraction with every stated attribute right, 'n': count}.
    """
    images = list(images)
    if len(images) != len(prompts):
        raise ValueError(f"{len(prompts)} prompts but {len(images)} images")
    return tally(((prompt_attributes(p), read_image(im)) for p, im in zip(prompts, images)), ATTRIBUTES)


def tally(pairs: Iterable[tuple[dict, dict]], attributes: Sequence[str]) -> dict:
    """(wanted, seen) attribute dicts → {attribute: accuracy over pairs that state it (None if
    none does), 'joint': fraction with every stated attribute right, 'n': count}."""
    right = dict.fromkeys(attributes, 0)
    stated = dict.fromkeys(attributes, 0)
    joint = n = 0
    for wanted, seen in pairs:
        hits = {k: seen[k] == v for k, v in wanted.items()}
        for k, hit in hits.items():
            stated[k] += 1
            right[k] += hit
        joint += all(hits.values())
        n += 1
    result = {k: (right[k] / stated[k] if stated[k] else None) for k in attributes}
    result["joint"] = joint / n if n else None
    result["n"] = n
    return result
