"""Tile binning: which Gaussians can touch which screen tile, front to back.

Every (tile, Gaussian) pair is listed, ordered by tile, then by depth (ties by Gaussian index),
which is the order gsplat's `isect_tiles` radix sort produces. Two ways to decide the pairs:

- boxes (gsplat's): every tile the Gaussian's projected box overlaps;
- ellipses (with `conics` and `opacities`): only the tiles holding a pixel centre where the
  Gaussian's alpha can reach 1/255, i.e. σ = ½ dᵀ Σ₂⁻¹ d ≤ ln(255 · opacity). For each tile row
  the ellipse's x-extent within the row's band is found in closed form (its rightmost point is
  where ∂σ/∂y = 0, clamped into the band), so no pair is generated only to be thrown away.
  At 10k–100k Gaussians on 4-pixel tiles this lists 40–45 % fewer pairs than boxes.

Either way, a Gaussian missing from a tile's list has alpha below 1/255 at every pixel of that
tile, so compositing a tile's list alone gives exactly what compositing every Gaussian would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .projection import ALPHA_THRESHOLD

CULL_MARGIN = 1e-3  # slack on σ for the ellipse test, far above rounding: a kept useless pair costs nothing


@dataclass
class TileBins:
    """Pairs sorted by (camera, tile, depth); tiles indexed c · tiles_y · tiles_x + ty · tiles_x + tx."""

    gaussian_ids: Tensor  # [M] int64 flat index c · N + n of each pair's Gaussian
    tile_start: Tensor  # [C · tiles_y · tiles_x] int64 first pair of each tile
    tile_count: Tensor  # [C · tiles_y · tiles_x] int64 number of pairs of each tile
    tiles_per_gauss: Tensor  # [C, N] int64
    tile_size: int
    tiles_x: int
    tiles_y: int

    @property
    def n_tiles(self) -> int:
        return self.tile_start.shape[0]


def depth_order(depths: Tensor, visible: Tensor) -> Tensor:
    """[C, N] indices sorting each camera's Gaussians front to back, ties by index (culled ones last).

    Positive floats order like their bit patterns read as integers, and a 1D integer sort is
    several times faster than a float one, so that is what is sorted when the visible depths are
    positive (always, with a positive near plane), one camera at a time.
    """
    d = torch.where(visible, depths.detach(), torch.full_like(depths, math.inf))
    if d.dtype in (torch.float32, torch.float64) and bool((d > 0).all()):
        d = d.view(torch.int32 if d.dtype == torch.float32 else torch.int64)
    return torch.stack([torch.sort(row, stable=True).indices for row in d]) if d.shape[0] else d.long()


def _expand(counts: Tensor) -> tuple[Tensor, Tensor]:
    """For counts [K]: the owner k of each of the Σ counts items, and each item's rank within its owner."""
    owner = torch.repeat_interleave(counts)
    first = (torch.cumsum(counts, 0) - counts).index_select(0, owner)
    return owner, torch.arange(owner.shape[0], device=counts.device) - first


def _finish(gid: Tensor, key: Tensor, C: int, N: int, tile_size: int, tiles_x: int, tiles_y: int) -> TileBins:
    n_all = C * tiles_x * tiles_y
    key = key.to(torch.int32) if n_all < 2**31 else key
    # pairs come camera-major in depth order; a stable sort by tile keeps that order within each tile
    key, perm = torch.sort(key, stable=True)
    tile_count = torch.bincount(key, minlength=n_all)
    tile_start = torch.cumsum(tile_count, 0) - tile_count
    gid = gid.index_select(0, perm)
    per_gauss = torch.bincount(gid, minlength=C * N).view(C, N)
    return TileBins(gid, tile_start, tile_count, per_gauss, tile_size, tiles_x, tiles_y)


