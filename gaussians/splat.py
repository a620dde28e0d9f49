"""`.splat` files (antimatter15/splat's web format): 32 bytes per Gaussian, no header.

Per Gaussian: position as 3 float32, scales as 3 float32 (activated: exp of the log-scales),
colour as 4 uint8 RGBA (degree-0 colour SH_C0 · dc + 0.5 and sigmoid opacity, times 255),
rotation as 4 uint8 (the unit wxyz quaternion mapped from [−1, 1] to 0..255 as q · 128 + 128).
Colour and rotation are quantised and view-dependent bands are dropped, so reading a `.splat`
back gives Gaussians close to, not equal to, the ones written. Like the reference converter,
`write_splat` puts the most visible Gaussians (largest volume × opacity) first by default.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .gaussians import Gaussians
from .sh import rgb_to_sh

SPLAT_DTYPE = np.dtype([("position", "<f4", 3), ("scale", "<f4", 3), ("rgba", "u1", 4), ("rot", "u1", 4)])
assert SPLAT_DTYPE.itemsize == 32


def _to_u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def write_splat(path: str | os.PathLike, gaussians: Gaussians, sort: bool = True) -> None:
    """Writes `gaussians` as a `.splat` file at `path` (plain write, as `write_ply`); `sort` puts the
    most visible first."""
    g = gaussians.detach().to("cpu", torch.float32)
    order = torch.arange(len(g))
    if sort:
        importance = torch.exp(g.log_scales.sum(-1)) * g.opacities
        order = torch.sort(-importance, stable=True).indices
        g = g[order]
    out = np.empty(len(g), dtype=SPLAT_DTYPE)
    out["position"] = g.means.numpy()
    out["scale"] = g.scales.numpy()
    rgba = torch.cat([g.rgb.clamp(0, 1), g.opacities[:, None]], dim=-1)
    out["rgba"] = _to_u8(rgba.numpy() * 255)
    out["rot"] = _to_u8(g.rotations.numpy() * 128 + 128)
    Path(path).write_bytes(out.tobytes())


def read_splat(path: str | os.PathLike) -> Gaussians:
    """Reads a `.splat` file back into float32 `Gaussians` (degree-0 colour only)."""
    raw = np.fromfile(str(path), dtype=np.uint8)
    if raw.size % SPLAT_DTYPE.itemsize:
        raise ValueError(f"{path}: {raw.size} bytes is not a whole number of 32-byte splats")
    s = raw.view(SPLAT_DTYPE)
    rgba = torch.from_numpy(s["rgba"].astype(np.float32)) / 255
    rot = (torch.from_numpy(s["rot"].astype(np.float32)) - 128) / 128
    opacity = rgba[:, 3].clamp(0.5 / 255, 1 - 0.5 / 255)  # keep the logit finite
    return Gaussians(means=torch.from_numpy(s["position"].copy()),
                     log_scales=torch.log(torch.from_numpy(s["scale"].copy())), quats=rot,
                     opacity_logits=torch.logit(opacity), sh_dc=rgb_to_sh(rgba[:, :3]))
