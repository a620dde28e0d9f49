"""VideoDiT: a text-to-video diffusion transformer over (B, C, F, H, W) clips.

Reads top to bottom: the block, the model. Each frame is patchified on its own; tokens carry a
2D sin-cos position within the frame plus a 1D sin-cos position in time. A block attends
within each frame (spatial), then across frames at each location (temporal), then to the text,
then runs its MLP, all modulated PixArt-style (adaLN-single). `attention_layout="full"` swaps the
two factorised attentions for one over all frames' tokens at once.

Frames can arrive clean (VDT's mask modelling, `dit.video_masks`): `given_mask` marks them and
a learned "given" embedding is added to their tokens, so one model predicts, interpolates and
animates as well as it generates.

With `branch_channels` the trunk runs on coarse tokens and per-frame ConvNeXt branches with
time-dependent LayerNorm (as in `MultiResDiT`) refine its prediction up to full resolution.

Why factorised: its attention grows as F·S² + S·F² where full attention grows as (F·S)², and on
Shapes World clips (16 frames of 32×32) it ran about as fast as full attention and trained to a
slightly lower loss; at these sizes the refine branches, not attention, set a forward's cost
(`python -m bench.video_dit`; the figures are in docs/BENCHMARKS.md). `attention_layout="full"`
remains.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.hooks._helpers import TransformerBlockMetadata, TransformerBlockRegistry
from diffusers.models.cache_utils import CacheMixin
# diffusers' pipeline loader finds a component's base class by name in the component's own module
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import BaseOutput
from torch import nn

from .attention import Attention
from .embeddings import CaptionProjection, MLPEmbedder, TextStandardizer, TimestepEmbedder, sincos_1d, sincos_2d
from .multires import RefineBranch, scaled_log_snr
from .transformer import FinalLayer, modulate
from .video_masks import expand_mask

ATTENTION_LAYOUTS = ("factorised", "full")
# The MLP's GELU: "gelu_tanh" as in DiT/PixArt/Latte checkpoints; "gelu" (erf) computes the same
# curve to within 1e-3 and runs several times faster on CPU (docs/BENCHMARKS.md, "Kernels and memory").
MLP_ACTIVATIONS = ("gelu_tanh", "gelu")


#################################################################################
#                                 The block                                     #
#################################################################################

class VideoDiTBlock(nn.Module):
    """Spatial + temporal self-attention (or one full 3D attention), text cross-attention, MLP.

    `cond` is the shared adaLN-single modulation (B, n·D), offset by this block's own table:
    n = 9 (shift/scale/gate for spatial attention, temporal attention, MLP) when factorised,
    n = 6 when full.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, attention_layout: str = "factorised",
                 norm_eps: float = 1e-6, attention_bias: bool = True, attention_backend: str = "sdpa",
                 mlp_activation: str = "gelu_tanh", qk_norm: bool = False, cross_attention_heads: int | None = None):
        super().__init__()
        self.factorised = attention_layout == "factorised"

        def attention(heads=num_heads):
            return Attention(dim, heads, bias=attention_bias, backend=attention_backend, qk_norm=qk_norm)

        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn1 = attention()  # within a frame (factorised) or over the whole clip (full)
        if self.factorised:
            self.norm_temporal = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
            self.attn_temporal = attention()
        self.attn2 = attention(cross_attention_heads or num_heads)  # to the text
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=norm_eps)
        hidden = int(dim * mlp_ratio)
        gelu = nn.GELU(approximate="tanh" if mlp_activation == "gelu_tanh" else "none")
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), gelu, nn.Linear(hidden, dim))
        self.scale_shift_table = nn.Parameter(torch.randn(9 if self.factorised else 6, dim) / dim**0.5)

    def forward(self, hidden_states: torch.Tensor, cond: torch.Tensor, encoder_hidden_states: torch.Tensor,
                encoder_bias: torch.Tensor | None = None, num_frames: int = 1) -> torch.Tensor:
        """hidden_states: (B, F·S, D) frame-major tokens; encoder_hidden_states: (B, L, D);
        encoder_bias: (B, 1, 1, L); cond: (B, n·D)."""
        b, n, d = hidden_states.shape
        f, s = num_frames, n // num_frames
        mod = (self.scale_shift_table[None] + cond.reshape(b, -1, d)).chunk(len(self.scale_shift_table), dim=1)
        x = hidden_states
        if self.factorised:
            shift_s, scale_s, gate_s, shift_t, scale_t, gate_t, shift_mlp, scale_mlp, gate_mlp = mod
            h = modulate(self.norm1(x), shift_s, scale_s).reshape(b * f, s, d)
            x = x + gate_s * self.attn1(h).reshape(b, n, d)
            h = modulate(self.norm_temporal(x), shift_t, scale_t)
            h = h.reshape(b, f, s, d).transpose(1, 2).reshape(b * s, f, d)  # (B·S, F, D)
            h = self.attn_temporal(h).reshape(b, s, f, d).transpose(1, 2).reshape(b, n, d)
            x = x + gate_t * h
        else:
            shift_a, scale_a, gate_a, shift_mlp, scale_mlp, gate_mlp = mod
            x = x + gate_a * self.attn1(modulate(self.norm1(x), shift_a, scale_a))
        x = x + self.attn2(x, encoder_hidden_states, encoder_bias)
        x = x + gate_mlp * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))
        return x  # (B, F·S, D)