@torch.no_grad()
def bin_tiles(means2d: Tensor, radii: Tensor, depths: Tensor, width: int, height: int, tile_size: int,
              conics: Tensor | None = None, opacities: Tensor | None = None) -> TileBins:
    """Lists the (tile, Gaussian) pairs of C cameras, by boxes or (given conics and opacities) by ellipses.

    means2d [C, N, 2], radii [C, N, 2] (0 = culled), depths [C, N], conics [C, N, 3], opacities [C, N].
    """
    C, N = depths.shape
    device = depths.device
    s = tile_size
    tiles_x, tiles_y = math.ceil(width / s), math.ceil(height / s)
    visible = (radii > 0).all(dim=-1)
    order = depth_order(depths, visible)
    flat = (order + torch.arange(C, device=device)[:, None] * N).reshape(-1)  # [C·N] camera-major, front to back
    cam = torch.arange(C, device=device)[:, None].expand(C, N)
    m = means2d.detach()
    if conics is None:
        r = radii.to(m.dtype)
        x0 = torch.floor((m[..., 0] - r[..., 0]) / s).clamp(0, tiles_x).long()
        x1 = torch.ceil((m[..., 0] + r[..., 0]) / s).clamp(0, tiles_x).long()
        y0 = torch.floor((m[..., 1] - r[..., 1]) / s).clamp(0, tiles_y).long()
        y1 = torch.ceil((m[..., 1] + r[..., 1]) / s).clamp(0, tiles_y).long()
        counts = ((x1 - x0) * (y1 - y0) * visible).reshape(-1).index_select(0, flat)
        owner, j = _expand(counts)
        base = (cam * (tiles_x * tiles_y) + y0 * tiles_x + x0).reshape(-1)
        gid, base, bw = torch.stack([flat, base.index_select(0, flat), (x1 - x0).reshape(-1).index_select(0, flat)]
                                    ).index_select(1, owner)
        row = torch.div(j, bw, rounding_mode="floor")
        return _finish(gid, base + row * tiles_x + (j - row * bw), C, N, s, tiles_x, tiles_y)

    # ellipses: σ ≤ t with t = ln(255 · o) (+ margin); its half-extents are √(2t Σ₂) along x and y
    a, b, c = conics.detach().unbind(-1)  # Σ₂⁻¹ = [[a, b], [b, c]]
    t = torch.log(opacities.detach().clamp_min(ALPHA_THRESHOLD) / ALPHA_THRESHOLD) + CULL_MARGIN
    det = (a * c - b * b).clamp_min(1e-30)
    half_x, half_y = torch.sqrt(2 * t * c / det), torch.sqrt(2 * t * a / det)
    # pixel rows whose centres (k + 0.5) the ellipse spans, then tile rows
    ky0 = torch.ceil(m[..., 1] - half_y - 0.5).clamp(min=0)
    ky1 = torch.floor(m[..., 1] + half_y - 0.5).clamp(max=height - 1)
    ty0 = torch.div(ky0, s, rounding_mode="floor")
    rows = ((torch.div(ky1, s, rounding_mode="floor") - ty0 + 1) * ((ky0 <= ky1) & visible)).long()
    owner, j = _expand(rows.reshape(-1).index_select(0, flat))  # one item per (Gaussian, tile row)
    g = flat.index_select(0, owner)
    per = torch.stack([m[..., 0], m[..., 1], a, b, c, t, det, half_x, half_y, ty0]).view(10, C * N)
    mx, my, a, b, c, t, det, half_x, half_y, ty0 = per.index_select(1, g)
    ty = ty0 + j.to(ty0.dtype)
    # the band of pixel-centre y in this tile row, as offsets from the mean, inside the ellipse's y-extent
    lo = torch.maximum(ty * s + 0.5 - my, -half_y)
    hi = torch.minimum(torch.minimum(ty * s + (s - 0.5), torch.full_like(ty, height - 0.5)) - my, half_y)
    # x(y) on the ellipse: (−b·dy ± √(2at − det·dy²)) / a; its right end peaks at dy = −b·half_x / c
    # (the rightmost point), its left end bottoms at +b·half_x / c; both clamped into the band
    peak = b * half_x / c
    dy_r = torch.minimum(torch.maximum(-peak, lo), hi)
    dy_l = torch.minimum(torch.maximum(peak, lo), hi)
    x_r = (torch.sqrt((2 * a * t - det * dy_r * dy_r).clamp_min(0)) - b * dy_r) / a
    x_l = (-torch.sqrt((2 * a * t - det * dy_l * dy_l).clamp_min(0)) - b * dy_l) / a
    kx0 = torch.ceil(mx + x_l - 0.5).clamp(min=0)
    kx1 = torch.floor(mx + x_r - 0.5).clamp(max=width - 1)
    tx0 = torch.div(kx0, s, rounding_mode="floor")
    cols = ((torch.div(kx1, s, rounding_mode="floor") - tx0 + 1) * ((kx0 <= kx1) & (lo <= hi))).long()
    base = torch.div(g, N, rounding_mode="floor") * (tiles_x * tiles_y) + (ty * tiles_x + tx0).long()
    owner2, j2 = _expand(cols)  # one item per (Gaussian, tile)
    gid, base = torch.stack([g, base]).index_select(1, owner2)
    return _finish(gid, base + j2, C, N, s, tiles_x, tiles_y)
