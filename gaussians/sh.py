"""Real spherical harmonics up to degree 4, in the 3DGS / gsplat convention.

A Gaussian's view-dependent colour is `clamp_min(Σ_k Y_k(d) · sh_k + 0.5, 0)` with `d` the unit
direction from the camera centre to the Gaussian's mean. The DC term alone gives
`SH_C0 · sh_0 + 0.5`, which is why a `.ply` stores `f_dc = (rgb − 0.5) / SH_C0`.
The basis constants and signs follow Sloan's "Efficient Spherical Harmonic Evaluation"
(JCGT 2013), as the reference 3DGS code and gsplat do.
"""

from __future__ import annotations

import torch
from torch import Tensor

SH_C0 = 0.28209479177387814  # Y_0^0 = 1 / (2√π)


def rgb_to_sh(rgb: Tensor) -> Tensor:
    """DC coefficient whose degree-0 colour is `rgb` (any shape)."""
    return (rgb - 0.5) / SH_C0


def sh_to_rgb(sh_dc: Tensor) -> Tensor:
    """Degree-0 colour of a DC coefficient (any shape), before the clamp at 0."""
    return sh_dc * SH_C0 + 0.5


def num_sh_bases(degree: int) -> int:
    """(degree + 1)²: the number of coefficients a band-limited function of that degree needs."""
    return (degree + 1) ** 2


def sh_bases(degree: int, dirs: Tensor) -> Tensor:
    """The (degree + 1)² real SH basis functions at unit directions `dirs` [..., 3] → [..., K]."""
    if not 0 <= degree <= 4:
        raise ValueError(f"sh_degree must be in 0..4, got {degree}")
    x, y, z = dirs.unbind(-1)
    out = [torch.full_like(x, SH_C0)]
    if degree >= 1:
        a = 0.48860251190292
        out += [-a * y, a * z, -a * x]
    if degree >= 2:
        z2 = z * z
        b = -1.092548430592079 * z
        a = 0.5462742152960395
        c1, s1 = x * x - y * y, 2 * x * y
        out += [a * s1, b * y, 0.9461746957575601 * z2 - 0.3153915652525201, b * x, a * c1]
    if degree >= 3:
        tc = -2.285228997322329 * z2 + 0.4570457994644658
        tb = 1.445305721320277 * z
        ta = -0.5900435899266435
        c2, s2 = x * c1 - y * s1, x * s1 + y * c1
        out += [ta * s2, tb * s1, tc * y, z * (1.865881662950577 * z2 - 1.119528997770346), tc * x, tb * c1, ta * c2]
    if degree >= 4:
        td = z * (-4.683325804901025 * z2 + 2.007139630671868)
        tc = 3.31161143515146 * z2 - 0.47308734787878
        tb = -1.770130769779931 * z
        ta = 0.6258357354491763
        c3, s3 = x * c2 - y * s2, x * s2 + y * c2
        z4 = 1.984313483298443 * z2 * (1.865881662950577 * z2 - 1.119528997770346) \
            - 1.006230589874905 * (0.9461746957575601 * z2 - 0.3153915652525201)
        out += [ta * s3, tb * s2, tc * s1, td * y, z4, td * x, tc * c1, tb * c2, ta * c3]
    return torch.stack(out, dim=-1)


def eval_sh(degree: int, dirs: Tensor, coeffs: Tensor) -> Tensor:
    """Colour from SH coefficients, 3DGS convention (before the +0.5 and the clamp).

    dirs: [..., 3] (any length; normalised here), coeffs: [..., K, 3] with K ≥ (degree + 1)²;
    bands above `degree` are ignored. Returns [..., 3].
    """
    k = num_sh_bases(degree)
    if coeffs.shape[-2] < k:
        raise ValueError(f"sh_degree {degree} needs {k} coefficients per Gaussian, got {coeffs.shape[-2]}")
    dirs = torch.nn.functional.normalize(dirs, dim=-1)
    bases = sh_bases(degree, dirs)  # [..., k]
    return (bases[..., None] * coeffs[..., :k, :]).sum(dim=-2)
