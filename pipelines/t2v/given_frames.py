"""The frames a user hands a video pipeline: frames to continue from and keyframes.

Both become "given" frames (VDT's mask modelling): clean frames the model conditions on and the
output returns unchanged. This module turns whatever image form they arrive in into one
(F, 3, H, W) tensor in [0, 1] plus an (F,) mask, and names the bad value when they do not fit.
"""

from __future__ import annotations

import numpy as np
import PIL.Image
import torch

from dit.video_masks import given_frames_mask

from ..core.errors import UserError


def image_stack(images, what: str) -> torch.Tensor:
    """Images → float32 (k, 3, H, W) in [0, 1]. Accepted: arrays (k, H, W, 3) or (H, W, 3), uint8 or
    float in [0, 1]; tensors (k, 3, H, W) or (3, H, W) (channels-last too); PIL images; lists of these."""
    if isinstance(images, (list, tuple)):
        if not images:
            raise UserError(f"{what} is an empty list")
        return torch.cat([image_stack(image, what) for image in images])
    if isinstance(images, PIL.Image.Image):
        images = np.array(images.convert("RGB"))
    channels_last = isinstance(images, np.ndarray)
    if channels_last:
        images = torch.from_numpy(np.ascontiguousarray(images))
    if not isinstance(images, torch.Tensor):
        raise UserError(f"{what} must be images (array, tensor or PIL), got {type(images).__name__}")
    x = images.detach().cpu()
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4:
        raise UserError(f"{what} must be (k, H, W, 3) or (H, W, 3) images, got shape {tuple(images.shape)}")
    if channels_last or (x.shape[1] != 3 and x.shape[-1] == 3):
        x = x.permute(0, 3, 1, 2)
    if x.shape[1] != 3:
        raise UserError(f"{what} must be RGB images (3 channels), got shape {tuple(images.shape)}")
    if x.dtype == torch.uint8:
        return x.float() / 255.0
    x = x.float()
    if not torch.isfinite(x).all() or x.min() < 0 or x.max() > 1:
        raise UserError(f"{what} as floats must lie in [0, 1], got values in [{x.min():.3g}, {x.max():.3g}]")
    return x


def keyframe_items(keyframes) -> list[tuple[int, object]]:
    """{index: image} or [(index, image), …] → sorted [(index, image)], each index once."""
    items = list(keyframes.items()) if isinstance(keyframes, dict) else list(keyframes)
    seen = set()
    for item in items:
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise UserError(f"keyframes must be {{index: image}} or [(index, image), …], got an item {item!r}")
        index = item[0]
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
            raise UserError(f"keyframe index {index!r} is not an integer")
        if int(index) in seen:
            raise UserError(f"keyframe index {index} is given twice")
        seen.add(int(index))
    return sorted((int(i), image) for i, image in items)


def check_frame_size(frames: torch.Tensor, height: int, width: int, what: str) -> None:
    h, w = frames.shape[-2:]
    if (h, w) != (height, width):
        raise UserError(f"{what}: size {h}x{w}, expected {height}x{width} (height x width) to match the video")


def given_frames(init_frames, keyframes, num_frames: int, height: int, width: int):
    """→ None when nothing is given, else (frames (F, 3, H, W) in [0, 1], mask (F,) bool).

    `init_frames` become frames 0..k-1; `keyframes` {index: image} go to their index. Frames that
    are not given are zeros in `frames`.
    """
    if init_frames is None and not keyframes:
        return None
    frames = torch.zeros(num_frames, 3, height, width)
    init_count = 0
    if init_frames is not None:
        init = image_stack(init_frames, "init_frames")
        init_count = init.shape[0]
        if init_count > num_frames:
            raise UserError(f"got {init_count} init_frames for a video of num_frames={num_frames}")
        check_frame_size(init, height, width, "init_frames")
        frames[:init_count] = init
    indices = []
    for index, image in keyframe_items(keyframes or {}):
        if not 0 <= index < num_frames:
            raise UserError(f"keyframe index {index} is out of range for num_frames={num_frames} "
                            f"(0..{num_frames - 1})")
        if index < init_count:
            raise UserError(f"keyframe index {index} conflicts with init_frames, which give frames "
                            f"0..{init_count - 1}")
        frame = image_stack(image, f"keyframe {index}")
        if frame.shape[0] != 1:
            raise UserError(f"keyframe {index} must be one image, got {frame.shape[0]}")
        check_frame_size(frame, height, width, f"keyframe {index}")
        frames[index] = frame[0]
        indices.append(index)
    return frames, given_frames_mask(num_frames, init_count, indices)
