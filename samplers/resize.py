"""Resizing images and clips between resolutions: bottleneck sampling's stages, image-first
video's first frames and low-resolution training batches all resize the same way."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def resize(x: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """Resizes the last two dims of (B, C, H, W) or (B, C, F, H, W) — a video frame by frame.

    mode: any `F.interpolate` mode ("area" to shrink as a renderer's box filter does, "bicubic"
    to enlarge); corners are not aligned."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    flat = x.reshape(x.shape[0], -1, *x.shape[-2:])  # frames join the channels: interpolate is per channel
    kwargs = {"align_corners": False} if mode in ("bilinear", "bicubic") else {}
    out = F.interpolate(flat.float(), size=size, mode=mode, **kwargs).to(x.dtype)
    return out.reshape(*x.shape[:-2], *size)
