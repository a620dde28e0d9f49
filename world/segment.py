"""Finding the object in an image without any learned model: background, alpha, component.

Built to survive the noise and blur of generated samples: the background is a vote of the
border pixels, the object is the largest connected blob of pixels far from it, its colour the
median of the blob's interior, and alpha is each pixel's position on the line from background
to that colour (so blurred edges count by how much object they hold).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .vocab import BACKGROUNDS, COLOURS

_BACKGROUND_NAMES = list(BACKGROUNDS)
_BACKGROUND_RGB = np.array(list(BACKGROUNDS.values()), dtype=np.float32)  # (3, 3)
_COLOUR_NAMES = list(COLOURS)
_COLOUR_RGB = np.array(list(COLOURS.values()), dtype=np.float32)  # (6, 3)
# A pixel is "far" from a background when at least half way to the nearest palette colour.
_FAR_FROM: dict[str, float] = {
    name: 0.5 * float(np.sqrt(((_COLOUR_RGB - rgb) ** 2).sum(-1)).min())
    for name, rgb in zip(_BACKGROUND_NAMES, _BACKGROUND_RGB)
}


@dataclass
class Segmentation:
    """The background and the object found in one image (object fields None if none found)."""

    background: str
    background_rgb: np.ndarray          # (3,) measured on the border
    object_rgb: np.ndarray | None       # (3,) median of the object's interior
    alpha: np.ndarray | None            # (H, W) float32, ~[0, 1] (unclipped), zero away from the object
    mask: np.ndarray | None             # (H, W) bool, the object's pixels (alpha > 1/2)


def nearest(rgb: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Index of the nearest palette entry for each colour: (..., 3) -> (...)."""
    return np.argmin(((rgb[..., None, :] - palette) ** 2).sum(-1), axis=-1)


def nearest_colour(rgb: np.ndarray) -> str:
    """The palette word nearest to one RGB colour."""
    return _COLOUR_NAMES[int(nearest(np.asarray(rgb, dtype=np.float32), _COLOUR_RGB))]


def border_pixels(img: np.ndarray) -> np.ndarray:
    """The outermost ring of pixels: (4 * side - 4, 3)."""
    return np.concatenate([img[0], img[-1], img[1:-1, 0], img[1:-1, -1]])


def find_background(img: np.ndarray) -> tuple[str, np.ndarray]:
    """Majority vote of border pixels snapped to the backgrounds; also their median colour."""
    ring = border_pixels(img)
    votes = nearest(ring, _BACKGROUND_RGB)
    winner = int(np.bincount(votes, minlength=len(_BACKGROUND_NAMES)).argmax())
    return _BACKGROUND_NAMES[winner], np.median(ring[votes == winner], axis=0)


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected component of a bool mask (all False if the mask is empty).

    Label propagation: every pixel starts with its own index and repeatedly takes the smallest
    label among its neighbours inside the mask, until nothing changes.
    """
    if not mask.any():
        return mask.copy()
    h, w = mask.shape
    never = h * w
    labels = np.where(mask, np.arange(h * w).reshape(h, w), never)
    while True:
        spread = labels.copy()
        np.minimum(spread[1:], labels[:-1], out=spread[1:])
        np.minimum(spread[:-1], labels[1:], out=spread[:-1])
        np.minimum(spread[:, 1:], labels[:, :-1], out=spread[:, 1:])
        np.minimum(spread[:, :-1], labels[:, 1:], out=spread[:, :-1])
        spread = np.where(mask, spread, never)
        if np.array_equal(spread, labels):
            break
        labels = spread
    counts = np.bincount(labels[mask])
    return labels == counts.argmax()


def erode(mask: np.ndarray) -> np.ndarray:
    """Pixels whose 4 neighbours are all in the mask."""
    inner = mask.copy()
    inner[1:] &= mask[:-1]
    inner[:-1] &= mask[1:]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    inner[[0, -1], :] = False
    inner[:, [0, -1]] = False
    return inner & mask


def dilate(mask: np.ndarray) -> np.ndarray:
    """The mask grown by one pixel (4-neighbourhood)."""
    grown = mask.copy()
    grown[1:] |= mask[:-1]
    grown[:-1] |= mask[1:]
    grown[:, 1:] |= mask[:, :-1]
    grown[:, :-1] |= mask[:, 1:]
    return grown


def segment(img: np.ndarray) -> Segmentation:
    """Background and object of an RGB image, uint8 (H, W, 3)."""
    img = np.asarray(img, dtype=np.float32)
    background, bg = find_background(img)
    rough = largest_component(np.sqrt(((img - bg) ** 2).sum(-1)) > _FAR_FROM[background])
    if not rough.any():
        return Segmentation(background, bg, None, None, None)
    core = erode(rough)
    object_rgb = np.median(img[core if core.any() else rough], axis=0)
    direction = object_rgb - bg
    alpha = ((img - bg) @ direction) / max(float(direction @ direction), 1e-6)
    mask = largest_component(alpha > 0.5)
    if not mask.any():
        return Segmentation(background, bg, object_rgb, None, None)
    # not clipped: zero-mean noise then adds nothing to the object's area on average
    alpha = np.where(dilate(dilate(mask)), alpha, 0.0).astype(np.float32)
    return Segmentation(background, bg, object_rgb, alpha, mask)

