"""The plain per-tile loop: what a first PyTorch port of gsplat's kernel looks like.

One Python iteration per (camera, tile): take the tile's depth-sorted list from gsplat-style
box binning, evaluate its Gaussians at the tile's pixels as a [P, K] tensor, composite with
`cumprod`, let autograd do the backward. Same result as `raster_tiles`; it exists as the
baseline `bench/gaussians.py` measures the vectorised compositor against, and as a third
implementation for the tests (whose box binning also checks the tiled compositor's tighter one).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .binning import bin_tiles
from .projection import ALPHA_THRESHOLD, MAX_ALPHA, MAX_SIGMA, TRANSMITTANCE_STOP


def composite_loop(means2d: Tensor, conics: Tensor, opacities: Tensor, colors: Tensor, radii: Tensor,
                   depths: Tensor, backgrounds: Tensor | None, width: int, height: int, tile_size: int = 16):
    """Same inputs and outputs as `composite_tiles`, one tile at a time."""
    C, N, D = colors.shape
    bins = bin_tiles(means2d, radii, depths, width, height, tile_size)
    s = tile_size
    grid = torch.arange(s, dtype=means2d.dtype, device=means2d.device) + 0.5
    gy, gx = torch.meshgrid(grid, grid, indexing="ij")
    gx, gy = gx.reshape(-1, 1), gy.reshape(-1, 1)  # [P, 1]
    m2, cn = means2d.reshape(C * N, 2), conics.reshape(C * N, 3)
    op, col = opacities.reshape(C * N), colors.reshape(C * N, D)
    rows, cols = [], []
    for t in range(bins.n_tiles):
        c, rest = divmod(t, bins.tiles_x * bins.tiles_y)
        ty, tx = divmod(rest, bins.tiles_x)
        start, count = int(bins.tile_start[t]), int(bins.tile_count[t])
        T = colors.new_ones(s * s)
        rgb = colors.new_zeros(s * s, D)
        if count:
            ids = bins.gaussian_ids[start:start + count]
            dx = gx + tx * s - m2[ids, 0]  # [P, K]
            dy = gy + ty * s - m2[ids, 1]
            conic = cn[ids]
            sigma = 0.5 * (conic[:, 0] * dx * dx + conic[:, 2] * dy * dy) + conic[:, 1] * dx * dy
            alpha = torch.clamp(op[ids] * torch.exp(-sigma.clamp(max=MAX_SIGMA)), max=MAX_ALPHA)
            alpha = torch.where((sigma < 0) | (alpha < ALPHA_THRESHOLD), torch.zeros_like(alpha), alpha)
            incl = torch.cumprod(1.0 - alpha, dim=-1)
            keep = incl > TRANSMITTANCE_STOP
            excl = torch.cat([torch.ones_like(incl[:, :1]), incl[:, :-1]], dim=-1)
            w = torch.where(keep, alpha * excl, torch.zeros_like(alpha))
            T = torch.prod(torch.where(keep, 1.0 - alpha, torch.ones_like(alpha)), dim=-1)
            rgb = w @ col[ids]
        if backgrounds is not None:
            rgb = rgb + T[:, None] * backgrounds[c]
        rows.append(rgb)
        cols.append(1.0 - T)
    out = torch.stack(rows).view(C, bins.tiles_y, bins.tiles_x, s, s, D)
    alpha_out = torch.stack(cols).view(C, bins.tiles_y, bins.tiles_x, s, s, 1)
    image = out.permute(0, 1, 3, 2, 4, 5).reshape(C, bins.tiles_y * s, bins.tiles_x * s, D)
    alpha_image = alpha_out.permute(0, 1, 3, 2, 4, 5).reshape(C, bins.tiles_y * s, bins.tiles_x * s, 1)
    return image[:, :height, :width], alpha_image[:, :height, :width], bins
