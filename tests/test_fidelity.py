"""samplers.fidelity: PSNR and SSIM against plain references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from samplers.fidelity import PSNR_IDENTICAL, psnr, ssim

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def images(seed: int, shape=(2, 3, 24, 20)) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def reference_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Wang et al. per channel with scipy's Gaussian filter (σ 1.5, radius 5), border cropped — the
    recipe of skimage's structural_similarity(gaussian_weights=True, use_sample_covariance=False)."""
    ndimage = pytest.importorskip("scipy.ndimage")

    def blur(x):
        return ndimage.gaussian_filter(x, sigma=1.5, truncate=3.5, mode="reflect")[5:-5, 5:-5]

    values = []
    for x, y in zip(a.astype(np.float64), b.astype(np.float64)):
        mx, my = blur(x), blur(y)
        vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
        c1, c2 = 0.01**2, 0.03**2
        values.append((((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))).mean())
    return float(np.mean(values))


def test_ssim_matches_the_reference_recipe():
    a = images(0)
    b = (a + 0.1 * images(1)).clamp(0, 1)
    ours = ssim(a, b)
    for i in range(2):
        assert ours[i].item() == pytest.approx(reference_ssim(a[i].numpy(), b[i].numpy()), abs=1e-6)


def test_ssim_and_psnr_of_identical_and_different_images():
    a, b = images(0), images(1)
    assert torch.allclose(ssim(a, a), torch.ones(2)) and (ssim(a, b) < 0.2).all()
    assert (psnr(a, a) == PSNR_IDENTICAL).all()
    noisy = a + 0.01
    assert torch.allclose(psnr(a, noisy), torch.full((2,), 40.0), atol=1e-3)  # MSE 1e-4 → 40 dB
    small = images(2, (1, 3, 8, 8))
    assert ssim(small, small).item() == pytest.approx(1.0)  # a 7×7 window where 11 does not fit
    with pytest.raises(ValueError, match="two \\(N, C, H, W\\) tensors"):
        ssim(a, b[:, :2])
