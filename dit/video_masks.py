"""VDT-style mask modelling: which frames of a clip are given (clean) and which are generated.

One video model serves many tasks when some frames arrive clean and the rest are denoised
(VDT, Lu et al. 2023): text-to-video (nothing given), prediction (the first k frames given),
backward prediction (the last k), interpolation (every k-th), image-to-video (one frame), and
random frames. Training draws a task per clip (`sample_frame_masks`); sampling builds the mask
from what the user passed (`given_frames_mask`). The loss is taken only where the model has to
generate (`masked_loss`): the given positions are copied from the input, so their prediction
is never used.

Masks are bool, True = given. Frame masks are (B, F); token masks (B, F, h, w).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

MASK_MODES = ("unconditional", "predict", "backward", "interpolate", "single", "random", "first")

# Mostly plain text-to-video (the main task), the rest spread over the conditional tasks.
DEFAULT_MODE_WEIGHTS = {"unconditional": 0.4, "predict": 0.2, "backward": 0.1, "interpolate": 0.1,
                        "single": 0.1, "random": 0.1, "first": 0.0}


def mask_for(mode: str, num_frames: int, k: int = 1, index: int = 0,
             generator: torch.Generator | None = None, prob: float = 0.3) -> torch.Tensor:
    """The (F,) given-mask of one task.

    first: frame 0 alone (the task image-first sampling sets); predict: frames 0..k-1;
    backward: the last k; interpolate: every k-th frame from 0;
    single: frame `index`; random: each frame with probability `prob` (from `generator`),
    never all of them; unconditional: none.
    """
    if mode not in MASK_MODES:
        raise ValueError(f"unknown mask mode {mode!r}; expected one of {MASK_MODES}")
    if num_frames <= 0:
        raise ValueError(f"num_frames must be positive, got {num_frames}")
    mask = torch.zeros(num_frames, dtype=torch.bool)
    if mode in ("predict", "backward", "interpolate") and not 1 <= k <= num_frames:
        raise ValueError(f"k={k} is out of range for mode {mode!r} with {num_frames} frames")
    if mode == "first":
        mask[0] = True
    elif mode == "predict":
        mask[:k] = True
    elif mode == "backward":
        mask[num_frames - k:] = True
    elif mode == "interpolate":
        mask[::k] = True
    elif mode == "single":
        if not 0 <= index < num_frames:
            raise ValueError(f"frame index {index} is out of range [0, {num_frames})")
        mask[index] = True
    elif mode == "random":
        mask = torch.rand(num_frames, generator=generator) < prob
        if mask.all():  # keep at least one frame to generate
            mask[int(torch.randint(num_frames, (1,), generator=generator))] = False
    return mask


def sample_frame_masks(batch: int, num_frames: int, generator: torch.Generator | None = None,
                       modes: tuple[str, ...] | list[str] = MASK_MODES,
                       weights: dict[str, float] | list[float] | None = None) -> torch.Tensor:
    """(B, F) bool given-masks for a training batch: one task per clip, drawn by `weights`.

    Each task's parameter is drawn too (k, the single frame's index, the random rate), always
    leaving at least one frame to generate. Reproducible for a seeded `generator`.
    """
    modes = list(modes)
    for mode in modes:
        if mode not in MASK_MODES:
            raise ValueError(f"unknown mask mode {mode!r}; expected one of {MASK_MODES}")
    if weights is None:
        weights = [DEFAULT_MODE_WEIGHTS[m] for m in modes]
    elif isinstance(weights, dict):
        weights = [weights.get(m, 0.0) for m in modes]
    if len(weights) != len(modes) or sum(weights) <= 0 or min(weights) < 0:
        raise ValueError(f"weights {weights} do not fit modes {modes}")
    if num_frames == 1:  # a one-frame clip has nothing to condition on
        return torch.zeros(batch, 1, dtype=torch.bool)

    def draw(low: int, high: int) -> int:
        return int(torch.randint(low, high, (1,), generator=generator))

    # modes of weight 0 leave the draw: a recipe's masks do not change when a mode is added
    modes, weights = zip(*[(m, w) for m, w in zip(modes, weights) if w > 0])
    picks = torch.multinomial(torch.tensor(weights, dtype=torch.float64), batch, replacement=True,
                              generator=generator)
    masks = []
    for pick in picks.tolist():
        mode = modes[pick]
        if mode in ("predict", "backward"):
            masks.append(mask_for(mode, num_frames, k=draw(1, num_frames)))
        elif mode == "interpolate":
            masks.append(mask_for(mode, num_frames, k=draw(2, max(num_frames // 2, 2) + 1)))
        elif mode == "single":
            masks.append(mask_for(mode, num_frames, index=draw(0, num_frames)))
        elif mode == "random":
            prob = 0.1 + 0.4 * float(torch.rand(1, generator=generator))
            masks.append(mask_for(mode, num_frames, generator=generator, prob=prob))
        else:
            masks.append(mask_for(mode, num_frames))
    return torch.stack(masks)  # (B, F)


def given_frames_mask(num_frames: int, init_count: int = 0, keyframe_indices=()) -> torch.Tensor:
    """(F,) given-mask for a sampling call: the first `init_count` frames plus the keyframes."""
    mask = torch.zeros(num_frames, dtype=torch.bool)
    if not 0 <= init_count <= num_frames:
        raise ValueError(f"{init_count} init frames do not fit {num_frames} frames")
    mask[:init_count] = True
    for i in keyframe_indices:
        if not 0 <= i < num_frames:
            raise ValueError(f"keyframe index {i} is out of range [0, {num_frames})")
        mask[i] = True
    return mask


def expand_mask(given_mask: torch.Tensor, num_frames: int, height: int, width: int) -> torch.Tensor:
    """A frame mask (B, F) or token mask (B, F, h, w) → float (B, F, height, width).

    A token mask is repeated up to (height, width), which must be a whole multiple of (h, w):
    the model reads it at its token grid, the loss at each prediction's resolution.
    """
    mask = given_mask.float()
    if mask.ndim == 2 and mask.shape[1] == num_frames:
        return mask[:, :, None, None].expand(-1, -1, height, width)
    if mask.ndim == 4 and mask.shape[1] == num_frames:
        h, w = mask.shape[-2:]
        if height % h or width % w:
            raise ValueError(f"a {h}x{w} token mask does not tile a {height}x{width} grid")
        if (h, w) != (height, width):
            mask = F.interpolate(mask, size=(height, width), mode="nearest")
        return mask
    raise ValueError(f"given_mask must be (B, {num_frames}) or (B, {num_frames}, h, w), "
                     f"got {tuple(given_mask.shape)}")


def masked_loss(pred: torch.Tensor, target: torch.Tensor, given_mask: torch.Tensor | None) -> torch.Tensor:
    """MSE over generated positions only, averaged over their count (0 when everything is given).

    pred, target: (B, C, F, H, W); given_mask: (B, F) or (B, F, h, w), True = given; None = plain MSE.
    """
    err = (pred.float() - target.float()) ** 2  # (B, C, F, H, W)
    if given_mask is None:
        return err.mean()
    b, c, f, h, w = err.shape
    keep = 1.0 - expand_mask(given_mask.to(err.device), f, h, w)[:, None]  # (B, 1, F, H, W)
    return (err * keep).sum() / (keep.sum() * c).clamp(min=1.0)
