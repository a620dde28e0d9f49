"""An object's track from its silhouettes: where it is and how big, at every frame, in closed form.

For frames of one object on a flat background, each frame's mask (pixels that differ from the
background) gives a 2D centroid and an area. The centroid's ray from that frame's camera passes
near the object's centre c(tᵢ); with c(t) a cubic in t, the centre is the linear least-squares
solution of Σᵢ |(I − dᵢdᵢᵀ)(c(tᵢ) − oᵢ)|² (oᵢ the camera centre, dᵢ the ray's direction), a
triangulation across time that one view per time step is enough for when the views turn around
the object. The apparent radius √(area/π) times depth over focal length gives the object's radius
at each frame; the slope of its log over t is the log-scale rate (a straight line, since how much
of a non-round solid a view shows varies around the orbit and averages out over a turn).

`fit4d` uses this to start its object track and to centre its initial points: a moving object is
then nearly still in its own frame, and the static stage can fit its shape on every frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .cameras import Cameras

MASK_THRESHOLD = 0.1  # a pixel belongs to the object when a channel differs from the background by more
MIN_PIXELS = 4  # frames with fewer object pixels say nothing
RIDGE = 1e-4  # keeps the higher coefficients small where the views cannot tell


@dataclass(frozen=True)
class SilhouetteTrack:
    """The object's centre at t = 0 [3], translation coefficients of t, t², t³ [3, 3], log-scale
    coefficients [3] (linear: only the first is non-zero), and its radius at t = 0."""

    centre: Tensor
    translation: Tensor
    log_scale: Tensor
    radius: float


def masks_from_background(frames: Tensor, background: Tensor) -> Tensor:
    """Object masks [F, H, W] (bool) of frames [F, H, W, 3] on a flat background [3]."""
    return (frames - background.view(1, 1, 1, 3)).abs().amax(-1) > MASK_THRESHOLD


def silhouette_track(masks: Tensor, cameras: Cameras, times: Tensor) -> SilhouetteTrack | None:
    """The track that best explains the masks' centroids and areas (see the module docstring);
    None when fewer than two frames show the object."""
    masks = masks.to(torch.float64)
    area = masks.sum((1, 2))
    seen = torch.nonzero(area >= MIN_PIXELS).flatten()
    if len(seen) < 2:
        return None
    h, w = masks.shape[1:]
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64) + 0.5, torch.arange(w, dtype=torch.float64) + 0.5,
                            indexing="ij")
    m, t = masks[seen], times[seen].to(torch.float64)
    u = (m * xs).sum((1, 2)) / area[seen]
    v = (m * ys).sum((1, 2)) / area[seen]
    viewmats, Ks = cameras.viewmats[seen].to(torch.float64), cameras.Ks[seen].to(torch.float64)
    R = viewmats[:, :3, :3]
    origins = -(R.transpose(1, 2) @ viewmats[:, :3, 3:])[..., 0]  # [S, 3]
    pixel = torch.stack([u, v, torch.ones_like(u)], dim=-1)
    rays = (R.transpose(1, 2) @ torch.linalg.solve(Ks, pixel[..., None]))[..., 0]
    rays = rays / rays.norm(dim=-1, keepdim=True)
    P = torch.eye(3, dtype=torch.float64) - rays[:, :, None] * rays[:, None, :]  # [S, 3, 3]
    # unknowns: c0 (3) and the coefficients of t, t², t³ (3 × 3); row block i: P_i [I, t I, t² I, t³ I]
    basis = torch.stack([t ** k for k in range(4)], dim=-1)  # [S, 4]
    A = (P[:, :, None, :] * basis[:, None, :, None]).reshape(len(seen) * 3, 12)
    b = (P @ origins[..., None]).reshape(-1)
    reg = torch.diag(torch.tensor([0.0] * 3 + [RIDGE] * 9, dtype=torch.float64))
    coeffs = torch.linalg.solve(A.T @ A + reg, A.T @ b).view(4, 3)
    centres = basis @ coeffs  # [S, 3]
    depth = ((centres - origins) * viewmats[:, 2, :3]).sum(-1).clamp_min(1e-6)
    radius = torch.sqrt(area[seen] / torch.pi) * depth / Ks[:, 1, 1]  # object radius per frame
    X = torch.stack([torch.ones_like(t), t], dim=-1)
    intercept, slope = torch.linalg.lstsq(X, torch.log(radius)[:, None]).solution[:, 0]
    return SilhouetteTrack(centre=coeffs[0].float(), translation=coeffs[1:].float(),
                           log_scale=torch.tensor([slope.item(), 0.0, 0.0]), radius=float(torch.exp(intercept)))
