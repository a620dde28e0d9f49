"""`Gaussians`: a set of 3D Gaussians, stored as 3DGS optimises and saves them.

Parameters live pre-activation, so that an optimiser can move them freely and a `.ply` can
store them verbatim: log-scales (scale = exp), opacity logits (opacity = sigmoid), wxyz
quaternions that need not be normalised, and colour as spherical-harmonic coefficients (the
DC term gives colour SH_C0 · dc + 0.5; optional higher bands add view dependence).
`params()` gives the dict gsplat's densification strategies expect.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor

from .rasterization import rasterize
from .sh import SH_C0, num_sh_bases, rgb_to_sh


@dataclass
class Gaussians:
    """N 3D Gaussians with pre-activation parameters (the 3DGS / gsplat layout)."""

    means: Tensor  # [N, 3] centres, world space
    log_scales: Tensor  # [N, 3] log standard deviations along the rotated axes
    quats: Tensor  # [N, 4] rotations, wxyz, not necessarily normalised
    opacity_logits: Tensor  # [N] opacity = sigmoid(logit)
    sh_dc: Tensor  # [N, 3] degree-0 SH coefficients: colour = SH_C0 · sh_dc + 0.5
    sh_rest: Tensor | None = None  # [N, K, 3] bands 1..degree, K = (degree + 1)² − 1

    def __post_init__(self):
        n = self.means.shape[0] if self.means.dim() == 2 else -1
        expected = dict(means=(n, 3), log_scales=(n, 3), quats=(n, 4), opacity_logits=(n,), sh_dc=(n, 3))
        for name, shape in expected.items():
            if tuple(getattr(self, name).shape) != shape or n < 0:
                raise ValueError(f"Gaussians.{name} must have shape {list(shape)} (N = {n}), "
                                 f"got {tuple(getattr(self, name).shape)}")
        if self.sh_rest is not None:
            k = self.sh_rest.shape[1] if self.sh_rest.dim() == 3 else -1
            if self.sh_rest.dim() != 3 or self.sh_rest.shape[0] != n or self.sh_rest.shape[2] != 3 or \
                    k not in [num_sh_bases(d) - 1 for d in range(1, 5)]:
                raise ValueError(f"Gaussians.sh_rest must be [N, K, 3] with K in (3, 8, 15, 24) for SH degree 1..4, "
                                 f"got {tuple(self.sh_rest.shape)}")

    def __len__(self) -> int:
        return self.means.shape[0]

    # activations
    @property
    def scales(self) -> Tensor:
        """Standard deviations [N, 3]."""
        return torch.exp(self.log_scales)

    @property
    def opacities(self) -> Tensor:
        """Opacities in (0, 1) [N]."""
        return torch.sigmoid(self.opacity_logits)

    @property
    def rotations(self) -> Tensor:
        """Unit quaternions, wxyz [N, 4]."""
        return F.normalize(self.quats, dim=-1)

    @property
    def rgb(self) -> Tensor:
        """View-independent (degree-0) colour [N, 3], clamped at 0 as the renderer does."""
        return torch.clamp_min(self.sh_dc * SH_C0 + 0.5, 0.0)

    @property
    def sh_degree(self) -> int:
        """Highest SH band stored (0 when there is only the DC term)."""
        if self.sh_rest is None:
            return 0
        return round((self.sh_rest.shape[1] + 1) ** 0.5) - 1

    @property
    def sh(self) -> Tensor:
        """All SH coefficients [N, (degree + 1)², 3], DC first."""
        dc = self.sh_dc[:, None, :]
        return dc if self.sh_rest is None else torch.cat([dc, self.sh_rest], dim=1)

    # construction
    @classmethod
    def from_points(cls, points: Tensor, colors: Tensor | None = None, scale: float | Tensor = 0.01,
                    opacity: float = 0.1, sh_degree: int = 0) -> "Gaussians":
        """Isotropic Gaussians at `points` [N, 3], coloured `colors` [N, 3] in [0, 1] (grey if None).

        `scale` is one standard deviation for all, or one per point [N]; higher SH bands start at 0.
        """
        n = points.shape[0]
        if colors is None:
            colors = torch.full((n, 3), 0.5, dtype=points.dtype, device=points.device)
        scale = torch.as_tensor(scale, dtype=points.dtype, device=points.device).expand(n)
        rest = None
        if sh_degree > 0:
            rest = points.new_zeros(n, num_sh_bases(sh_degree) - 1, 3)
        quats = points.new_zeros(n, 4)
        quats[:, 0] = 1.0
        logit = torch.logit(torch.tensor(opacity, dtype=points.dtype)).item()
        return cls(means=points.clone(), log_scales=torch.log(scale)[:, None].expand(n, 3).clone(), quats=quats,
                   opacity_logits=points.new_full((n,), logit), sh_dc=rgb_to_sh(colors).clone(), sh_rest=rest)

    @classmethod
    def from_params(cls, params) -> "Gaussians":
        """Back from a `params()` dict (tensors or nn.Parameters)."""
        rest = params.get("shN")
        return cls(means=params["means"], log_scales=params["scales"], quats=params["quats"],
                   opacity_logits=params["opacities"], sh_dc=params["sh0"][:, 0, :],
                   sh_rest=None if rest is None or rest.shape[1] == 0 else rest)

    def params(self) -> dict[str, Tensor]:
        """The dict gsplat's strategies and trainers use: means, scales (log), quats, opacities
        (logits), sh0 [N, 1, 3] and, with higher bands, shN [N, K, 3]."""
        out = dict(means=self.means, scales=self.log_scales, quats=self.quats, opacities=self.opacity_logits,
                   sh0=self.sh_dc[:, None, :])
        if self.sh_rest is not None:
            out["shN"] = self.sh_rest
        return out

    # tensor housekeeping
    def _map(self, fn) -> "Gaussians":
        return Gaussians(**{f.name: None if getattr(self, f.name) is None else fn(getattr(self, f.name))
                            for f in fields(self)})

    def to(self, *args, **kwargs) -> "Gaussians":
        return self._map(lambda t: t.to(*args, **kwargs))

    def detach(self) -> "Gaussians":
        return self._map(lambda t: t.detach())

    def clone(self) -> "Gaussians":
        return self._map(lambda t: t.clone())

    def __getitem__(self, index) -> "Gaussians":
        """A subset: an index, slice, boolean mask or index tensor over the N Gaussians."""
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)
        return self._map(lambda t: t[index])

    @property
    def device(self) -> torch.device:
        return self.means.device

    @property
    def dtype(self) -> torch.dtype:
        return self.means.dtype

    def render(self, cameras, backgrounds: Tensor | None = None, render_mode: str = "RGB",
               backend: str | None = None, **kwargs):
        """`rasterize` these Gaussians into `cameras` (a `Cameras`); returns (colors, alphas, info)."""
        return rasterize(self.means, self.quats, self.scales, self.opacities, self.sh, cameras.viewmats, cameras.Ks,
                         cameras.width, cameras.height, sh_degree=self.sh_degree, backgrounds=backgrounds,
                         render_mode=render_mode, backend=backend, **kwargs)
