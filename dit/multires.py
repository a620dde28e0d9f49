"""MultiResDiT: a DiT on a coarse token grid refined by convolutional branches (in the spirit of DiMR).

Few transformer tokens keep sampling cheap on a CPU; the branches, each at twice the resolution
of the one before, turn the coarse prediction into a sharp full-resolution one without patch
blocks. Each branch predicts at its own resolution (for a multi-scale loss); sampling uses the
last. Time reaches the branches through time-dependent LayerNorms (TD-LN) instead of adaLN.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import register_to_config
# diffusers' pipeline loader finds a component's base class by name in the component's own module
from diffusers.models.modeling_utils import ModelMixin  # noqa: F401
from diffusers.utils import BaseOutput
from torch import nn

from .transformer import DiT


@dataclass
class MultiResOutput(BaseOutput):
    """sample: (B, C, H, W) the finest prediction; branch_samples: coarse-to-fine predictions below it."""

    sample: torch.Tensor
    branch_samples: list | None = None


def scaled_log_snr(timestep: torch.Tensor) -> torch.Tensor:
    """τ for TD-LN from a flow-matching timestep (σ·1000): log-SNR = 2·log((1−σ)/σ), scaled to ≈[−1, 1]."""
    sigma = (timestep.float() / 1000.0).clamp(1e-4, 1 - 1e-4)
    return 2 * torch.log((1 - sigma) / sigma) / 10.0


class TimeDependentLayerNorm(nn.Module):
    """LayerNorm over channels whose scale and shift blend two learned sets by time:
    γ(t) = s·γ0 + (1−s)·γ1, s = sigmoid((1+w)·τ + b)."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(2, channels))
        self.beta = nn.Parameter(torch.zeros(2, channels))
        self.w = nn.Parameter(torch.zeros(1))
        self.b = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        """x: (B, H, W, C) channels-last; tau: (B,)."""
        s = torch.sigmoid((1 + self.w) * tau + self.b).to(x.dtype)[:, None, None, None]  # (B, 1, 1, 1)
        gamma = s * self.gamma[0] + (1 - s) * self.gamma[1]
        beta = s * self.beta[0] + (1 - s) * self.beta[1]
        return F.layer_norm(x, x.shape[-1:], eps=self.eps) * gamma + beta


