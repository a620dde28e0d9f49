"""Fidelity of an autoencoder's reconstructions of Shapes World images: PSNR, background noise,
template IoU — the three figures issue 22's autoencoder targets are stated in.

Stand-in for the strict reader of issue 21 (`world/strict_reader.py`, not written when this was):
the same definitions, read from that issue's text, so the numbers should carry over. When the
strict reader lands, `background_noise` and `template_iou` here should call its functions
instead (and this file shrinks to `psnr` and `reconstruction_report`).

Definitions (per RGB uint8 image (H, W, 3)):
- background colour: the median of the border pixels;
- object mask: every pixel more than `MASK_DISTANCE` (60, RGB distance 0–255) from that colour,
  halo and stray speckles included;
- background noise: RMS of the RGB distance of the pixels away from the object (outside the mask
  grown by `NOISE_MARGIN` pixels) from their median colour;
- template IoU: the best IoU, over the four WORLD.md shapes, between the mask and the shape's
  template stretched to the mask's bounding box (pixel centres inside the template).
"""

from __future__ import annotations

import numpy as np

from world.raster import inside_shape
from world.vocab import SHAPES

MASK_DISTANCE = 60.0   # RGB distance (0–255) from the background that makes a pixel "object"
NOISE_MARGIN = 2       # pixels around the object left out of the background noise (its soft edge)


def border_median(img: np.ndarray) -> np.ndarray:
    """Median colour of the outermost ring of pixels: (H, W, 3) -> (3,) float."""
    img = np.asarray(img, dtype=np.float32)
    ring = np.concatenate([img[0], img[-1], img[1:-1, 0], img[1:-1, -1]])
    return np.median(ring, axis=0)


def object_mask(img: np.ndarray) -> np.ndarray:
    """Pixels farther than MASK_DISTANCE from the border's median colour: (H, W) bool."""
    img = np.asarray(img, dtype=np.float32)
    return np.sqrt(((img - border_median(img)) ** 2).sum(-1)) > MASK_DISTANCE


def _grow(mask: np.ndarray, steps: int) -> np.ndarray:
    """The mask grown by `steps` pixels (8-neighbourhood)."""
    for _ in range(steps):
        padded = np.pad(mask, 1)
        grown = np.zeros_like(mask)
        for dy in (0, 1, 2):
            for dx in (0, 1, 2):
                grown |= padded[dy:dy + mask.shape[0], dx:dx + mask.shape[1]]
        mask = grown
    return mask


def background_noise(img: np.ndarray) -> float:
    """RMS RGB distance (0–255) of the pixels away from the object from their median colour."""
    img = np.asarray(img, dtype=np.float32)
    away = ~_grow(object_mask(img), NOISE_MARGIN)
    if not away.any():
        return float("nan")
    pixels = img[away]  # (n, 3)
    return float(np.sqrt(((pixels - np.median(pixels, axis=0)) ** 2).sum(-1).mean()))


def template_iou(img: np.ndarray) -> tuple[float, str | None]:
    """Best IoU of a WORLD.md template stretched to the object mask's bbox, and that shape."""
    mask = object_mask(img)
    if not mask.any():
        return 0.0, None
    ys, xs = np.nonzero(mask)
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    cx, cy, w, h = (x0 + x1) / 2, (y0 + y1) / 2, float(x1 - x0), float(y1 - y0)
    gy, gx = np.indices(mask.shape, dtype=np.float32) + 0.5
    u, v = (gx - cx) / w, (gy - cy) / h  # template coordinates: the bbox is [-1/2, 1/2]^2
    best, best_shape = -1.0, None
    for shape in SHAPES:
        template = inside_shape(shape, u, v)
        iou = float((template & mask).sum()) / float((template | mask).sum())
        if iou > best:
            best, best_shape = iou, shape
    return best, best_shape


def psnr(reference: np.ndarray, image: np.ndarray) -> float:
    """Peak signal-to-noise ratio (dB, peak 255) of two uint8 images of the same shape."""
    mse = float(((np.asarray(reference, np.float32) - np.asarray(image, np.float32)) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def reconstruction_report(references: np.ndarray, reconstructions: np.ndarray,
                          upright: np.ndarray | None = None) -> dict:
    """Mean fidelity of reconstructions against their references, both uint8 (N, H, W, 3).

    psnr: mean per-image PSNR (capped at 60 dB); noise: mean background noise; noise_max: the
    worst image's; iou: mean template IoU of the reconstructions; ref_iou: the same read on the
    references (what a perfect reconstruction would score: edges on the pixel grid cost a little,
    0.97 on average for still 64x64 renders); shape_kept: share of reconstructions whose best
    template is the reference's. `upright` (N,) bool picks the images the upright templates
    apply to (not spinning frames); the IoU figures are over those only.
    """
    upright = np.ones(len(references), bool) if upright is None else np.asarray(upright, bool)
    psnrs, noises, ious, ref_ious, kept = [], [], [], [], []
    for ref, rec, up in zip(references, reconstructions, upright):
        psnrs.append(min(psnr(ref, rec), 60.0))
        noises.append(background_noise(rec))
        if not up:
            continue
        iou, shape = template_iou(rec)
        ref_iou, ref_shape = template_iou(ref)
        ious.append(iou)
        ref_ious.append(ref_iou)
        kept.append(shape == ref_shape)
    return {"psnr": float(np.mean(psnrs)), "noise": float(np.nanmean(noises)),
            "noise_max": float(np.nanmax(noises)), "iou": float(np.mean(ious)),
            "ref_iou": float(np.mean(ref_ious)), "shape_kept": float(np.mean(kept)), "n": len(psnrs)}
