"""Learning-rate schedule: linear warm-up, then constant, cosine decay to zero, or "wsd"
(warm-up, stable, decay: constant, then linear to zero over the last `decay_steps`). WSD lets a
run be extended while its lr is still constant and still end with the low-lr phase that cosine
gives (Hu et al. 2024, MiniCPM)."""

from __future__ import annotations

import math

import torch


def lr_factor(step: int, warmup_steps: int, total_steps: int, schedule: str = "constant",
              decay_steps: int = 0) -> float:
    """Multiplier of the base lr after `step` optimiser steps (0-based, as LambdaLR counts)."""
    if warmup_steps and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    if schedule == "wsd":
        start = total_steps - decay_steps
        return 1.0 if step < start else max(0.0, (total_steps - step) / max(1, decay_steps))
    if schedule == "cosine":
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return 0.5 * (1 + math.cos(math.pi * progress))
    raise ValueError(f"unknown lr schedule {schedule!r}")


class WarmupSchedule:
    """Picklable lr_lambda for `torch.optim.lr_scheduler.LambdaLR`."""

    def __init__(self, warmup_steps: int, total_steps: int, schedule: str, decay_steps: int = 0):
        self.warmup_steps, self.total_steps, self.schedule = warmup_steps, total_steps, schedule
        self.decay_steps = decay_steps

    def __call__(self, step: int) -> float:
        return lr_factor(step, self.warmup_steps, self.total_steps, self.schedule, self.decay_steps)


def build_lr_scheduler(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int,
                       schedule: str, decay_steps: int = 0) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupSchedule(warmup_steps, total_steps, schedule,
                                                                       decay_steps))


def follow_config(lr_scheduler: torch.optim.lr_scheduler.LambdaLR, warmup_steps: int, total_steps: int,
                  schedule: str, decay_steps: int = 0) -> None:
    """After loading a checkpoint: LambdaLR's state carries the schedule it was saved with; the
    recipe is the truth (a run extended or given a decay phase follows its new config)."""
    lr_scheduler.lr_lambdas = [WarmupSchedule(warmup_steps, total_steps, schedule, decay_steps)
                               for _ in lr_scheduler.lr_lambdas]
    for group, base, fn in zip(lr_scheduler.optimizer.param_groups, lr_scheduler.base_lrs, lr_scheduler.lr_lambdas):
        group["lr"] = base * fn(lr_scheduler.last_epoch)  # the next step already uses the recipe's lr
