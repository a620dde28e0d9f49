"""SSIM (Wang et al. 2004) as 3DGS computes it: an 11-tap Gaussian window (σ = 1.5), per channel, zero
padding ("same" size), C1 = 0.01², C2 = 0.03² for images in [0, 1], averaged over every pixel."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor

WINDOW, SIGMA = 11, 1.5
C1, C2 = 0.01 ** 2, 0.03 ** 2


@functools.lru_cache(maxsize=8)
def gaussian_window(size: int = WINDOW, sigma: float = SIGMA, dtype=torch.float32) -> Tensor:
    """The normalised 1-D Gaussian window [size]."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    w = torch.exp(-x ** 2 / (2 * sigma ** 2))
    return (w / w.sum()).to(dtype)


def _blur(x: Tensor, w: Tensor) -> Tensor:
    """Separable Gaussian filter of x [B, C, H, W] per channel, zero padding."""
    c, k = x.shape[1], w.shape[0]
    x = F.conv2d(x, w.view(1, 1, 1, k).expand(c, 1, 1, k), padding=(0, k // 2), groups=c)
    return F.conv2d(x, w.view(1, 1, k, 1).expand(c, 1, k, 1), padding=(k // 2, 0), groups=c)


def ssim(a: Tensor, b: Tensor) -> Tensor:
    """Mean SSIM of images a, b [..., H, W, C] (channels last, as `rasterize` returns them) in [0, 1];
    a scalar, differentiable in both."""
    if a.shape != b.shape or a.dim() < 3:
        raise ValueError(f"ssim needs two images of one shape [..., H, W, C], got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    h, w, c = a.shape[-3:]
    a = a.reshape(-1, h, w, c).permute(0, 3, 1, 2)  # [B, C, H, W]
    b = b.reshape(-1, h, w, c).permute(0, 3, 1, 2)
    win = gaussian_window(dtype=a.dtype).to(a.device)
    mu_a, mu_b = _blur(a, win), _blur(b, win)
    var_a = _blur(a * a, win) - mu_a ** 2
    var_b = _blur(b * b, win) - mu_b ** 2
    cov = _blur(a * b, win) - mu_a * mu_b
    num = (2 * mu_a * mu_b + C1) * (2 * cov + C2)
    den = (mu_a ** 2 + mu_b ** 2 + C1) * (var_a + var_b + C2)
    return (num / den).mean()
