"""The brute-force reference compositor: every Gaussian at every pixel, plain autograd.

No tiles and no boxes: each camera's visible Gaussians are sorted by depth once and evaluated
at all H·W pixels, and the sequential rule (skip α < 1/255, stop before T ≤ 1e-4) is applied
as masks over the whole list. Slow and memory-hungry ([H·W, N] per camera) on purpose: it is
the definition the fast compositors are tested against.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .projection import ALPHA_THRESHOLD, MAX_ALPHA, MAX_SIGMA, TRANSMITTANCE_STOP


def composite_reference(means2d: Tensor, conics: Tensor, opacities: Tensor, colors: Tensor, radii: Tensor,
                        depths: Tensor, backgrounds: Tensor | None, width: int, height: int):
    """Same inputs as `composite_tiles` (minus the tile size); returns colours [C, H, W, D], alphas [C, H, W, 1]."""
    C, N, D = colors.shape
    ys, xs = torch.meshgrid(torch.arange(height, dtype=means2d.dtype, device=means2d.device) + 0.5,
                            torch.arange(width, dtype=means2d.dtype, device=means2d.device) + 0.5, indexing="ij")
    px, py = xs.reshape(-1, 1), ys.reshape(-1, 1)  # [H·W, 1]
    images, alphas = [], []
    for c in range(C):
        visible = (radii[c] > 0).all(dim=-1)
        order = torch.sort(depths[c].detach(), stable=True).indices
        order = order[visible[order]]  # front to back, culled ones dropped
        mean, conic = means2d[c, order], conics[c, order]  # [n, 2], [n, 3]
        dx, dy = px - mean[:, 0], py - mean[:, 1]  # [H·W, n]
        sigma = 0.5 * (conic[:, 0] * dx * dx + conic[:, 2] * dy * dy) + conic[:, 1] * dx * dy
        alpha = torch.clamp(opacities[c, order] * torch.exp(-sigma.clamp(max=MAX_SIGMA)), max=MAX_ALPHA)
        alpha = torch.where((sigma < 0) | (alpha < ALPHA_THRESHOLD), torch.zeros_like(alpha), alpha)
        incl = torch.cumprod(1.0 - alpha, dim=-1)  # T after each Gaussian, if none had stopped
        keep = incl > TRANSMITTANCE_STOP  # the stop is exclusive, and T only falls: a prefix
        excl = torch.cat([torch.ones_like(incl[:, :1]), incl[:, :-1]], dim=-1)
        w = torch.where(keep, alpha * excl, torch.zeros_like(alpha))
        T = torch.prod(torch.where(keep, 1.0 - alpha, torch.ones_like(alpha)), dim=-1)  # [H·W]
        image = w @ colors[c, order]  # [H·W, D]
        if backgrounds is not None:
            image = image + T[:, None] * backgrounds[c]
        images.append(image.view(height, width, D))
        alphas.append((1.0 - T).view(height, width, 1))
    return torch.stack(images), torch.stack(alphas)
