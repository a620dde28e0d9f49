"""How close an accelerated sample stays to the plain one of the same seed: PSNR and SSIM.

Both take images (N, C, H, W) in [0, data_range] — a clip's frames stacked into N — and return
one value per image, so a caller averages over whatever it likes.

SSIM is Wang et al. 2004 with an 11×11 Gaussian window (σ = 1.5), K1 = 0.01, K2 = 0.03,
population statistics, averaged over the window positions that fit inside the image (no
padding) and over channels — what `skimage.metrics.structural_similarity(...,
gaussian_weights=True, use_sample_covariance=False)` computes. Images smaller than 11 pixels get
the largest odd window that fits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

PSNR_IDENTICAL = 100.0  # dB given to identical images, so averages and plots stay finite


def psnr(a: torch.Tensor, b: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """(N, …) → (N,) peak signal-to-noise ratio in dB; identical images get PSNR_IDENTICAL."""
    mse = (a.double() - b.double()).flatten(1).pow(2).mean(1)
    value = 10 * torch.log10(data_range**2 / mse.clamp_min(1e-30))
    return torch.where(mse == 0, torch.full_like(value, PSNR_IDENTICAL), value.clamp_max(PSNR_IDENTICAL)).float()


def gaussian_window(size: int, sigma: float) -> torch.Tensor:
    """(size, size) weights summing to 1."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-x**2 / (2 * sigma**2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def ssim(a: torch.Tensor, b: torch.Tensor, data_range: float = 1.0, window: int = 11,
         sigma: float = 1.5) -> torch.Tensor:
    """(N, C, H, W) pairs → (N,) mean structural similarity (1 = identical)."""
    if a.shape != b.shape or a.ndim != 4:
        raise ValueError(f"ssim wants two (N, C, H, W) tensors of one shape, got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    n, c, h, w = a.shape
    size = min(window, h - (1 - h % 2), w - (1 - w % 2))  # the largest odd window that fits
    kernel = gaussian_window(size, sigma).to(a.device)[None, None].expand(c, 1, size, size)
    x, y = a.double(), b.double()

    def blur(t):  # (N, C, H, W) → weighted local means over the valid window positions
        return F.conv2d(t, kernel, groups=c)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    index = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return index.mean(dim=(1, 2, 3)).float()
