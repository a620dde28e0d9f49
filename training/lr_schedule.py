"""Learning-rate schedule: linear warm-up, then constant or cosine decay to zero."""

from __future__ import annotations

import math

import torch


def lr_factor(step: int, warmup_steps: int, total_steps: int, schedule: str = "constant") -> float:
    """Multiplier of the base lr after `step` optimiser steps (0-based, as LambdaLR counts)."""
    if warmup_steps and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return 0.5 * (1 + math.cos(math.pi * progress))
    raise ValueError(f"unknown lr schedule {schedule!r}")


class WarmupSchedule:
    """Picklable lr_lambda for `torch.optim.lr_scheduler.LambdaLR`."""

    def __init__(self, warmup_steps: int, total_steps: int, schedule: str):
        self.warmup_steps, self.total_steps, self.schedule = warmup_steps, total_steps, schedule

    def __call__(self, step: int) -> float:
        return lr_factor(step, self.warmup_steps, self.total_steps, self.schedule)


def build_lr_scheduler(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int,
                       schedule: str) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupSchedule(warmup_steps, total_steps, schedule))