class ConvNeXtBlock(nn.Module):
    """Depthwise 7×7 conv → TD-LN → pointwise MLP (4×) → layer scale, residual."""

    def __init__(self, channels: int):
        super().__init__()
        self.dwconv = nn.Conv2d(channels, channels, 7, padding=3, groups=channels)
        self.norm = TimeDependentLayerNorm(channels)
        self.pw1 = nn.Linear(channels, 4 * channels)
        self.pw2 = nn.Linear(4 * channels, channels)
        self.layer_scale = nn.Parameter(torch.full((channels,), 1e-2))

    def forward(self, x: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W)."""
        h = self.dwconv(x).permute(0, 2, 3, 1)  # (B, H, W, C)
        h = self.pw2(F.gelu(self.pw1(self.norm(h, tau)))) * self.layer_scale
        return x + h.permute(0, 3, 1, 2)


BRANCH_UPSAMPLING = ("nearest", "shuffle")


class RefineBranch(nn.Module):
    """One resolution level: (noisy input at this size) + (up-sampled features from below) → blocks → head.

    upsampling "nearest" copies each coarse feature to its 2×2 children; "shuffle" projects it to
    four child features (sub-pixel convolution), so each child can be told where in its parent it
    sits — what lets a coarse token describe an edge that passes through it.
    """

    def __init__(self, in_channels: int, below_channels: int, channels: int, depth: int, out_channels: int,
                 upsampling: str = "nearest"):
        super().__init__()
        if upsampling not in BRANCH_UPSAMPLING:
            raise ValueError(f"branch upsampling must be one of {BRANCH_UPSAMPLING}, got {upsampling!r}")
        self.upsampling = upsampling
        self.stem = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.lift = nn.Conv2d(below_channels, channels * (4 if upsampling == "shuffle" else 1), 1)
        self.blocks = nn.ModuleList([ConvNeXtBlock(channels) for _ in range(depth)])
        self.norm_out = TimeDependentLayerNorm(channels)
        self.head = nn.Linear(channels, out_channels)

    def forward(self, x_noisy: torch.Tensor, below: torch.Tensor, tau: torch.Tensor):
        """x_noisy: (B, C_in, r, r); below: (B, C_below, r/2, r/2) → features (B, C, r, r), prediction (B, C_out, r, r)."""
        if self.upsampling == "shuffle":
            up = F.pixel_shuffle(self.lift(below), 2)
        else:
            up = F.interpolate(self.lift(below), scale_factor=2, mode="nearest")
        h = self.stem(x_noisy) + up
        for block in self.blocks:
            h = block(h, tau)
        pred = self.head(self.norm_out(h.permute(0, 2, 3, 1), tau)).permute(0, 3, 1, 2)
        return h, pred


class MultiResDiT(DiT):
    """DiT trunk on a (H/p, W/p) token grid + len(branch_channels) refine branches, each 2× finer.

    The patch size p must be 2**len(branch_channels) so the last branch lands at full resolution.
    Same call signature and config keys as `DiT`, so pipelines, converters' consumers and cache
    hooks (on `transformer_blocks`) treat it the same way.
    """

    @register_to_config
    def __init__(
        self,
        sample_size: int = 64,
        patch_size: int = 8,
        in_channels: int = 3,
        out_channels: int | None = None,
        hidden_size: int = 256,
        depth: int = 6,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        condition: str = "text",
        num_classes: int = 1000,
        text_dim: int | None = 384,
        pooled_dim: int | None = 384,
        adaln: str = "single",
        size_conditioning: bool = False,
        timestep_freq_shift: float = 1.0,
        interpolation_scale: float = 1.0,
        norm_eps: float = 1e-6,
        attention_bias: bool = True,
        attention_backend: str = "sdpa",
        branch_channels: tuple = (96, 64, 32),
        branch_depths: tuple = (1, 1, 1),
        branch_upsampling: str = "nearest",
        text_standardization: bool = False,
        qk_norm: bool = False,
        cross_attention_heads: int | None = None,
    ):
        if patch_size != 2 ** len(branch_channels):
            raise ValueError(f"patch_size {patch_size} must be 2**{len(branch_channels)} "
                             f"(one 2x branch per halving)")
        if len(branch_depths) != len(branch_channels):
            raise ValueError("branch_depths and branch_channels must have the same length")
        # The trunk's own final layer predicts at token resolution: one value per channel per token.
        super().__init__(sample_size=sample_size, patch_size=patch_size, in_channels=in_channels,
                         out_channels=out_channels, hidden_size=hidden_size, depth=depth, num_heads=num_heads,
                         mlp_ratio=mlp_ratio, condition=condition, num_classes=num_classes, text_dim=text_dim,
                         pooled_dim=pooled_dim, adaln=adaln, size_conditioning=size_conditioning,
                         timestep_freq_shift=timestep_freq_shift, interpolation_scale=interpolation_scale,
                         norm_eps=norm_eps, attention_bias=attention_bias, attention_backend=attention_backend,
                         text_standardization=text_standardization, qk_norm=qk_norm,
                         cross_attention_heads=cross_attention_heads)
        self.final_layer.linear = nn.Linear(hidden_size, self.out_channels)  # coarse head: (B, T, C)
        nn.init.zeros_(self.final_layer.linear.weight)
        nn.init.zeros_(self.final_layer.linear.bias)
        below = [hidden_size, *branch_channels[:-1]]
        self.branches = nn.ModuleList([
            RefineBranch(in_channels, b, c, d, self.out_channels, branch_upsampling)
            for b, c, d in zip(below, branch_channels, branch_depths)
        ])

    def forward(self, hidden_states, timestep, class_labels=None, encoder_hidden_states=None,
                encoder_attention_mask=None, pooled_text=None, resolution=None, aspect_ratio=None,
                return_dict: bool = True):
        """hidden_states: (B, C, H, W) → MultiResOutput(sample (B, C, H, W), branch_samples coarse→fine)."""
        b = hidden_states.shape[0]
        x, c, (gh, gw) = self.run_trunk(hidden_states, timestep, class_labels, encoder_hidden_states,
                                        encoder_attention_mask, pooled_text, resolution, aspect_ratio)
        coarse = self.final_layer(x, c).transpose(1, 2).reshape(b, self.out_channels, gh, gw)
        features = x.transpose(1, 2).reshape(b, -1, gh, gw)  # (B, D, h, w)
        t = torch.as_tensor(timestep, device=hidden_states.device)
        tau = scaled_log_snr(t.reshape(-1).expand(b))
        preds = [coarse]
        # channels-last makes the branches' (B, C, H, W) <-> (B, H, W, C) permutes free views (faster on CPU)
        features = features.contiguous(memory_format=torch.channels_last)
        hidden_states = hidden_states.contiguous(memory_format=torch.channels_last)
        for level, branch in enumerate(self.branches):
            factor = 2 ** (len(self.branches) - 1 - level)
            x_level = F.avg_pool2d(hidden_states, factor) if factor > 1 else hidden_states
            features, pred = branch(x_level, features, tau)
            preds.append(pred)
        if not return_dict:
            return (preds[-1],)
        return MultiResOutput(sample=preds[-1], branch_samples=preds[:-1])
