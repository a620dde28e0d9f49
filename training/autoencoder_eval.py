"""Fidelity of an autoencoder's reconstructions of Shapes World images: PSNR, background noise,
template IoU — the three figures issue 22's autoencoder targets are stated in.

Background noise and template IoU are the strict reader's (`world.strict_reader.look`, the
reader every sample of the t2i/t2v models is scored by), so an autoencoder target and a model
target mean the same thing: noise is the RMS RGB distance (0-255) from their median of the pixels
away from the object's box, template IoU the best IoU of a WORLD.md template stretched to the
strict mask's box. Frames of a spinning clip are read with turned templates
(`world.templates.turns`), as the strict video reader reads a spinning clip; everything else
upright. Only PSNR is this file's own.
"""

from __future__ import annotations

import numpy as np

from world.strict_reader import CLEAN_IOU, CLEAN_NOISE, look
from world.templates import turns, upright as upright_angles

PSNR_CAP = 60.0  # dB: what a (near-)identical reconstruction counts as, so one perfect image cannot dominate a mean


def psnr(reference: np.ndarray, image: np.ndarray) -> float:
    """Peak signal-to-noise ratio (dB, peak 255) of two uint8 images of the same shape."""
    mse = float(((np.asarray(reference, np.float32) - np.asarray(image, np.float32)) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def reconstruction_report(references: np.ndarray, reconstructions: np.ndarray,
                          upright: np.ndarray | None = None) -> dict:
    """Mean fidelity of reconstructions against their references, both uint8 (N, H, W, 3).

    psnr: mean per-image PSNR (capped at `PSNR_CAP`); noise: mean strict background noise of the
    reconstructions; noise_max: the worst one's; iou: mean strict template IoU of the
    reconstructions; ref_iou: the same read on the references (what a perfect reconstruction
    scores: about 1.0 for world renders); shape_kept: share of reconstructions showing the shape
    their reference shows (the strict reader's shape, None below IoU 0.7); clean: share of clean
    reconstructions (IoU >= 0.85 and noise <= 6, the strict reader's `clean`). `upright` (N,)
    bool: False for frames of a spinning clip, read with turned templates (default: all upright).
    """
    upright = np.ones(len(references), bool) if upright is None else np.asarray(upright, bool)
    psnrs, noises, ious, ref_ious, kept, clean = [], [], [], [], [], []
    for ref, rec, up in zip(references, reconstructions, upright):
        angles = upright_angles if up else turns
        seen, truth = look(rec, angles), look(ref, angles)
        psnrs.append(min(psnr(ref, rec), PSNR_CAP))
        noises.append(seen.noise)
        ious.append(seen.template_iou)
        ref_ious.append(truth.template_iou)
        kept.append(seen.shape == truth.shape)
        clean.append(seen.template_iou >= CLEAN_IOU and seen.noise <= CLEAN_NOISE)
    return {"psnr": float(np.mean(psnrs)), "noise": float(np.mean(noises)), "noise_max": float(np.max(noises)),
            "iou": float(np.mean(ious)), "ref_iou": float(np.mean(ref_ious)), "shape_kept": float(np.mean(kept)),
            "clean": float(np.mean(clean)), "n": len(psnrs)}
