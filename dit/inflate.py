"""Start a video DiT from an image DiT's weights, so it begins as the image model run per frame.

Why: on a 2-core CPU the video model cannot afford to relearn what the image model already
knows (text → colour, shape, position, background); it only has to learn time. The video
model's spatial attention, text cross-attention, MLPs, embedders, text statistics, coarse head
and refine branches are copied; its temporal attention starts silent (its adaLN gate is zero,
so its gradient still flows through the gate, as in adaLN-Zero), and so does the VDT
given-frame embedding. Patches may be finer in the video model: an image patch embedding of
k·p pixels becomes one of p pixels by summing each k×k block of its kernel — exactly the image
embedding of the frame up-sampled k× (nearest) — so a 32×32 frame at patch 2 sees the 16×16
token grid the 64×64 image model saw at patch 4.
"""

from __future__ import annotations

import torch
from torch import nn

from .transformer import DiT
from .video import VideoDiT


class InflateError(ValueError):
    """The two models cannot share weights; the message names the mismatch."""


def _need(ok: bool, message: str) -> None:
    if not ok:
        raise InflateError(message)


def _copy_module(dst: nn.Module | None, src: nn.Module | None, name: str) -> None:
    _need((dst is None) == (src is None), f"{name}: present in only one of the two models")
    if dst is None:
        return
    dst_state, src_state = dst.state_dict(), src.state_dict()
    _need(dst_state.keys() == src_state.keys(), f"{name}: different parameters")
    for key, value in src_state.items():
        _need(dst_state[key].shape == value.shape,
              f"{name}.{key}: shape {tuple(value.shape)} in the image model, {tuple(dst_state[key].shape)} in the video model")
    dst.load_state_dict(src_state)


def _patch_kernel(image_weight: torch.Tensor, video_patch: int) -> torch.Tensor:
    """(D, C, kp, kp) → (D, C, p, p): sum of each k×k block (the embedding of a k× up-sampled frame)."""
    d, c, size, _ = image_weight.shape
    _need(size % video_patch == 0,
          f"image patch size {size} is not a multiple of the video patch size {video_patch}")
    k = size // video_patch
    return image_weight.reshape(d, c, video_patch, k, video_patch, k).sum(dim=(3, 5))


def _modulation_rows(image: torch.Tensor, factorised: bool) -> torch.Tensor:
    """Image rows (shift, scale, gate) × (attention, MLP) → the video block's order.

    Factorised video blocks have (spatial, temporal, MLP) triples: the temporal shift/scale copy
    the spatial ones and its gate is zero, so the new temporal attention adds nothing at first.
    Works on the (6, D) tables and on the (6·D, …) rows of the shared adaLN map alike.
    """
    if not factorised:
        return image.clone()
    parts = list(image.reshape(6, -1).unbind(0))  # each of the six is a contiguous block of rows
    temporal = [parts[0], parts[1], torch.zeros_like(parts[2])]
    return torch.stack(parts[:3] + temporal + parts[3:]).reshape(image.shape[0] * 9 // 6, *image.shape[1:])


@torch.no_grad()
def inflate_image_to_video(image: DiT, video: VideoDiT) -> list[str]:
    """Copy `image`'s weights into `video` in place; → names of video parameters left at their init.

    Needs the same width, depth, heads, text dims and adaLN-single, and at most as many refine
    branches in the video model (the image model's coarsest ones are used: the ones at the scale
    of the token grid).
    """
    ic, vc = image.config, video.config
    for key in ("hidden_size", "depth", "num_heads", "text_dim", "pooled_dim", "in_channels", "text_standardization",
                "qk_norm", "cross_attention_heads"):
        _need(ic.get(key) == vc.get(key), f"{key}: {ic.get(key)!r} in the image model, {vc.get(key)!r} in the video model")
    _need(ic.get("adaln") == "single", f"the image model must use adaln='single' (it uses {ic.get('adaln')!r})")
    _need(image.out_channels == video.out_channels, "different output channels")
    factorised = vc.attention_layout == "factorised"

    video.patch_embed.weight.copy_(_patch_kernel(image.patch_embed.weight, vc.patch_size))
    video.patch_embed.bias.copy_(image.patch_embed.bias)
    for name in ("t_embedder", "caption_projection", "pooled_embedder", "text_standardizer", "pooled_standardizer"):
        _copy_module(getattr(video, name), getattr(image, name), name)
    video.adaln_single.weight.copy_(_modulation_rows(image.adaln_single.weight, factorised))
    video.adaln_single.bias.copy_(_modulation_rows(image.adaln_single.bias, factorised))
    for i, (vb, ib) in enumerate(zip(video.transformer_blocks, image.transformer_blocks)):
        for name in ("attn1", "attn2", "mlp"):
            _copy_module(getattr(vb, name), getattr(ib, name), f"transformer_blocks.{i}.{name}")
        vb.scale_shift_table.copy_(_modulation_rows(ib.scale_shift_table, factorised))
    _copy_module(video.final_layer, image.final_layer, "final_layer")

    image_branches = getattr(image, "branches", None) or []
    _need(len(video.branches) <= len(image_branches),
          f"the video model has {len(video.branches)} refine branches, the image model {len(image_branches)}")
    for i, branch in enumerate(video.branches):
        _copy_module(branch, image_branches[i], f"branches.{i}")

    left = ["given_embedding"]
    if factorised:
        left += [f"transformer_blocks.{i}.attn_temporal" for i in range(len(video.transformer_blocks))]
    return left