# diffusers' cache hooks (FirstBlockCache, …) find blocks through this registry.
TransformerBlockRegistry.register(VideoDiTBlock, TransformerBlockMetadata(return_hidden_states_index=0))


#################################################################################
#                                  The model                                    #
#################################################################################

@dataclass
class VideoDiTOutput(BaseOutput):
    """sample: (B, C_out, F, H, W) the velocity; branch_samples: coarser per-frame predictions
    (B, C_out, F, r, r), coarse to fine (multi-resolution models only, for a multi-scale loss)."""

    sample: torch.Tensor
    branch_samples: list | None = None


class VideoDiT(ModelMixin, ConfigMixin, CacheMixin):
    """Text-conditioned diffusion transformer over (B, C, F, H, W) clips of up to `num_frames` frames.

    Conditioning: `encoder_hidden_states` (B, L, text_dim) by cross-attention with an optional
    `encoder_attention_mask` (B, L); `pooled_text` (B, pooled_dim) added to the timestep
    embedding; `given_mask` (B, F) or (B, F, H/p, W/p), 1 = clean (given) frame / token.

    `branch_channels=()` predicts patches directly; otherwise patch_size must be
    2**len(branch_channels) and refine branches bring the coarse prediction to full size.
    `mlp_activation` picks the MLP's GELU (see MLP_ACTIVATIONS); `qk_norm` and
    `cross_attention_heads` as in `DiT`. `interpolation_scale` divides the spatial position
    coordinates (PixArt's): 0.5 puts an 8×8 token grid on every other position of a 16×16 one, so
    a model with 2× coarser patches starts from positions a finer model learned.
    """

    _supports_gradient_checkpointing = True
    _no_split_modules = ["VideoDiTBlock"]

    @register_to_config
    def __init__(
        self,
        sample_size: int = 32,
        num_frames: int = 16,
        patch_size: int = 8,
        in_channels: int = 3,
        out_channels: int | None = None,
        hidden_size: int = 192,
        depth: int = 6,
        num_heads: int = 3,
        mlp_ratio: float = 4.0,
        text_dim: int = 384,
        pooled_dim: int | None = 384,
        attention_layout: str = "factorised",
        branch_channels: tuple = (64, 48, 32),
        branch_depths: tuple = (1, 1, 1),
        branch_upsampling: str = "nearest",
        timestep_freq_shift: float = 1.0,
        norm_eps: float = 1e-6,
        attention_bias: bool = True,
        attention_backend: str = "sdpa",
        text_standardization: bool = False,
        mlp_activation: str = "gelu_tanh",
        qk_norm: bool = False,
        cross_attention_heads: int | None = None,
        interpolation_scale: float = 1.0,
    ):
        super().__init__()
        if not interpolation_scale > 0:
            raise ValueError(f"interpolation_scale must be > 0, got {interpolation_scale!r}")
        if mlp_activation not in MLP_ACTIVATIONS:
            raise ValueError(f"mlp_activation must be one of {MLP_ACTIVATIONS}, got {mlp_activation!r}")
        if attention_layout not in ATTENTION_LAYOUTS:
            raise ValueError(f"attention_layout must be one of {ATTENTION_LAYOUTS}, got {attention_layout!r}")
        if branch_channels and patch_size != 2 ** len(branch_channels):
            raise ValueError(f"patch_size {patch_size} must be 2**{len(branch_channels)} "
                             f"(one 2x branch per halving)")
        if len(branch_depths) != len(branch_channels):
            raise ValueError("branch_depths and branch_channels must have the same length")
        self.out_channels = out_channels or in_channels
        self.gradient_checkpointing = False

        self.patch_embed = nn.Conv2d(in_channels, hidden_size, patch_size, stride=patch_size)
        self.given_embedding = nn.Parameter(torch.zeros(hidden_size))
        self.t_embedder = TimestepEmbedder(hidden_size, freq_shift=timestep_freq_shift)
        self.caption_projection = CaptionProjection(text_dim, hidden_size)
        self.pooled_embedder = MLPEmbedder(pooled_dim, hidden_size) if pooled_dim else None
        self.text_standardizer = TextStandardizer(text_dim) if text_standardization else None
        self.pooled_standardizer = TextStandardizer(pooled_dim) if text_standardization and pooled_dim else None
        n_mod = 9 if attention_layout == "factorised" else 6
        self.adaln_single = nn.Linear(hidden_size, n_mod * hidden_size)
        self.transformer_blocks = nn.ModuleList([
            VideoDiTBlock(hidden_size, num_heads, mlp_ratio, attention_layout, norm_eps, attention_bias,
                          attention_backend, mlp_activation, qk_norm, cross_attention_heads)
            for _ in range(depth)
        ])
        # multi-resolution: one value per channel per token, refined below; else whole patches
        self.final_layer = FinalLayer(hidden_size, 1 if branch_channels else patch_size, self.out_channels,
                                      adaln="single")
        self._pos_cache: dict = {}
        self.initialize_weights()
        below = [hidden_size, *branch_channels[:-1]]  # branches keep PyTorch's default init, as in MultiResDiT
        self.branches = nn.ModuleList([
            RefineBranch(in_channels, lower, channels, d, self.out_channels, branch_upsampling)
            for lower, channels, d in zip(below, branch_channels, branch_depths)
        ])

    def initialize_weights(self) -> None:
        """Xavier linears; silent cross-attention and zero output head, as in PixArt."""
        def xavier(m):
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        self.apply(xavier)
        w = self.patch_embed.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.normal_(self.given_embedding, std=0.02)
        nn.init.normal_(self.t_embedder.mlp.linear_1.weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp.linear_2.weight, std=0.02)
        nn.init.normal_(self.adaln_single.weight, std=0.02)
        for block in self.transformer_blocks:
            nn.init.zeros_(block.attn2.to_out.weight)
        nn.init.zeros_(self.final_layer.linear.weight)
        nn.init.zeros_(self.final_layer.linear.bias)

    # ------------------------------------------------------------------ helpers

    def pos_embed(self, num_frames: int, grid_h: int, grid_w: int, device, dtype) -> torch.Tensor:
        """Cached (1, F, S, D) positions: 2D sin-cos within the frame + 1D sin-cos over frames."""
        key = (num_frames, grid_h, grid_w, device, dtype)
        if key not in self._pos_cache:
            d = self.config.hidden_size
            spatial = sincos_2d(d, grid_h, grid_w, self.config.sample_size / self.config.patch_size,
                                self.config.interpolation_scale, device=device)
            temporal = sincos_1d(d, torch.arange(num_frames, device=device)).float()
            self._pos_cache[key] = (spatial[None] + temporal[:, None]).to(dtype)[None]
        return self._pos_cache[key]

    def conditioning(self, timestep, pooled_text, batch: int, dtype) -> torch.Tensor:
        """The conditioning vector c (B, D): timestep embedding + pooled text."""
        timestep = torch.as_tensor(timestep, device=self.device)
        c = self.t_embedder(timestep.reshape(-1).expand(batch), dtype)
        if self.pooled_embedder is not None and pooled_text is not None:
            if self.pooled_standardizer is not None:
                pooled_text = self.pooled_standardizer(pooled_text.float())
            c = c + self.pooled_embedder(pooled_text.to(dtype))
        return c

    def check_size(self, num_frames: int, height: int, width: int) -> None:
        p, limit = self.config.patch_size, self.config.num_frames
        if not 1 <= num_frames <= limit:
            raise ValueError(f"{num_frames} frames is beyond this model's limit of {limit} (config num_frames)")
        if height % p or width % p:
            raise ValueError(f"frame size {height}x{width} is not a multiple of the patch size {p}")

    # ------------------------------------------------------------------ forward

    def run_trunk(self, hidden_states, timestep, encoder_hidden_states, encoder_attention_mask=None,
                  pooled_text=None, given_mask=None):
        """Patchify, condition and run the blocks → tokens (B, F·S, D), c (B, D), grid (F, h, w)."""
        b, _, f, h, w = hidden_states.shape
        self.check_size(f, h, w)
        p = self.config.patch_size
        gh, gw = h // p, w // p
        frames = hidden_states.transpose(1, 2).flatten(0, 1)  # (B·F, C, H, W)
        x = self.patch_embed(frames).flatten(2).transpose(1, 2)  # (B·F, S, D)
        x = x.reshape(b, f, gh * gw, -1) + self.pos_embed(f, gh, gw, x.device, x.dtype)  # (B, F, S, D)
        if given_mask is not None:
            given = expand_mask(given_mask.to(x.device), f, gh, gw).flatten(2).to(x.dtype)  # (B, F, S)
            x = x + given[..., None] * self.given_embedding
        x = x.flatten(1, 2)  # (B, F·S, D)

        c = self.conditioning(timestep, pooled_text, b, x.dtype)
        block_cond = self.adaln_single(nn.functional.silu(c))  # (B, n·D)
        if encoder_hidden_states is None:
            raise ValueError("VideoDiT is text-conditioned: pass encoder_hidden_states")
        if self.text_standardizer is not None:
            encoder_hidden_states = self.text_standardizer(encoder_hidden_states.float())
        context = self.caption_projection(encoder_hidden_states.to(x.dtype))  # (B, L, D)
        bias = None
        if encoder_attention_mask is not None:
            bias = ((1 - encoder_attention_mask.to(x.dtype)) * -10000.0)[:, None, None, :]  # (B, 1, 1, L)

        for block in self.transformer_blocks:
            if torch.is_grad_enabled() and self.gradient_checkpointing:
                x = self._gradient_checkpointing_func(block, x, block_cond, context, bias, f)
            else:
                x = block(x, block_cond, encoder_hidden_states=context, encoder_bias=bias, num_frames=f)
        return x, c, (f, gh, gw)

    def forward(
        self,
        hidden_states: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        pooled_text: torch.Tensor | None = None,
        given_mask: torch.Tensor | None = None,
        return_dict: bool = True,
    ):
        """hidden_states: (B, C, F, H, W); timestep: scalar or (B,) → VideoDiTOutput(sample (B, C_out, F, H, W))."""
        b = hidden_states.shape[0]
        x, c, (f, gh, gw) = self.run_trunk(hidden_states, timestep, encoder_hidden_states, encoder_attention_mask,
                                           pooled_text, given_mask)
        x_out = self.final_layer(x, c)  # (B, F·S, p·p·C) or (B, F·S, C)
        if not self.branches:
            preds = [self.unpatchify(x_out, b, f, gh, gw)]
        else:
            preds = self.refine(hidden_states, timestep, x, x_out, (f, gh, gw))
        if not return_dict:
            return (preds[-1],)
        return VideoDiTOutput(sample=preds[-1], branch_samples=preds[:-1] or None)

    def unpatchify(self, x: torch.Tensor, b: int, f: int, gh: int, gw: int) -> torch.Tensor:
        """(B, F·h·w, p·p·C) → (B, C, F, h·p, w·p)."""
        p, c = self.config.patch_size, self.out_channels
        x = x.reshape(b, f, gh, gw, p, p, c)
        x = torch.einsum("bfhwpqc->bcfhpwq", x)
        return x.reshape(b, c, f, gh * p, gw * p)

    def refine(self, hidden_states, timestep, tokens, coarse, grid) -> list[torch.Tensor]:
        """Per-frame refine branches → predictions coarse to fine, each (B, C, F, r, r)."""
        f, gh, gw = grid
        b = hidden_states.shape[0]

        def to_video(y):  # (B·F, C, r, r) → (B, C, F, r, r)
            return y.reshape(b, f, *y.shape[1:]).transpose(1, 2)

        coarse = coarse.reshape(b * f, gh, gw, -1).permute(0, 3, 1, 2)  # (B·F, C, h, w)
        features = tokens.reshape(b * f, gh, gw, -1).permute(0, 3, 1, 2)  # (B·F, D, h, w)
        frames = hidden_states.transpose(1, 2).flatten(0, 1)  # (B·F, C, H, W)
        t = torch.as_tensor(timestep, device=hidden_states.device).reshape(-1).expand(b)
        tau = scaled_log_snr(t).repeat_interleave(f)  # (B·F,)
        # channels-last makes the branches' (N, C, H, W) <-> (N, H, W, C) permutes free views
        features = features.contiguous(memory_format=torch.channels_last)
        frames = frames.contiguous(memory_format=torch.channels_last)
        preds = [to_video(coarse)]
        for level, branch in enumerate(self.branches):
            factor = 2 ** (len(self.branches) - 1 - level)
            x_level = nn.functional.avg_pool2d(frames, factor) if factor > 1 else frames
            features, pred = branch(x_level, features, tau)
            preds.append(to_video(pred))
        return preds
