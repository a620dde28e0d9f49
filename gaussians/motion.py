"""`Gaussians4D`: canonical 3D Gaussians and their motion over normalised time t ∈ [0, 1].

Motion has two parts, both polynomials in t that vanish at t = 0 (the canonical set is the scene at
the first time step):

- per Gaussian, Spacetime Gaussians' trajectories (Li et al. 2024): a cubic path for the centre,
  μᵢ(t) = μᵢ + aᵢt + bᵢt² + cᵢt³; a linear path for the rotation, qᵢ(t) = normalise(qᵢ + ωᵢt); a
  linear path for the log-scale, log sᵢ(t) = log sᵢ + δᵢt;
- per object, a similarity track shared by all Gaussians: a rotation vector r(t), a log-scale σ(t)
  and a translation T(t), each cubic, applied about a fixed pivot p (the object's centre at t = 0):
  x(t) = p + R(r(t)) · e^σ(t) · (μᵢ(t) − p) + T(t); rotations compose, log-scales add.

Why polynomials rather than a deformation field (4DGaussians' HexPlane + MLP): the motions to fit
are those of rigid or affine objects, smooth in time. A polynomial is exact for the world's moves
(constant speed: linear; a bounce: a parabola, quadratic), a quarter turn is within 0.03 % of a
cubic, and evaluating one costs a handful of multiply-adds per Gaussian, nothing on a CPU next to
rasterising; a field would spend most of a CPU fit in its MLP and still have to learn what a
polynomial states. Why a shared track as well: a clip gives one view per time step, so a lone
Gaussian's path is under-determined (its depth along that view's ray is free); a whole object's
track gathers every Gaussian's gradient into a few numbers (27), which the fit finds first, and
the per-Gaussian terms stay small (the rigidity regulariser of `fit4d`) and carry only what is not
rigid. For a general scene, the track is the identity and the per-Gaussian paths do all the work.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor

from .gaussians import Gaussians
from .projection import quat_to_rotmat

DEGREE = 3  # of every position and track polynomial


def powers(t: Tensor | float, degree: int = DEGREE, like: Tensor | None = None) -> Tensor:
    """[t, t², …, t^degree] as a tensor [degree] (the constant term is the canonical value)."""
    t = torch.as_tensor(t, dtype=like.dtype if like is not None else torch.float32,
                        device=like.device if like is not None else None)
    return torch.stack([t ** k for k in range(1, degree + 1)])


def axis_angle_to_quat(r: Tensor) -> Tensor:
    """Unit wxyz quaternion [..., 4] of rotation vectors r [..., 3] (angle = |r|, axis = r / |r|); smooth at 0."""
    angle = torch.sqrt((r * r).sum(-1, keepdim=True) + 1e-12)
    half_sinc = 0.5 * torch.sinc(angle / (2 * torch.pi))  # sin(θ/2) / θ
    return torch.cat([torch.cos(angle / 2), half_sinc * r], dim=-1)


def quat_multiply(a: Tensor, b: Tensor) -> Tensor:
    """Hamilton product a ⊗ b of wxyz quaternions [..., 4] (the rotation b, then a)."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack([aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                        aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw], dim=-1)


