"""An exponential moving average of a model's weights, kept as a full model copy.

Why a copy and not a dict of tensors: the EMA model is what gets evaluated and exported, so it
is directly a `ModelMixin` that a pipeline can hold and `save_pretrained` can write.
"""

from __future__ import annotations

import copy

import torch


class EMA:
    """ema ← decay_n · ema + (1 - decay_n) · weights after every optimiser step.

    decay_n = min(decay, (1 + n) / (10 + n)) for the n-th update: the usual warm-up, so the
    average is not dominated by the random initial weights in a short run.
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    def decay_at(self, num_updates: int) -> float:
        return min(self.decay, (1 + num_updates) / (10 + num_updates))

    @torch.no_grad()
    def update(self, model: torch.nn.Module, num_updates: int) -> None:
        """Move the average toward `model`'s current weights; `num_updates` counts from 0."""
        weight = 1 - self.decay_at(num_updates)
        ema_params = list(self.model.parameters())
        params = [p.detach().to(e.dtype) for p, e in zip(model.parameters(), ema_params)]
        torch._foreach_lerp_(ema_params, params, weight)
        for ema_buffer, buffer in zip(self.model.buffers(), model.buffers()):
            ema_buffer.copy_(buffer)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state)
