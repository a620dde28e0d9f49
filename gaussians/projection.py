"""EWA projection of 3D Gaussians into C pinhole cameras, with gsplat's conventions.

Shared by every PyTorch compositor (tiled, reference, per-tile loop) so they differ only in how
they composite. Everything here is plain autograd over [C, N] tensors.

Conventions (gsplat 1.5 `fully_fused_projection`, CUDA kernel):
- `viewmats` are world-to-camera, OpenCV axes (+x right, +y down, +z forward); pixel (u, v) =
  (fx·x/z + cx, fy·y/z + cy), pixel centres at +0.5.
- Σ = R S Sᵀ Rᵀ from an un-normalised wxyz quaternion and activated scales; Σ₂ = J W Σ Wᵀ Jᵀ with
  the projection Jacobian evaluated at the mean clamped to 1.3× the field of view; then eps2d is
  added to Σ₂'s diagonal (a pixel-sized low-pass filter) and the conic is Σ₂⁻¹.
- A Gaussian is culled in a camera (radii = 0) if its depth is outside (near, far), det Σ₂ ≤ 0,
  its opacity is below 1/255, or its box misses the image. Its box half-sizes are
  ceil(extent · √Σ₂[i, i]) with extent = min(3.33, √(2 ln(255 · opacity))): every pixel where
  its alpha reaches 1/255 lies inside it, so binning by boxes loses nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .sh import eval_sh

ALPHA_THRESHOLD = 1.0 / 255.0  # alphas below this are skipped
MAX_ALPHA = 0.999  # alphas are clamped to this
TRANSMITTANCE_STOP = 1e-4  # a pixel stops before the Gaussian that would take T to or below this
BOX_EXTENT = 3.33  # box half-size in standard deviations at most
# σ is clamped here before exp(−σ): alpha ≤ exp(−30) is cut off anyway, and the clamp keeps exp() off
# denormal floats, which are tens of times slower on x86
MAX_SIGMA = 30.0


def quat_to_rotmat(quats: Tensor) -> Tensor:
    """Rotation matrices [..., 3, 3] from wxyz quaternions [..., 4] (normalised here)."""
    w, x, y, z = F.normalize(quats, dim=-1).unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], dim=-1).reshape(quats.shape[:-1] + (3, 3))


@dataclass
class Projected:
    """What compositing needs, per camera and Gaussian; `radii == 0` marks culled ones."""

    means2d: Tensor  # [C, N, 2] pixel coordinates of the means
    conics: Tensor  # [C, N, 3] (a, b, c) of Σ₂⁻¹ = [[a, b], [b, c]]
    depths: Tensor  # [C, N] camera-space z
    radii: Tensor  # [C, N, 2] int32 box half-sizes in pixels, 0 when culled
    opacities: Tensor  # [C, N]
    colors: Tensor  # [C, N, D] what is composited (RGB, features, depth or both)
    backgrounds: Tensor | None  # [C, D]

    @property
    def visible(self) -> Tensor:
        """[C, N] bool: not culled."""
        return (self.radii > 0).all(dim=-1)


def project(means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor, viewmats: Tensor, Ks: Tensor,
            width: int, height: int, near_plane: float, far_plane: float, eps2d: float):
    """EWA-projects N Gaussians into C cameras.

    Returns means2d [C, N, 2], conics [C, N, 3], depths [C, N], radii [C, N, 2] (int32),
    opacities [C, N] (broadcast).
    """
    C, N = viewmats.shape[0], means.shape[0]
    R, t = viewmats[:, :3, :3], viewmats[:, :3, 3]  # [C, 3, 3], [C, 3]
    means_c = torch.einsum("cij,nj->cni", R, means) + t[:, None, :]  # [C, N, 3]
    # Σ_c = (R_cam R_q S)(R_cam R_q S)ᵀ; one GEMM per camera instead of C·N tiny 3×3 products
    M = torch.einsum("cij,njk->cnik", R, quat_to_rotmat(quats) * scales[:, None, :])  # [C, N, 3, 3]

    x, y, z = means_c.unbind(-1)  # [C, N]
    fx, fy = Ks[:, 0, 0, None], Ks[:, 1, 1, None]  # [C, 1]
    cx, cy = Ks[:, 0, 2, None], Ks[:, 1, 2, None]
    valid_z = (z >= near_plane) & (z <= far_plane)
    # keep the maths finite for culled Gaussians (they get radii 0 and no gradient anyway)
    z_safe = torch.where(valid_z, z, torch.ones_like(z))
    lim_x_pos = (width - cx) / fx + 0.3 * (0.5 * width / fx)
    lim_x_neg = cx / fx + 0.3 * (0.5 * width / fx)
    lim_y_pos = (height - cy) / fy + 0.3 * (0.5 * height / fy)
    lim_y_neg = cy / fy + 0.3 * (0.5 * height / fy)
    tx = z_safe * torch.minimum(lim_x_pos, torch.maximum(-lim_x_neg, x / z_safe))
    ty = z_safe * torch.minimum(lim_y_pos, torch.maximum(-lim_y_neg, y / z_safe))
    # Σ₂ = J Σ_c Jᵀ = (J M)(J M)ᵀ with J = [[fx/z, 0, −fx·tx/z²], [0, fy/z, −fy·ty/z²]]
    jm0 = (fx / z_safe)[..., None] * M[..., 0, :] - (fx * tx / z_safe**2)[..., None] * M[..., 2, :]  # [C, N, 3]
    jm1 = (fy / z_safe)[..., None] * M[..., 1, :] - (fy * ty / z_safe**2)[..., None] * M[..., 2, :]
    means2d = torch.stack([fx * x / z_safe + cx, fy * y / z_safe + cy], dim=-1)  # [C, N, 2]

    a = (jm0 * jm0).sum(-1) + eps2d
    b = (jm0 * jm1).sum(-1)
    c = (jm1 * jm1).sum(-1) + eps2d
    det = a * c - b * b
    det_safe = torch.where(det > 0, det, torch.ones_like(det))
    conics = torch.stack([c / det_safe, -b / det_safe, a / det_safe], dim=-1)  # [C, N, 3]

    with torch.no_grad():
        op = opacities.detach().expand(C, N)
        extent = torch.sqrt(2.0 * torch.log(op.clamp_min(ALPHA_THRESHOLD) / ALPHA_THRESHOLD)).clamp(max=BOX_EXTENT)
        rx = torch.ceil(extent * torch.sqrt(a.detach().clamp_min(0)))
        ry = torch.ceil(extent * torch.sqrt(c.detach().clamp_min(0)))
        m = means2d.detach()
        keep = valid_z & (det.detach() > 0) & (op >= ALPHA_THRESHOLD)
        keep &= (m[..., 0] + rx > 0) & (m[..., 0] - rx < width) & (m[..., 1] + ry > 0) & (m[..., 1] - ry < height)
        radii = torch.stack([rx, ry], dim=-1) * keep[..., None]
        radii = radii.to(torch.int32)
    return means2d, conics, z, radii, opacities.expand(C, N)


def project_and_shade(means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor, colors: Tensor,
                      viewmats: Tensor, Ks: Tensor, width: int, height: int, near_plane: float,
                      far_plane: float, eps2d: float, sh_degree: int | None, backgrounds: Tensor | None,
                      render_mode: str) -> Projected:
    """Projection plus what to composite: colours (or SH evaluated per camera), depth channels.

    colors: [N, D] / [C, N, D] post-activation, or with `sh_degree` SH coefficients [N, K, 3] /
    [C, N, K, 3] (colour = clamp_min(SH(dir) + 0.5, 0), dir from the camera centre to the mean).
    render_mode "RGB": D channels; "D": the z-depth accumulated as Σ wᵢ zᵢ (1 channel, background
    0); "RGB+D": both, depth last.
    """
    C, N = viewmats.shape[0], means.shape[0]
    means2d, conics, depths, radii, op = project(means, quats, scales, opacities, viewmats, Ks, width, height,
                                                 near_plane, far_plane, eps2d)
    if render_mode == "D":
        feats = depths[..., None]
        backgrounds = None if backgrounds is None else torch.zeros(C, 1, dtype=means.dtype, device=means.device)
    else:
        if sh_degree is None:
            feats = colors.expand(C, N, colors.shape[-1]) if colors.dim() == 2 else colors
        else:
            campos = -(viewmats[:, :3, :3].transpose(-1, -2) @ viewmats[:, :3, 3:])[..., 0]  # [C, 3]
            dirs = means[None] - campos[:, None]  # [C, N, 3]
            coeffs = colors if colors.dim() == 4 else colors.expand(C, *colors.shape)
            feats = torch.clamp_min(eval_sh(sh_degree, dirs, coeffs) + 0.5, 0.0)
        if render_mode == "RGB+D":
            feats = torch.cat([feats, depths[..., None]], dim=-1)
            if backgrounds is not None:
                backgrounds = torch.cat([backgrounds, torch.zeros_like(backgrounds[:, :1])], dim=-1)
    return Projected(means2d, conics, depths, radii, op, feats, backgrounds)