@dataclass
class Gaussians4D:
    """N Gaussians moving over t ∈ [0, 1]: canonical Gaussians (t = 0), per-Gaussian polynomial paths and
    an object similarity track (see the module docstring)."""

    canonical: Gaussians
    velocities: Tensor  # [N, 3, 3] position coefficients of t, t², t³ (one row per power)
    rot_rates: Tensor  # [N, 4] ω: q(t) = normalise(q + ωt)
    scale_rates: Tensor  # [N, 3] δ: log s(t) = log s + δt
    track_rotation: Tensor  # [3, 3] rotation-vector coefficients of t, t², t³
    track_log_scale: Tensor  # [3] log-scale coefficients of t, t², t³
    track_translation: Tensor  # [3, 3] translation coefficients of t, t², t³
    pivot: Tensor  # [3] the point the track turns and scales the object about

    def __post_init__(self):
        n = len(self.canonical)
        expected = dict(velocities=(n, DEGREE, 3), rot_rates=(n, 4), scale_rates=(n, 3),
                        track_rotation=(DEGREE, 3), track_log_scale=(DEGREE,), track_translation=(DEGREE, 3),
                        pivot=(3,))
        for name, shape in expected.items():
            if tuple(getattr(self, name).shape) != shape:
                raise ValueError(f"Gaussians4D.{name} must have shape {list(shape)} (N = {n}), "
                                 f"got {tuple(getattr(self, name).shape)}")

    def __len__(self) -> int:
        return len(self.canonical)

    @classmethod
    def still(cls, canonical: Gaussians, pivot: Tensor | None = None) -> "Gaussians4D":
        """Gaussians that do not move (every motion term zero); the pivot defaults to their mean centre."""
        m = canonical.means
        z = m.new_zeros
        return cls(canonical, z(len(m), DEGREE, 3), z(len(m), 4), z(len(m), 3), z(DEGREE, 3), z(DEGREE),
                   z(DEGREE, 3), m.detach().mean(0) if pivot is None else torch.as_tensor(pivot, dtype=m.dtype))

    def track_at(self, t: Tensor | float) -> tuple[Tensor, Tensor, Tensor]:
        """The object track at t: (unit quaternion [4], log-scale [], translation [3])."""
        p = powers(t, like=self.pivot)
        return axis_angle_to_quat(p @ self.track_rotation), p @ self.track_log_scale, p @ self.track_translation

    def at(self, t: Tensor | float) -> Gaussians:
        """The 3D Gaussians at time t (differentiable in every parameter and in t)."""
        c = self.canonical
        p = powers(t, like=c.means)  # [3]
        local = c.means + torch.einsum("k,nkd->nd", p, self.velocities)  # [N, 3]
        q_obj, log_s, translation = self.track_at(t)
        R = quat_to_rotmat(q_obj)  # [3, 3]
        means = self.pivot + torch.exp(log_s) * (local - self.pivot) @ R.T + translation
        quats = quat_multiply(q_obj.expand(len(c), 4), F.normalize(c.quats + p[0] * self.rot_rates, dim=-1))
        log_scales = c.log_scales + p[0] * self.scale_rates + log_s
        return Gaussians(means=means, log_scales=log_scales, quats=quats, opacity_logits=c.opacity_logits,
                         sh_dc=c.sh_dc, sh_rest=c.sh_rest)

    # gsplat-style parameter dicts (per Gaussian: what DefaultStrategy densifies; per object: the track)
    def params(self) -> dict[str, Tensor]:
        """Per-Gaussian parameters: the canonical set's (`Gaussians.params`) plus velocities, rot_rates,
        scale_rates, all [N, …], so that gsplat's densification clones, splits and prunes them together."""
        return {**self.canonical.params(), "velocities": self.velocities, "rot_rates": self.rot_rates,
                "scale_rates": self.scale_rates}

    def track_params(self) -> dict[str, Tensor]:
        return {"track_rotation": self.track_rotation, "track_log_scale": self.track_log_scale,
                "track_translation": self.track_translation}

    @classmethod
    def from_params(cls, params: dict, track: dict, pivot: Tensor) -> "Gaussians4D":
        return cls(Gaussians.from_params(params), params["velocities"], params["rot_rates"], params["scale_rates"],
                   track["track_rotation"], track["track_log_scale"], track["track_translation"], pivot)

    def _map(self, fn) -> "Gaussians4D":
        return Gaussians4D(**{f.name: fn(getattr(self, f.name)) for f in fields(self)})

    def detach(self) -> "Gaussians4D":
        return self._map(lambda t: t.detach())

    def to(self, *args, **kwargs) -> "Gaussians4D":
        return self._map(lambda t: t.to(*args, **kwargs))

    def __getitem__(self, index) -> "Gaussians4D":
        """A subset of the Gaussians (the track is shared)."""
        return Gaussians4D(self.canonical[index], self.velocities[index], self.rot_rates[index],
                           self.scale_rates[index], self.track_rotation, self.track_log_scale,
                           self.track_translation, self.pivot)
