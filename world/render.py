"""Pixels of Shapes World: a still image or a video clip from its spec.

An image is background blended with the object colour by the anti-aliased coverage
(`raster.shape_coverage`); the only randomness is the centre jitter, drawn from `rng`
(no rng: no jitter), so the same spec and seed always give the same pixels.
"""

from __future__ import annotations

import numpy as np

from .layout import Pose, clip_poses, draw_jitter, image_pose
from .raster import shape_coverage
from .scene import ImageSpec, as_rng
from .video_scene import VideoSpec
from .vocab import BACKGROUNDS, COLOURS

SUPERSAMPLE = 8  # edges exact to 1/8 px: areas within 2% even for the arms of a 32x32 cross


def compose(colour: str, background: str, alpha: np.ndarray) -> np.ndarray:
    """Blend the object colour over the background: alpha (H, W) -> uint8 (H, W, 3)."""
    bg = np.asarray(BACKGROUNDS[background], dtype=np.float32)
    fg = np.asarray(COLOURS[colour], dtype=np.float32)
    rgb = bg + alpha[..., None] * (fg - bg)
    return np.rint(rgb).astype(np.uint8)


def render_pose(shape: str, colour: str, background: str, pose: Pose, resolution: int) -> np.ndarray:
    """One frame with the object at `pose`: uint8 (H, W, 3)."""
    alpha = shape_coverage(shape, pose, resolution, SUPERSAMPLE)
    return compose(colour, background, alpha)


def render_image(spec: ImageSpec, resolution: int = 64, rng=None) -> np.ndarray:
    """A still image of `spec`: uint8 (H, W, 3) with H = W = resolution (>= 32 per WORLD.md).

    `rng` (numpy Generator or seed) draws the centre jitter; None places the object exactly
    in the middle of its cell (then clamped inside).
    """
    jitter = draw_jitter(None if rng is None else as_rng(rng), resolution)
    pose = image_pose(spec.shape, spec.size, spec.position, resolution, jitter)
    return render_pose(spec.shape, spec.colour, spec.background, pose, resolution)


def render_video(spec: VideoSpec | ImageSpec, motion: str | None = None, num_frames: int = 16,
                 resolution: int = 32, rng=None) -> np.ndarray:
    """A clip of `spec`: uint8 (T, H, W, 3).

    `motion` overrides `spec.motion` when given (so an `ImageSpec` can be animated too);
    `rng` draws the start jitter as in `render_image`.
    """
    if isinstance(spec, ImageSpec):
        if motion is None:
            raise ValueError("an ImageSpec needs a motion to become a clip")
        spec = VideoSpec(spec.colour, spec.shape, spec.size, spec.position, spec.background, motion)
    elif motion is not None and motion != spec.motion:
        spec = VideoSpec(spec.colour, spec.shape, spec.size, spec.position, spec.background, motion)
    jitter = draw_jitter(None if rng is None else as_rng(rng), resolution)
    poses = clip_poses(spec.shape, spec.size, spec.start_position, spec.motion, resolution,
                       num_frames, jitter)
    frames = [render_pose(spec.shape, spec.colour, spec.background, pose, resolution) for pose in poses]
    return np.stack(frames)
