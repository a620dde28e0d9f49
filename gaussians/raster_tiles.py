"""ditkit's CPU compositor: tiles, depth chunks, dense tensors, and a hand-written backward.

Compositing one pixel is sequential (front to back, per gsplat's CUDA kernel):

    T = 1
    for each Gaussian i of the pixel's tile, nearest first:
        αᵢ = min(0.999, oᵢ · exp(−σᵢ)),  σᵢ = ½ dᵀ Σ₂ᵢ⁻¹ d,  d = pixel centre − mean₂ᵢ
        if σᵢ < 0 or αᵢ < 1/255: skip
        if T · (1 − αᵢ) ≤ 1e-4: stop (exclusive)
        colour += cᵢ αᵢ T;  T ·= 1 − αᵢ
    colour += T · background;  alpha = 1 − T

Here it runs as tensor algebra. Each tile's depth-sorted list (`binning.py`; small tiles, 4 px
by default, because every pixel of a tile is evaluated against every Gaussian of its list) is
cut into chunks of K Gaussians; round r processes chunk r of every tile that still has one (and
a pixel not yet stopped), in batches of tiles sized to stay in cache. Within a chunk, for all
P pixels × K Gaussians at once: log α from per-row and per-column terms (a tile's pixels form a
grid, so only the b·dx·dy term is a full [B, P, K] product), skipped alphas set to 0, T from an
inclusive `cumprod`, the stop rule as the mask `T_in · cumprod(1 − α) > 1e-4` (a prefix, since
T only falls), weights wᵢ = αᵢ · Tᵢ(exclusive) · keepᵢ, colour += w @ c (a bmm). T and the
stopped flag carry from chunk to chunk. This equals the sequential definition. (σ < 0 is not
tested here: Σ₂⁻¹ is positive definite and, with eps2d > 0, well enough conditioned that
rounding cannot make σ negative; the reference keeps the test.) Masks are float 0/1 tensors
made with `F.threshold` and `sign`, because boolean masks and `where` are several times slower
than arithmetic on CPU.

The backward is written by hand rather than left to autograd: autograd would keep every
[B, P, K] intermediate alive until the backward and read them back from memory. Instead the
forward keeps only T and the stopped flag at each chunk's entry ([B, P] per chunk); the
backward walks the rounds back to front, recomputes each chunk's alphas in cache, and uses

    ∂colour/∂αᵢ = cᵢ Tᵢ − (Σ_{j>i} cⱼ wⱼ) / (1 − αᵢ) − T_final · background / (1 − αᵢ)
    ∂alpha/∂αᵢ  = T_final / (1 − αᵢ)

(for the Gaussians a pixel composited), with the suffix sums carried across chunks as one
scalar per pixel (already dotted with the pixel's incoming gradient). Gradients reach the 2D
means, conics, opacities, colours and backgrounds; the masks (cut-off, clamp, stop) are
constant, as in gsplat. `tests/test_gaussians_raster.py` checks forward and gradients against
the brute-force autograd reference.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .binning import TileBins, bin_tiles
from .projection import ALPHA_THRESHOLD, MAX_ALPHA, MAX_SIGMA, TRANSMITTANCE_STOP

CHUNK = 32  # Gaussians per tile per round
# pixels × Gaussians per batch of tiles (2 MB a float32 [B, P, K] tensor). Fewer, larger batches
# mean fewer small kernels, each of which wakes OpenMP's threads: measured at 10k Gaussians, 256²,
# 2 threads, forward / fwd+bwd ms by 2^15 … 2^20: with OMP_WAIT_POLICY=PASSIVE 97/203, 93/213,
# 67/142, 50/143, 51/125, 54/129; ACTIVE 42/103, 34/79, 29/71, 27/66, 26/65, 26/67 (2026-12-03; with
# the policy unset, bench.gaussians then read 25.8/54.5 at 2^19).
BATCH_ELEMENTS = 1 << 19
MIN_LOG_ALPHA = -MAX_SIGMA  # log(o) − σ is clamped here: far below log(1/255), it keeps exp() off denormals

# columns of the per-(camera, Gaussian) parameter table
MX, MY, CA, CB, CC, OP, COL = range(7)


def _below(x: float, dtype: torch.dtype) -> float:
    """The largest value of `dtype` below `x`: `F.threshold(t, _below(x))` keeps exactly t ≥ x."""
    t = torch.tensor(x, dtype=dtype)
    return torch.nextafter(t, torch.zeros((), dtype=dtype)).item()


def _above(x: float, dtype: torch.dtype) -> float:
    """The smallest value of `dtype` above `x`."""
    t = torch.tensor(x, dtype=dtype)
    return torch.nextafter(t, torch.full((), 2.0 * x + 1.0, dtype=dtype)).item()


def _table(means2d: Tensor, conics: Tensor, opacities: Tensor, colors: Tensor) -> Tensor:
    """[C·N + 1, 6 + D]: mean x, mean y, conic a, b, c, opacity, colour; the last row is padding (opacity 0)."""
    C, N, D = colors.shape
    t = torch.cat([means2d, conics, opacities[..., None], colors], dim=-1).reshape(C * N, 6 + D)
    return torch.cat([t, t.new_zeros(1, 6 + D)])


class _Chunk:
    """One batch of tiles in one round: their next K pairs, parameters and pixel offsets."""

    def __init__(self, bins: TileBins, tiles: Tensor, rnd: int, table: Tensor):
        s, K = bins.tile_size, CHUNK
        self.tiles = tiles  # [B]
        idx = bins.tile_start[tiles, None] + rnd * K + torch.arange(K, device=tiles.device)  # [B, K]
        end = (bins.tile_start + bins.tile_count)[tiles, None]
        ids = bins.gaussian_ids[idx.clamp(max=bins.gaussian_ids.shape[0] - 1)]
        self.ids = torch.where(idx < end, ids, table.shape[0] - 1)  # padding → the zero-opacity row
        p = table.index_select(0, self.ids.view(-1)).view(*self.ids.shape, -1)  # [B, K, 6 + D]
        self.p = p
        self.col = p[..., COL:]  # [B, K, D]
        t = tiles % (bins.tiles_x * bins.tiles_y)
        grid = torch.arange(s, device=tiles.device, dtype=table.dtype) + 0.5
        ox = ((t % bins.tiles_x) * s).to(table.dtype)
        oy = ((t // bins.tiles_x) * s).to(table.dtype)
        self.dx = (ox[:, None] + grid)[:, :, None] - p[:, None, :, MX]  # [B, s(x), K]  pixel − mean
        self.dy = (oy[:, None] + grid)[:, :, None] - p[:, None, :, MY]  # [B, s(y), K]

    def raw_alpha(self) -> Tensor:
        """o · exp(−σ) at every pixel [B, P, K] (rows y, columns x), before clamp and cut-off."""
        p, dx, dy = self.p, self.dx, self.dy
        B, s, K = dx.shape
        col = (-0.5 * p[:, None, :, CA]) * dx * dx  # [B, s(x), K]
        row = (-0.5 * p[:, None, :, CC]) * dy * dy + torch.log(p[:, None, :, OP])  # [B, s(y), K]
        z = ((-p[:, None, :, CB]) * dy)[:, :, None, :] * dx[:, None, :, :]  # [B, s, s, K]: −b·dx·dy
        z += col[:, None, :, :]
        z += row[:, :, None, :]
        return z.view(B, s * s, K).clamp_(min=MIN_LOG_ALPHA).exp_()

    @staticmethod
    def weights(alpha: Tensor, T_eff: Tensor):
        """Compositing weights of a chunk entered with transmittance T_eff [B, P] (0 for stopped pixels).

        alpha: clamped and cut-off alphas [B, P, K]. Returns (1 − α, T after each Gaussian,
        keep as 0/1, T before each Gaussian, w = α · T_before · keep).
        """
        one_minus = torch.rsub(alpha, 1.0)
        # past a pixel's stop the running product can underflow into slow denormals; nothing there is kept
        incl = torch.cumprod(one_minus, dim=-1).mul_(T_eff[..., None]).clamp_(min=1e-30)
        keep = F.threshold(incl, TRANSMITTANCE_STOP, 0.0).sign_()  # incl > 1e-4, as 0/1 (float ops beat bool here)
        excl = torch.cat([T_eff[..., None], incl[..., :-1]], dim=-1)
        w = alpha * excl
        w.mul_(keep)
        return one_minus, incl, keep, excl, w


def _clamp_and_cut(raw: Tensor, inplace: bool) -> Tensor:
    alpha = raw.clamp_(max=MAX_ALPHA) if inplace else raw.clamp(max=MAX_ALPHA)
    return F.threshold_(alpha, _below(ALPHA_THRESHOLD, raw.dtype), 0.0)


def _schedule(bins: TileBins):
    """Round r holds the tiles with more than r·K pairs; batches hold `per_batch` tiles."""
    n_chunks = (bins.tile_count + CHUNK - 1) // CHUNK
    n_rounds = int(n_chunks.max()) if n_chunks.numel() else 0
    per_batch = max(1, BATCH_ELEMENTS // (bins.tile_size**2 * CHUNK))
    return [torch.nonzero(n_chunks > r).squeeze(1) for r in range(n_rounds)], per_batch


class _Composite(torch.autograd.Function):
    @staticmethod
    def forward(ctx, means2d, conics, opacities, colors, backgrounds, bins: TileBins):
        C, N, D = colors.shape
        P = bins.tile_size**2
        table = _table(means2d.detach(), conics.detach(), opacities.detach(), colors.detach())
        nT = bins.n_tiles
        out = colors.new_zeros(nT, P, D)
        T = colors.new_ones(nT, P)
        stopped = colors.new_zeros(nT, P)  # 1 once a pixel has stopped
        alive = torch.ones(nT, dtype=torch.bool, device=colors.device)
        rounds, per_batch = _schedule(bins)
        saved = []  # (round, tiles, T_in, stopped_in) per batch: all the backward needs to recompute
        for r, tiles in enumerate(rounds):
            tiles = tiles[alive[tiles]]
            for start in range(0, tiles.shape[0], per_batch):
                tb = tiles[start:start + per_batch]
                ch = _Chunk(bins, tb, r, table)
                T_in, st_in = T.index_select(0, tb), stopped.index_select(0, tb)
                alpha = _clamp_and_cut(ch.raw_alpha(), inplace=True)
                _, incl, keep, _, w = ch.weights(alpha, T_in * (1.0 - st_in))
                out.index_add_(0, tb, torch.bmm(w, ch.col))
                n_keep = keep.sum(-1)  # [B, P]; the kept Gaussians are a prefix
                last = incl.gather(-1, (n_keep - 1).clamp_(min=0).long()[..., None]).squeeze(-1)
                T.index_copy_(0, tb, torch.where(n_keep > 0, last, T_in))
                st_out = torch.maximum(st_in, (n_keep < CHUNK).to(st_in.dtype))
                stopped.index_copy_(0, tb, st_out)
                alive[tb] = st_out.sum(-1) < P
                saved.append((r, tb, T_in, st_in))
        if backgrounds is not None:
            cam = torch.arange(nT, device=colors.device) // (bins.tiles_x * bins.tiles_y)
            out += T[..., None] * backgrounds[cam][:, None, :]
        ctx.bins, ctx.saved_chunks, ctx.has_bg = bins, saved, backgrounds is not None
        ctx.save_for_backward(means2d, conics, opacities, colors, backgrounds if backgrounds is not None else T, T)
        return out, 1.0 - T

    @staticmethod
    def backward(ctx, v_out, v_alpha):
        means2d, conics, opacities, colors, bg_or_T, T_final = ctx.saved_tensors
        backgrounds = bg_or_T if ctx.has_bg else None
        bins: TileBins = ctx.bins
        C, N, D = colors.shape
        s = bins.tile_size
        table = _table(means2d, conics, opacities, colors)
        v_out = v_out.contiguous()
        # the loss sees T_final through alpha = 1 − T and through T · background
        v_T = -v_alpha
        v_bg = None
        if backgrounds is not None:
            cam = torch.arange(bins.n_tiles, device=v_out.device) // (bins.tiles_x * bins.tiles_y)
            v_T = v_T + (v_out * backgrounds[cam][:, None, :]).sum(-1)
            v_bg = torch.zeros_like(backgrounds).index_add_(0, cam, (v_out * T_final[..., None]).sum(1))
        tail = T_final * v_T  # ∂L/∂αᵢ gets −tail / (1 − αᵢ) from T_final = Π (1 − αⱼ)
        after = torch.zeros_like(T_final)  # Σ over later Gaussians of wⱼ (cⱼ · v_out), per pixel
        grad = torch.zeros_like(table)
        dt = table.dtype
        upper = -_above(MAX_ALPHA, dt)
        below = _below(ALPHA_THRESHOLD, dt)
        for r, tb, T_in, st_in in reversed(ctx.saved_chunks):
            ch = _Chunk(bins, tb, r, table)
            B, _, K = ch.dx.shape
            raw = ch.raw_alpha()
            alpha = _clamp_and_cut(raw, inplace=False)
            one_minus, _, keep, excl, w = ch.weights(alpha, T_in * (1.0 - st_in))
            g = v_out.index_select(0, tb)  # [B, P, D]
            G = torch.bmm(g, ch.col.transpose(1, 2).contiguous())  # [B, P, K]  cᵢ · v_out
            u = w * G
            # Σ_{j > i} uⱼ within the chunk plus everything behind it, by a reversed cumsum
            ue = torch.cat([u, after.index_select(0, tb)[..., None]], dim=-1)
            suffix = torch.cumsum(ue.flip(-1), dim=-1).flip(-1)
            after.index_copy_(0, tb, suffix[..., 0])
            # −∂L/∂α = (Σ_{j>i} uⱼ + tail) / (1 − α) − T_before · G
            nv = suffix[..., 1:] + tail.index_select(0, tb)[..., None]
            nv /= one_minus
            nv -= excl * G
            # gradient passes where α = o·exp(−σ) itself was composited: kept, ≥ 1/255, not clamped
            m = F.threshold(raw, below, 0.0).neg_()
            F.threshold_(m, upper, 0.0)  # m = −raw where 1/255 ≤ raw ≤ 0.999, else 0
            m *= keep
            nvs = (nv * m).view(B, s, s, K)  # −∂L/∂σ (rows y, columns x)
            vx = nvs.sum(1)  # [B, s(x), K]
            vy = nvs.sum(2)  # [B, s(y), K]
            vxy = (nvs * ch.dx[:, None, :, :]).sum(2)  # [B, s(y), K]
            dx, dy = ch.dx, ch.dy
            s_x, s_xx, s_y, s_yy = (vx * dx).sum(1), (vx * dx * dx).sum(1), (vy * dy).sum(1), (vy * dy * dy).sum(1)
            s_xy, s_1 = (vxy * dy).sum(1), vx.sum(1)  # [B, K]
            p = ch.p
            pair = torch.empty_like(p)
            # σ = ½a dx² + b dx dy + ½c dy² with d = pixel − mean; raw = o·exp(−σ)
            pair[..., CA] = -0.5 * s_xx
            pair[..., CB] = -s_xy
            pair[..., CC] = -0.5 * s_yy
            pair[..., MX] = p[..., CA] * s_x + p[..., CB] * s_y
            pair[..., MY] = p[..., CB] * s_x + p[..., CC] * s_y
            pair[..., OP] = s_1 / p[..., OP].clamp_min(ALPHA_THRESHOLD)
            pair[..., COL:] = torch.bmm(g.transpose(1, 2), w).transpose(1, 2)
            grad.index_add_(0, ch.ids.reshape(-1), pair.view(B * K, -1))
        grad = grad[:-1].view(C, N, 6 + D)
        return grad[..., MX:CA], grad[..., CA:OP], grad[..., OP], grad[..., COL:], v_bg, None


def composite_tiles(means2d: Tensor, conics: Tensor, opacities: Tensor, colors: Tensor, radii: Tensor,
                    depths: Tensor, backgrounds: Tensor | None, width: int, height: int, tile_size: int = 4):
    """Front-to-back compositing of projected Gaussians, tiled and vectorised.

    means2d [C, N, 2], conics [C, N, 3], opacities [C, N], colors [C, N, D], radii [C, N, 2]
    (0 = culled), depths [C, N], backgrounds [C, D] or None.
    Returns colours [C, H, W, D], alphas [C, H, W, 1] and the tile bins.
    """
    C, N, D = colors.shape
    bins = bin_tiles(means2d, radii, depths, width, height, tile_size, conics, opacities)
    out, alpha = _Composite.apply(means2d, conics, opacities, colors, backgrounds, bins)
    s, tx, ty = tile_size, bins.tiles_x, bins.tiles_y
    image = out.view(C, ty, tx, s, s, D).permute(0, 1, 3, 2, 4, 5).reshape(C, ty * s, tx * s, D)
    alphas = alpha.view(C, ty, tx, s, s).permute(0, 1, 3, 2, 4).reshape(C, ty * s, tx * s, 1)
    return image[:, :height, :width], alphas[:, :height, :width], bins
