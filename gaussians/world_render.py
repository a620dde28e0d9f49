"""WORLD.md's 4D objects as Gaussians, and their orbit clips (one view per time step).

`world/objects4d.py` gives the ground truth as surface points per time step; this module turns
them into small isotropic Gaussians (one per point, standard deviation = the point spacing,
opacity 0.95: the surface is closed and its edges are about a pixel soft at 128²) and rasterises
each time step with its orbit camera. Rendering with ditkit's own rasteriser, rather than a
separate point splatter in `world/`, keeps one camera convention and one image formation for
data and fits, so every frame is exactly something a fit can reproduce (and `world/`, a bottom
layer, stays free of `gaussians/`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from world.objects4d import Object4DSample, Object4DSpec, frame_times, sample_object4d

from .cameras import Cameras
from .gaussians import Gaussians

WORLD_SIZE = 128  # pixels per side of a world clip
WORLD_BACKGROUND = (0.0, 0.0, 0.0)
SIGMA_PER_SPACING = 1.0
WORLD_OPACITY = 0.95


@dataclass
class WorldClip:
    """An orbit clip of a 4D object: frames [T, H, W, 3] in [0, 1], one camera per frame, the frames'
    normalised times [T], and the ground truth it was rendered from."""

    frames: Tensor
    cameras: Cameras
    times: Tensor
    sample: Object4DSample

    @property
    def caption(self) -> str:
        return self.sample.caption


def object_gaussians(sample: Object4DSample, index: int) -> Gaussians:
    """The ground truth at time step `index` as isotropic Gaussians (one per surface point)."""
    points = torch.from_numpy(sample.points[index])
    sigma = SIGMA_PER_SPACING * sample.spacing * float(sample.scales[index])
    return Gaussians.from_points(points, torch.from_numpy(sample.colours), scale=sigma, opacity=WORLD_OPACITY)


def render_object(sample: Object4DSample, cameras: Cameras, background=WORLD_BACKGROUND) -> Tensor:
    """Frame i of `sample` seen by camera i → [T, H, W, 3] in [0, 1] (T = len(cameras) = the sample's times)."""
    if len(cameras) != len(sample.times):
        raise ValueError(f"one camera per time step: {len(cameras)} cameras for {len(sample.times)} times")
    frames = []
    bg = torch.tensor([background], dtype=torch.float32)
    with torch.no_grad():
        for i in range(len(cameras)):
            image, _, _ = object_gaussians(sample, i).render(cameras[i], backgrounds=bg)
            frames.append(image[0].clamp(0, 1))
    return torch.stack(frames)


def world_clip(spec: Object4DSpec | str, n_frames: int = 24, size: int = WORLD_SIZE, seed: int = 0,
               background=WORLD_BACKGROUND) -> WorldClip:
    """The orbit clip of a 4D object: frame i at time i / (n − 1), seen from `Cameras.orbit(n)[i]`."""
    sample = sample_object4d(spec, n_frames=n_frames, rng=seed)
    cameras = Cameras.orbit(n_frames, size, size)
    return WorldClip(render_object(sample, cameras, background), cameras, torch.from_numpy(frame_times(n_frames)),
                     sample)


def held_out_views(spec: Object4DSpec | str, n_frames: int = 24, size: int = WORLD_SIZE, seed: int = 0,
                   background=WORLD_BACKGROUND) -> WorldClip:
    """Novel (time, view) pairs for a clip of n frames: the n − 1 times half-way between its frames,
    each seen from an orbit camera half-way between those of its neighbours. Same points as
    `world_clip(spec, n_frames, size, seed)`."""
    times = (np.arange(n_frames - 1) + 0.5) / (n_frames - 1)
    sample = sample_object4d(spec, rng=seed, times=times)
    half_step = Cameras.orbit(2 * n_frames, size, size)
    cameras = half_step[torch.arange(1, 2 * n_frames - 1, 2)]
    return WorldClip(render_object(sample, cameras, background), cameras, torch.from_numpy(times), sample)
