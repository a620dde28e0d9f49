"""Rectified flow matching, in the convention of diffusers' `FlowMatchEulerDiscreteScheduler`.

    sigma ~ sigmoid(N(mean, std))            (logit-normal, as in SD3)
    x_t   = (1 - sigma) · x0 + sigma · noise  (sigma = 1 is pure noise)
    v     = noise - x0                        (what the model predicts)
    t     = sigma · 1000                      (the timestep the scheduler feeds at sampling)

A model may also return `branch_samples` (lower-resolution predictions, coarse to fine); each is
trained against the target average-pooled to its size: the same map the model applies to x_t
before each branch, so a branch at resolution r predicts exactly the velocity of the pooled
trajectory (DiMR's sum-pool / k keeps the variance of pure noise, but it scales the image part of
a velocity target by k — up to 8× here — and swamps the loss).
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F

from dit.video_masks import expand_mask, masked_loss

NUM_TRAIN_TIMESTEPS = 1000  # FlowMatchEulerDiscreteScheduler's default: t = sigma · 1000


def sample_sigmas(n: int, mean: float, std: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """(n,) noise levels in (0, 1), logit-normal: most mass mid-way, where the task is hardest."""
    u = torch.randn(n, generator=generator) * std + mean
    return torch.sigmoid(u).clamp(1e-5, 1 - 1e-5)


def shift_sigmas(sigma: torch.Tensor, shift: float) -> torch.Tensor:
    """sigma → shift·sigma / (1 + (shift - 1)·sigma): the map diffusers' FlowMatchEulerDiscreteScheduler
    applies to its timesteps for `shift`, so training with shift s and sampling with `shift=s`
    put the same weight on high noise. s > 1 moves training toward pure noise, where a pixel-space
    model must decide the layout from the text alone (at 64×64 an object is still plain to see
    through sigma 0.8 noise). On its own it did not teach the shipped recipe position; with
    text standardization it is part of the recipe that did (configs/t2i_shapes.json's description)."""
    if shift == 1:
        return sigma
    return shift * sigma / (1 + (shift - 1) * sigma)


def noisy_input(x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """x0, noise: (B, C, H, W); sigma: (B,) → x_t (B, C, H, W) on the straight path x0 → noise."""
    s = sigma.to(x0.dtype).view(-1, *([1] * (x0.ndim - 1)))
    return (1 - s) * x0 + s * noise


def pool_to(target: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, C, H, W) → (B, C, h, w) by k×k average pooling, k = H / h (see the module docstring);
    clips (B, C, F, H, W) are pooled per frame."""
    h, w = size
    k = target.shape[-2] // h
    if k * h != target.shape[-2] or k * w != target.shape[-1]:
        raise ValueError(f"branch size {h}x{w} does not divide the target size {tuple(target.shape[-2:])}")
    if k == 1:
        return target
    return F.avg_pool3d(target, (1, k, k)) if target.ndim == 5 else F.avg_pool2d(target, k)


def flow_matching_loss(model, x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor, cond: dict,
                       branch_loss_weights: list[float] | None = None,
                       given_mask: torch.Tensor | None = None, pair_weight: float = 0.0,
                       pair_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
    """MSE between the model's velocity and noise - x0 (plus weighted branch terms).

    x0, noise: (B, C, H, W) images or (B, C, F, H, W) clips, float32; sigma: (B,); cond: the
    model's text kwargs (encoder_hidden_states (B, L, E), encoder_attention_mask (B, L),
    pooled_text (B, E)). given_mask (clips, (B, F) bool): those frames enter clean, the model is
    told which through its `given_mask` argument, and the loss covers only the other frames —
    VDT's mask modelling, matching how the video pipeline puts given frames back at every step.
    pair_weight > 0: items 2k, 2k+1 are twins (same scene, noise, sigma and given frames; captions
    differing in one attribute; for clips the pair term covers generated positions only). For a pair
    the MSE splits exactly into ½‖e_a + e_b‖² + ½‖e_a − e_b‖² (e = pred − target); the second part
    is the only one the differing word can lower, and it is a few pixels of the image, so it is
    added again × pair_weight (pairs where pair_mask (B/2,) is True: callers leave out pairs whose
    captions were dropped for guidance, which no word tells apart).
    Returns (scalar loss for backward, {"mse": main term, "pair": the pair term if any, "branch<i>": each
    branch term} as floats).
    """
    x_t = noisy_input(x0, noise, sigma)
    extra = {}
    if given_mask is not None:
        f, h, w = x0.shape[-3:]
        keep_clean = expand_mask(given_mask, f, h, w)[:, None].to(x0.dtype)  # (B, 1, F, H, W)
        x_t = keep_clean * x0 + (1 - keep_clean) * x_t
        extra["given_mask"] = given_mask
    out = model(x_t, sigma * NUM_TRAIN_TIMESTEPS, **cond, **extra)
    target = noise - x0  # like x0

    def mse_of(pred: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        if given_mask is None:
            return F.mse_loss(pred.float(), tgt)
        return masked_loss(pred, tgt, given_mask)

    mse = mse_of(out.sample, target)
    loss, parts = mse, {"mse": mse.detach().item()}
    if pair_weight:
        if out.sample.shape[0] % 2:
            raise ValueError(f"pair_weight needs twin pairs, got an odd batch of {out.sample.shape[0]}")
        err = out.sample.float() - target
        sq = (err[0::2] - err[1::2]).pow(2)
        if given_mask is None:
            diff = sq.flatten(1).mean(1)  # (B/2,)
        else:  # generated positions only, as masked_loss (twins share their given frames)
            generated = (1 - keep_clean[0::2]).expand_as(sq)
            diff = (sq * generated).flatten(1).sum(1) / generated.flatten(1).sum(1).clamp(min=1.0)
        keep = torch.ones_like(diff) if pair_mask is None else pair_mask.to(diff.dtype)
        # ¼ · mean over pairs: the share of `mse` this part is when every pair is kept
        pair_term = 0.25 * (diff * keep).sum() / keep.sum().clamp(min=1)
        loss = loss + pair_weight * pair_term
        parts["pair"] = pair_term.detach().item()

    branches = getattr(out, "branch_samples", None) or []
    if branches and branch_loss_weights is None:  # shown once: the default filter dedups by line
        warnings.warn("the model returns branch_samples but branch_loss_weights is null: branches are not trained")
    if branches and branch_loss_weights is not None:
        if len(branch_loss_weights) != len(branches):
            raise ValueError(f"branch_loss_weights has {len(branch_loss_weights)} entries but the model returns "
                             f"{len(branches)} branch_samples")
        for i, (weight, pred) in enumerate(zip(branch_loss_weights, branches)):  # coarse to fine
            term = mse_of(pred, pool_to(target, tuple(pred.shape[-2:])))
            loss = loss + weight * term
            parts[f"branch{i}"] = term.detach().item()
    return loss, parts
