"""Points ↔ voxels in pure torch: average voxelisation by scatter, trilinear devoxelisation.

DiT-3D (after PVD) turns a point cloud into a voxel grid, runs a transformer on the grid, and
reads the result back at the points. Its voxeliser and devoxeliser are CUDA extensions; these are
the same operations in plain torch (`index_add_` and `grid_sample`), so they run on any device.

Conventions: continuous grid coordinates u ∈ [0, G]³; voxel c covers [c, c+1) and its centre is
c + ½. Volumes are (B, C, G, G, G) indexed [x, y, z] (Conv3d's D, H, W). For G a power of two, a
point at a voxel centre reads back that voxel's value exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def grid_coordinates(xyz: torch.Tensor, resolution: int, normalize: bool = True, eps: float = 1e-6) -> torch.Tensor:
    """Points (B, N, 3) → continuous grid coordinates (B, N, 3) in [0, resolution].

    normalize=True (DiT-3D / PVD): each cloud is centred on its mean and scaled so it fits in a
    ball of diameter `resolution` — the grid is used whatever the noise level, and each item is
    normalised on its own (items never mix). normalize=False: the fixed cube [-1, 1]³ maps onto
    the grid; points outside are clamped to its faces.
    """
    if xyz.ndim != 3 or xyz.shape[-1] != 3:
        raise ValueError(f"expected points of shape (B, N, 3), got {tuple(xyz.shape)}")
    if normalize:
        centred = xyz - xyz.mean(dim=1, keepdim=True)
        radius = centred.norm(dim=-1).amax(dim=1)[:, None, None]  # (B, 1, 1)
        unit = centred / (2 * radius + eps) + 0.5  # in [0, 1]
    else:
        unit = (xyz + 1) / 2
    return (unit * resolution).clamp(0, resolution)


def voxel_index(coords: torch.Tensor, resolution: int) -> torch.Tensor:
    """(B, N, 3) grid coordinates → (B, N) flat index of each point's voxel in a (B, G, G, G) grid."""
    b = coords.shape[0]
    ijk = coords.detach().floor().long().clamp(0, resolution - 1)
    flat = (ijk[..., 0] * resolution + ijk[..., 1]) * resolution + ijk[..., 2]
    return flat + torch.arange(b, device=coords.device)[:, None] * resolution ** 3


def voxelize(features: torch.Tensor, coords: torch.Tensor, resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Average the features of the points in each voxel.

    features: (B, N, C); coords: (B, N, 3) from `grid_coordinates` → (volume (B, C, G, G, G) with
    0 in empty voxels, counts (B, 1, G, G, G) of points per voxel). Gradients flow to `features`.
    """
    b, n, c = features.shape
    if coords.shape != (b, n, 3):
        raise ValueError(f"coords {tuple(coords.shape)} do not match features {tuple(features.shape)}")
    g3 = resolution ** 3
    index = voxel_index(coords, resolution).flatten()  # (B·N,)
    sums = features.new_zeros(b * g3, c).index_add_(0, index, features.reshape(b * n, c))
    counts = features.new_zeros(b * g3).index_add_(0, index, features.new_ones(b * n))
    volume = sums / counts.clamp(min=1)[:, None]
    volume = volume.view(b, resolution, resolution, resolution, c).permute(0, 4, 1, 2, 3)
    return volume.contiguous(), counts.view(b, 1, resolution, resolution, resolution)


def devoxelize(volume: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Trilinear interpolation of volume (B, C, G, G, G) at coords (B, N, 3) → (B, N, C).

    Values sit at voxel centres; beyond the outermost centres the border value holds."""
    b, _, gx, gy, gz = volume.shape
    size = torch.tensor([gx, gy, gz], dtype=coords.dtype, device=coords.device)
    # grid_sample wants (x, y, z) = (W, H, D) = our (z, y, x), normalised for align_corners=False
    where = (coords / size * 2 - 1).flip(-1).to(volume.dtype)[:, :, None, None, :]  # (B, N, 1, 1, 3)
    out = F.grid_sample(volume, where, mode="bilinear", padding_mode="border", align_corners=False)
    return out[:, :, :, 0, 0].transpose(1, 2)  # (B, N, C)
