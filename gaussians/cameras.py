"""`Cameras`: C pinhole cameras in gsplat's layout, and the orbit path of WORLD.md's 4D clips.

Conventions: `viewmats` map world to camera coordinates with OpenCV axes (+x right, +y down,
+z forward, into the scene); `Ks` are [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] in pixels with pixel
centres at +0.5, so (cx, cy) = (W/2, H/2) is the image centre. The world has +y up.

The orbit (WORLD.md, 4D objects): a camera at distance 4 from the origin, elevation 20°,
looking at the origin, vertical field of view 40°, starting on +z and making one full turn,
counter-clockwise seen from above (+z → +x → −z → −x), frame i at azimuth 360° · i / n.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

import torch
from torch import Tensor

ORBIT_DISTANCE = 4.0
ORBIT_ELEVATION_DEG = 20.0
ORBIT_FOV_Y_DEG = 40.0
WORLD_UP = (0.0, 1.0, 0.0)


def intrinsics(fov_y_deg: float, width: int, height: int, dtype=torch.float32) -> Tensor:
    """K [3, 3] for a vertical field of view, square pixels and the principal point at the image centre."""
    f = 0.5 * height / math.tan(math.radians(fov_y_deg) / 2)
    return torch.tensor([[f, 0.0, width / 2], [0.0, f, height / 2], [0.0, 0.0, 1.0]], dtype=dtype)


def look_at(eyes: Tensor, targets: Tensor, up=WORLD_UP) -> Tensor:
    """World-to-camera viewmats [C, 4, 4] (OpenCV axes) for cameras at `eyes` [C, 3] looking at `targets` [C, 3]."""
    up = torch.as_tensor(up, dtype=eyes.dtype, device=eyes.device).expand_as(eyes)
    forward = targets - eyes
    if (forward.norm(dim=-1) == 0).any():
        raise ValueError("look_at: a camera sits on its target")
    forward = forward / forward.norm(dim=-1, keepdim=True)
    right = torch.linalg.cross(forward, up, dim=-1)
    if (right.norm(dim=-1) < 1e-8).any():
        raise ValueError("look_at: a camera looks along the up vector; its roll is undefined")
    right = right / right.norm(dim=-1, keepdim=True)
    down = torch.linalg.cross(forward, right, dim=-1)
    R = torch.stack([right, down, forward], dim=-2)  # rows: camera axes in world coordinates
    viewmats = torch.zeros(eyes.shape[0], 4, 4, dtype=eyes.dtype, device=eyes.device)
    viewmats[:, :3, :3] = R
    viewmats[:, :3, 3] = -(R @ eyes[..., None])[..., 0]
    viewmats[:, 3, 3] = 1.0
    return viewmats


@dataclass
class Cameras:
    """C pinhole cameras sharing one image size (gsplat's `viewmats`, `Ks`, `width`, `height`)."""

    viewmats: Tensor  # [C, 4, 4] world-to-camera, OpenCV axes
    Ks: Tensor  # [C, 3, 3] intrinsics in pixels
    width: int
    height: int

    def __post_init__(self):
        if self.viewmats.dim() != 3 or self.viewmats.shape[1:] != (4, 4):
            raise ValueError(f"Cameras.viewmats must be [C, 4, 4], got {tuple(self.viewmats.shape)}")
        if tuple(self.Ks.shape) != (self.viewmats.shape[0], 3, 3):
            raise ValueError(f"Cameras.Ks must be [{self.viewmats.shape[0]}, 3, 3], got {tuple(self.Ks.shape)}")
        if int(self.width) <= 0 or int(self.height) <= 0:
            raise ValueError(f"Cameras need a positive image size, got {self.width}×{self.height}")
        self.width, self.height = int(self.width), int(self.height)

    def __len__(self) -> int:
        return self.viewmats.shape[0]

    def __getitem__(self, index) -> "Cameras":
        """A subset of cameras (an integer — Python's, numpy's or a 0-d tensor — keeps a leading
        dimension of 1)."""
        if not isinstance(index, slice) and not (torch.is_tensor(index) and index.ndim > 0) \
                and not isinstance(index, (list, tuple)) and getattr(index, "ndim", 0) == 0:
            position = operator.index(index)
            index = slice(position, position + 1 if position != -1 else None)
        return Cameras(self.viewmats[index], self.Ks[index], self.width, self.height)

    @property
    def positions(self) -> Tensor:
        """Camera centres in world space [C, 3]."""
        R, t = self.viewmats[:, :3, :3], self.viewmats[:, :3, 3:]
        return -(R.transpose(1, 2) @ t)[..., 0]

    @property
    def forwards(self) -> Tensor:
        """Viewing directions (camera +z) in world space [C, 3]."""
        return self.viewmats[:, 2, :3]

    def to(self, *args, **kwargs) -> "Cameras":
        return Cameras(self.viewmats.to(*args, **kwargs), self.Ks.to(*args, **kwargs), self.width, self.height)

    def to_dict(self) -> dict:
        """A JSON-ready dict: viewmats and Ks as nested lists, width, height, convention."""
        return dict(convention="opencv world-to-camera", width=self.width, height=self.height,
                    viewmats=self.viewmats.detach().cpu().tolist(), Ks=self.Ks.detach().cpu().tolist())

    @classmethod
    def from_dict(cls, d: dict, dtype=torch.float32) -> "Cameras":
        return cls(torch.tensor(d["viewmats"], dtype=dtype), torch.tensor(d["Ks"], dtype=dtype), d["width"],
                   d["height"])

    @classmethod
    def orbit(cls, n_frames: int, width: int, height: int, distance: float = ORBIT_DISTANCE,
              elevation_deg: float = ORBIT_ELEVATION_DEG, fov_y_deg: float = ORBIT_FOV_Y_DEG,
              turns: float = 1.0, dtype=torch.float32) -> "Cameras":
        """WORLD.md's orbit: n_frames cameras around the origin, frame i at azimuth 360° · turns · i / n.

        Azimuth 0 is +z; it grows counter-clockwise seen from above (towards +x), so camera i
        sits at distance · (cos e · sin a, sin e, cos e · cos a) and looks at the origin.
        """
        if n_frames < 1:
            raise ValueError(f"an orbit needs at least one frame, got {n_frames}")
        azimuth = torch.arange(n_frames, dtype=torch.float64) * (2 * math.pi * turns / n_frames)
        e = math.radians(elevation_deg)
        eyes = distance * torch.stack([math.cos(e) * torch.sin(azimuth), torch.full_like(azimuth, math.sin(e)),
                                       math.cos(e) * torch.cos(azimuth)], dim=-1)
        viewmats = look_at(eyes, torch.zeros_like(eyes)).to(dtype)
        Ks = intrinsics(fov_y_deg, width, height, dtype).expand(n_frames, 3, 3).clone()
        return cls(viewmats, Ks, width, height)
