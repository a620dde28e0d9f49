"""3D window attention over a (gx, gy, gz) token grid: each token attends only within its window.

The grid is cut into non-overlapping w×w×w windows; a query sees the keys of its own window and
of no other, and never those of another batch item. With `shift` s > 0 (Swin's shifted windows,
s = w/2 by convention) the window boundaries move by s along every axis: the windows are those of
the grid rolled by −s, and the windows that wrap round the grid's end are split back into their
unwrapped pieces by a mask, so no token ever sees the far side of the grid.

Two kernels with the registry's signature `kernel(q, k, v, bias)`, where `bias` carries the
`Window3D` layout instead of an additive tensor:
- `window_attention_3d` (registered as "window3d"): partitions q, k, v into windows, folds the
  windows into a batch dimension and runs SDPA per window — cost T·w³ instead of T².
- `window_attention_3d_dense` ("window3d_dense"), its reference twin: full SDPA over all T tokens
  with the block-diagonal mask "same window id" (`window_ids`), the definition written plainly.
A block whose attention uses any other kernel passes `dense_window_bias(layout)`, so switching
the kernel (`set_attention_backend(model, "math")`) keeps the windows.

Tokens are in row-major order of the grid (x slowest, z fastest), as `Conv3d(...).flatten(2)` of
a (B, C, X, Y, Z) volume gives them. This file imports nothing of `dit.attention` (which imports
it to register the kernels).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Window3D:
    """Windows of `window`³ tokens over a `grid` = (gx, gy, gz) token grid, moved by `shift` per axis."""

    grid: tuple[int, int, int]
    window: int
    shift: int = 0

    def __post_init__(self):
        grid = tuple(int(g) for g in self.grid)
        object.__setattr__(self, "grid", grid)
        if len(grid) != 3 or min(grid) <= 0:
            raise ValueError(f"a 3D window layout needs three positive grid sizes, got {self.grid!r}")
        if not isinstance(self.window, int) or self.window <= 0 or any(g % self.window for g in grid):
            raise ValueError(f"window {self.window!r} must be a positive int dividing every grid size {grid}")
        if not isinstance(self.shift, int) or not 0 <= self.shift < self.window:
            raise ValueError(f"shift {self.shift!r} must be an int in [0, window={self.window})")

    @property
    def num_tokens(self) -> int:
        gx, gy, gz = self.grid
        return gx * gy * gz

    @property
    def tokens_per_window(self) -> int:
        return self.window ** 3

    @property
    def num_windows(self) -> int:
        return self.num_tokens // self.tokens_per_window


def window_ids(layout: Window3D, device=None) -> torch.Tensor:
    """(T,) long: the window of each token, by definition. Along an axis, token c is in window
    ⌊(c − s) / w⌋ (s = shift); with s > 0 the first s and last w − s tokens form windows of their own."""
    w, s = layout.window, layout.shift
    ids = [(torch.arange(g, device=device) + (w - s) % w) // w for g in layout.grid]  # ⌊(c − s)/w⌋ + (s > 0)
    ix, iy, iz = torch.meshgrid(*ids, indexing="ij")
    n = [g // w + (s > 0) for g in layout.grid]
    return ((ix * n[1] + iy) * n[2] + iz).flatten()


def dense_window_bias(layout: Window3D, device=None, dtype=torch.float32) -> torch.Tensor:
    """Additive (1, 1, T, T) bias: 0 within a window, −inf across; for kernels that take a tensor bias."""
    ids = window_ids(layout, device)
    bias = torch.zeros(ids.numel(), ids.numel(), device=device, dtype=dtype)
    return bias.masked_fill_(ids[:, None] != ids[None, :], float("-inf"))[None, None]


def check_layout(q: torch.Tensor, bias) -> Window3D:
    if not isinstance(bias, Window3D):
        raise ValueError(f"a 3D window attention kernel needs the Window3D layout as its bias, got "
                         f"{type(bias).__name__}; use it in windowed blocks only (cross-attention and "
                         "global blocks need a kernel such as 'sdpa')")
    if q.shape[-2] != bias.num_tokens:
        raise ValueError(f"{q.shape[-2]} query tokens do not fill the {bias.grid} token grid of the window layout")
    return bias


def window_attention_3d_dense(q, k, v, bias):
    """Reference: SDPA over all T tokens with the block-diagonal "same window" mask.

    q/k/v: (B, H, T, Dh); bias: the `Window3D` layout → (B, H, T, Dh)."""
    layout = check_layout(q, bias)
    ids = window_ids(layout, q.device)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=ids[:, None] == ids[None, :])


@functools.lru_cache(maxsize=32)
def _wrap_mask(layout: Window3D, device: torch.device) -> torch.Tensor:
    """(nW, 1, w³, w³) bool, True where two tokens of a rolled window share a true window."""
    ids = window_ids(layout, device).view(1, 1, *layout.grid, 1)
    ids = partition(ids, layout)[0, :, 0, :, 0]  # (nW, w³)
    return (ids[:, :, None] == ids[:, None, :])[:, None]


def partition(x: torch.Tensor, layout: Window3D) -> torch.Tensor:
    """(B, H, gx, gy, gz, Dh) → (B, nW, H, w³, Dh): roll by −shift, then cut into windows."""
    b, h, gx, gy, gz, d = x.shape
    w, s = layout.window, layout.shift
    if s:
        x = torch.roll(x, shifts=(-s, -s, -s), dims=(2, 3, 4))
    x = x.view(b, h, gx // w, w, gy // w, w, gz // w, w, d)
    x = x.permute(0, 2, 4, 6, 1, 3, 5, 7, 8)  # (B, nx, ny, nz, H, w, w, w, Dh)
    return x.reshape(b, layout.num_windows, h, w ** 3, d)


def unpartition(x: torch.Tensor, layout: Window3D) -> torch.Tensor:
    """(B, nW, H, w³, Dh) → (B, H, gx, gy, gz, Dh): the inverse of `partition`."""
    b, _, h, _, d = x.shape
    (gx, gy, gz), w, s = layout.grid, layout.window, layout.shift
    x = x.view(b, gx // w, gy // w, gz // w, h, w, w, w, d)
    x = x.permute(0, 4, 1, 5, 2, 6, 3, 7, 8).reshape(b, h, gx, gy, gz, d)
    if s:
        x = torch.roll(x, shifts=(s, s, s), dims=(2, 3, 4))
    return x


def window_attention_3d(q, k, v, bias):
    """Windowed: SDPA within each window, windows folded into a batch dimension.

    q/k/v: (B, H, T, Dh) with T = gx·gy·gz tokens in row-major grid order; bias: the `Window3D`
    layout → (B, H, T, Dh). Batch items and windows never meet: each (item, window) is its own
    attention problem."""
    layout = check_layout(q, bias)
    b, h, t, d = q.shape

    def cut(x):
        return partition(x.reshape(b, h, *layout.grid, d), layout)  # (B, nW, H, w³, Dh)

    mask = _wrap_mask(layout, q.device) if layout.shift else None  # (nW, 1, w³, w³)
    out = F.scaled_dot_product_attention(cut(q), cut(k), cut(v), attn_mask=mask)
    return unpartition(out, layout).reshape(b, h, t, d)
