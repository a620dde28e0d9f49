"""Standard 3DGS `.ply` files: the layout the reference code, gsplat and web viewers read.

One vertex element, binary little-endian float32 properties in this order:
x y z nx ny nz f_dc_0..2 f_rest_0..(3K−1) opacity scale_0..2 rot_0..3, all pre-activation
(opacity is a logit, scales are logs, rot is a wxyz quaternion as stored). f_rest is
channel-major, as the reference code writes it: f_rest_{c·K + k} is band coefficient k of
colour channel c. Normals are written as zeros and ignored on reading.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from plyfile import PlyData, PlyElement

from .gaussians import Gaussians


def ply_properties(n_rest: int) -> list[str]:
    """Property names, in file order, for K = n_rest higher-band coefficients per channel."""
    return (["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
            + [f"f_rest_{i}" for i in range(3 * n_rest)]
            + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"])


def write_ply(path: str | os.PathLike, gaussians: Gaussians) -> None:
    """Writes `gaussians` as a float32 3DGS `.ply` at `path`. Plain write: a caller that must never
    leave half a file wraps it (`pipelines.core.atomic.atomic_write(path, lambda tmp: write_ply(tmp, g))`)."""
    g = gaussians.detach().to("cpu", torch.float32)
    n = len(g)
    k = 0 if g.sh_rest is None else g.sh_rest.shape[1]
    rest = np.zeros((n, 0), np.float32) if g.sh_rest is None else g.sh_rest.transpose(1, 2).reshape(n, 3 * k).numpy()
    columns = np.concatenate([g.means.numpy(), np.zeros((n, 3), np.float32), g.sh_dc.numpy(), rest,
                              g.opacity_logits[:, None].numpy(), g.log_scales.numpy(), g.quats.numpy()], axis=1)
    names = ply_properties(k)
    vertex = np.empty(n, dtype=[(name, "<f4") for name in names])
    for i, name in enumerate(names):
        vertex[name] = columns[:, i]
    data = PlyData([PlyElement.describe(vertex, "vertex")], text=False, byte_order="<")
    data.write(str(path))


def read_ply(path: str | os.PathLike) -> Gaussians:
    """Reads a 3DGS `.ply` (any byte order; normals optional) into float32 `Gaussians`."""
    data = PlyData.read(str(path))
    if "vertex" not in data:
        raise ValueError(f"{path}: no 'vertex' element; not a 3D Gaussian splatting .ply")
    v = data["vertex"].data
    names = set(v.dtype.names)
    required = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
                "rot_0", "rot_1", "rot_2", "rot_3"]
    missing = [p for p in required if p not in names]
    if missing:
        raise ValueError(f"{path}: not a 3D Gaussian splatting .ply, missing properties {missing}")
    rest_names = sorted((p for p in names if p.startswith("f_rest_")), key=lambda p: int(p[len("f_rest_"):]))
    if len(rest_names) % 3 or rest_names != [f"f_rest_{i}" for i in range(len(rest_names))]:
        raise ValueError(f"{path}: f_rest properties must be f_rest_0..f_rest_(3K−1), got {len(rest_names)} of them")

    def cols(*props):
        return torch.from_numpy(np.stack([np.asarray(v[p], dtype=np.float32) for p in props], axis=1))

    n, k = len(v), len(rest_names) // 3
    sh_rest = cols(*rest_names).view(n, 3, k).transpose(1, 2).contiguous() if k else None
    return Gaussians(means=cols("x", "y", "z"), log_scales=cols("scale_0", "scale_1", "scale_2"),
                     quats=cols("rot_0", "rot_1", "rot_2", "rot_3"), opacity_logits=cols("opacity")[:, 0],
                     sh_dc=cols("f_dc_0", "f_dc_1", "f_dc_2"), sh_rest=sh_rest)
