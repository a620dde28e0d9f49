"""Embedders that turn timesteps, labels, text and positions into hidden-size vectors."""

from __future__ import annotations

import math

import torch
from torch import nn


def timestep_features(t: torch.Tensor, dim: int = 256, freq_shift: float = 1.0,
                      max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal features of (possibly fractional) timesteps, cos half first.

    t: (N,) -> (N, dim). `freq_shift` is 1 for DiT and 0 for PixArt; both are kept so that
    converted checkpoints reproduce their source exactly.
    """
    half = dim // 2
    exponent = -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device)
    freqs = torch.exp(exponent / (half - freq_shift))
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class MLPEmbedder(nn.Module):
    """Linear → SiLU → Linear: lifts sinusoidal features or pooled text to the hidden size."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.linear_1 = nn.Linear(in_dim, out_dim)
        self.linear_2 = nn.Linear(out_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(nn.functional.silu(self.linear_1(x)))


class TimestepEmbedder(nn.Module):
    """Timestep → (N, D) through sinusoidal features and an MLP."""

    def __init__(self, hidden_size: int, freq_dim: int = 256, freq_shift: float = 1.0):
        super().__init__()
        self.freq_dim, self.freq_shift = freq_dim, freq_shift
        self.mlp = MLPEmbedder(freq_dim, hidden_size)

    def forward(self, t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return self.mlp(timestep_features(t, self.freq_dim, self.freq_shift).to(dtype))


class LabelEmbedder(nn.Module):
    """Class label → (N, D); index `num_classes` is the learned null label used by CFG."""

    def __init__(self, num_classes: int, hidden_size: int):
        super().__init__()
        self.num_classes = num_classes
        self.embedding_table = nn.Embedding(num_classes + 1, hidden_size)

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        return self.embedding_table(labels)


class TextStandardizer(nn.Module):
    """(x - mean) / std per feature, with mean and std measured on the training captions (`fit`).

    Why: a sentence encoder puts most of each feature's magnitude in directions every caption
    shares, and the words that tell Shapes World captions apart ("top left" vs "bottom right")
    move a few features a little (pooled MiniLM vectors of those two captions: cosine 0.98). A
    projection must first grow large weights to see such differences; standardising hands them
    over at unit scale. Without it a short trunk-only run read position at chance; with it, it
    followed the caption (docs/BENCHMARKS.md, "Text standardisation").
    The statistics are buffers, so they travel in the weights file; before `fit` it is the identity.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    @torch.no_grad()
    def fit(self, samples: torch.Tensor, floor: float = 0.1) -> None:
        """samples: (N, dim) feature vectors. A feature's std is floored at `floor` × the median
        std, so a feature that is (nearly) constant over the captions is not blown up."""
        samples = samples.float()
        if samples.ndim != 2 or samples.shape[1] != self.mean.numel() or samples.shape[0] < 2:
            raise ValueError(f"fit needs (N >= 2, {self.mean.numel()}) samples, got {tuple(samples.shape)}")
        std = samples.std(dim=0)
        self.mean.copy_(samples.mean(dim=0))
        self.std.copy_(std.clamp(min=floor * float(std.median())))


class CaptionProjection(nn.Module):
    """Text-encoder tokens → hidden size (Linear → GELU(tanh) → Linear), as in PixArt."""

    def __init__(self, in_dim: int, hidden_size: int):
        super().__init__()
        self.linear_1 = nn.Linear(in_dim, hidden_size)
        self.linear_2 = nn.Linear(hidden_size, hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(nn.functional.gelu(self.linear_1(x), approximate="tanh"))


class SizeEmbedder(nn.Module):
    """PixArt-α 1024's resolution and aspect-ratio conditioning, added to the timestep embedding."""

    def __init__(self, hidden_size: int, freq_dim: int = 256):
        super().__init__()
        self.freq_dim = freq_dim
        self.resolution = MLPEmbedder(freq_dim, hidden_size // 3)
        self.aspect_ratio = MLPEmbedder(freq_dim, hidden_size // 3)

    def forward(self, resolution: torch.Tensor, aspect_ratio: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """resolution: (N, 2) as (height, width) pixels; aspect_ratio: (N, 1) → (N, D)."""
        n = resolution.shape[0]
        res = self.resolution(timestep_features(resolution.flatten(), self.freq_dim, 0).to(dtype))
        ar = self.aspect_ratio(timestep_features(aspect_ratio.flatten(), self.freq_dim, 0).to(dtype))
        return torch.cat([res.reshape(n, -1), ar.reshape(n, -1)], dim=1)


def sincos_1d(dim: int, pos: torch.Tensor) -> torch.Tensor:
    """(M,) positions → (M, dim) as [sin | cos] with frequencies 1/10000^(2i/dim)."""
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64, device=pos.device) / (dim / 2.0))
    out = pos.double()[:, None] * omega[None]
    return torch.cat([torch.sin(out), torch.cos(out)], dim=1)


def sincos_2d(dim: int, grid_h: int, grid_w: int, base_size: float, interpolation_scale: float = 1.0,
              device=None) -> torch.Tensor:
    """Fixed 2D position embedding for a row-major (grid_h, grid_w) token grid → (h·w, dim).

    Coordinates span [0, base_size) on each axis whatever the grid size, so a model trained at
    one resolution sees familiar positions at another (PixArt's interpolation).
    """
    if dim % 4:
        raise ValueError(f"hidden size {dim} must be divisible by 4 for 2D sin-cos positions")
    ys = torch.arange(grid_h, dtype=torch.float64, device=device) / (grid_h / base_size) / interpolation_scale
    xs = torch.arange(grid_w, dtype=torch.float64, device=device) / (grid_w / base_size) / interpolation_scale
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    emb = torch.cat([sincos_1d(dim // 2, xx.flatten()), sincos_1d(dim // 2, yy.flatten())], dim=1)
    return emb.float()
