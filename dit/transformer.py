"""DiT: a diffusion transformer with adaLN-Zero (DiT) or adaLN-single (PixArt-α) conditioning.

Reads top to bottom: the block, the final layer, the model. Conditioning is a class label or
text (tokens by cross-attention, pooled embedding added to the timestep embedding).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.hooks._helpers import TransformerBlockMetadata, TransformerBlockRegistry
from diffusers.models.cache_utils import CacheMixin
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import BaseOutput
from torch import nn

from .attention import Attention
from .embeddings import (CaptionProjection, LabelEmbedder, MLPEmbedder, SizeEmbedder, TextStandardizer,
                         TimestepEmbedder, sincos_2d)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x: (B, T, D); shift/scale: (B, 1, D)."""
    return x * (1 + scale) + shift


#################################################################################
#                                 The block                                     #
#################################################################################

class DiTBlock(nn.Module):
    """Self-attention (+ cross-attention to text) + MLP, each modulated by the conditioning.

    `cond` is the conditioning vector c (B, D) for adaLN-Zero, or the shared modulation
    (B, 6·D) for adaLN-single, which this block offsets by its own learned table.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, adaln: str = "zero",
                 cross_attention: bool = False, norm_eps: float = 1e-6, attention_bias: bool = True,
                 attention_backend: str = "sdpa", qk_norm: bool = False, cross_attention_heads: int | None = None):
        super().__init__()
        self.adaln = adaln
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn1 = Attention(dim, num_heads, bias=attention_bias, backend=attention_backend, qk_norm=qk_norm)
        self.attn2 = (Attention(dim, cross_attention_heads or num_heads, bias=attention_bias,
                                backend=attention_backend, qk_norm=qk_norm)
                      if cross_attention else None)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=norm_eps)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, dim))
        if adaln == "zero":
            self.adaLN_modulation = nn.Linear(dim, 6 * dim)
        else:
            self.scale_shift_table = nn.Parameter(torch.randn(6, dim) / dim**0.5)

    def modulation(self, cond: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """→ six (B, 1, D) tensors: shift/scale/gate for attention, then for the MLP."""
        if self.adaln == "zero":
            mod = self.adaLN_modulation(nn.functional.silu(cond))[:, None]  # (B, 1, 6D)
            return mod.chunk(6, dim=-1)
        mod = self.scale_shift_table[None] + cond.reshape(cond.shape[0], 6, -1)  # (B, 6, D)
        return mod.chunk(6, dim=1)

    def forward(self, hidden_states: torch.Tensor, cond: torch.Tensor,
                encoder_hidden_states: torch.Tensor | None = None,
                encoder_bias: torch.Tensor | None = None) -> torch.Tensor:
        """hidden_states: (B, T, D); encoder_hidden_states: (B, L, D); encoder_bias: (B, 1, 1, L)."""
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.modulation(cond)
        x = hidden_states
        x = x + gate_msa * self.attn1(modulate(self.norm1(x), shift_msa, scale_msa))
        if self.attn2 is not None:
            x = x + self.attn2(x, encoder_hidden_states, encoder_bias)
        x = x + gate_mlp * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))
        return x  # (B, T, D)


# diffusers' cache hooks (FirstBlockCache, …) find blocks through this registry.
TransformerBlockRegistry.register(DiTBlock, TransformerBlockMetadata(return_hidden_states_index=0))


class FinalLayer(nn.Module):
    """Modulated LayerNorm → Linear to patch pixels."""

    def __init__(self, dim: int, patch_size: int, out_channels: int, adaln: str = "zero"):
        super().__init__()
        self.adaln = adaln
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(dim, patch_size * patch_size * out_channels)
        if adaln == "zero":
            self.adaLN_modulation = nn.Linear(dim, 2 * dim)
        else:
            self.scale_shift_table = nn.Parameter(torch.randn(2, dim) / dim**0.5)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """x: (B, T, D); c: (B, D) the conditioning vector (before any activation)."""
        if self.adaln == "zero":
            shift, scale = self.adaLN_modulation(nn.functional.silu(c))[:, None].chunk(2, dim=-1)
        else:
            shift, scale = (self.scale_shift_table[None] + c[:, None]).chunk(2, dim=1)
        return self.linear(modulate(self.norm(x), shift, scale))  # (B, T, p·p·C)


#################################################################################
#                                  The model                                    #
#################################################################################

@dataclass
class DiTOutput(BaseOutput):
    """sample: (B, C_out, H, W) — the model's prediction (noise, v or velocity)."""

    sample: torch.Tensor


class DiT(ModelMixin, ConfigMixin, CacheMixin):
    """Diffusion transformer over a (B, C, H, W) image or latent, conditioned on a class or on text.

    - `condition="class"`: `class_labels` (B,) with index `num_classes` as the null label.
    - `condition="text"`: `encoder_hidden_states` (B, L, text_dim) for cross-attention, optional
      `encoder_attention_mask` (B, L), and `pooled_text` (B, pooled_dim) added to the timestep
      embedding when `pooled_dim` is set.
    - `adaln="zero"`: each block maps c to its own modulation (DiT); `adaln="single"`: one shared
      map of c plus a per-block table (PixArt-α).
    - `qk_norm`: RMS-normalised queries and keys in every attention (see `Attention`);
      `cross_attention_heads`: heads of the text cross-attention (default `num_heads`) — more,
      narrower heads let each caption word find a head of its own.
    """

    _supports_gradient_checkpointing = True
    _no_split_modules = ["DiTBlock"]

    @register_to_config
    def __init__(
        self,
        sample_size: int = 32,
        patch_size: int = 2,
        in_channels: int = 4,
        out_channels: int | None = None,
        hidden_size: int = 384,
        depth: int = 12,
        num_heads: int = 6,
        mlp_ratio: float = 4.0,
        condition: str = "class",
        num_classes: int = 1000,
        text_dim: int | None = None,
        pooled_dim: int | None = None,
        adaln: str = "zero",
        size_conditioning: bool = False,
        timestep_freq_shift: float = 1.0,
        interpolation_scale: float = 1.0,
        norm_eps: float = 1e-6,
        attention_bias: bool = True,
        attention_backend: str = "sdpa",
        text_standardization: bool = False,
        qk_norm: bool = False,
        cross_attention_heads: int | None = None,
    ):
        super().__init__()
        if condition not in ("class", "text"):
            raise ValueError(f"condition must be 'class' or 'text', got {condition!r}")
        if adaln not in ("zero", "single"):
            raise ValueError(f"adaln must be 'zero' or 'single', got {adaln!r}")
        if condition == "text" and not text_dim:
            raise ValueError("a text-conditioned DiT needs text_dim (the text encoder's hidden size)")
        self.out_channels = out_channels or in_channels
        self.gradient_checkpointing = False

        self.patch_embed = nn.Conv2d(in_channels, hidden_size, patch_size, stride=patch_size)
        self.t_embedder = TimestepEmbedder(hidden_size, freq_shift=timestep_freq_shift)
        self.y_embedder = LabelEmbedder(num_classes, hidden_size) if condition == "class" else None
        self.caption_projection = CaptionProjection(text_dim, hidden_size) if condition == "text" else None
        self.pooled_embedder = MLPEmbedder(pooled_dim, hidden_size) if pooled_dim else None
        standardize = text_standardization and condition == "text"
        self.text_standardizer = TextStandardizer(text_dim) if standardize else None
        self.pooled_standardizer = TextStandardizer(pooled_dim) if standardize and pooled_dim else None
        self.size_embedder = SizeEmbedder(hidden_size) if size_conditioning else None
        self.adaln_single = nn.Linear(hidden_size, 6 * hidden_size) if adaln == "single" else None

        self.transformer_blocks = nn.ModuleList([
            DiTBlock(hidden_size, num_heads, mlp_ratio, adaln, cross_attention=condition == "text",
                     norm_eps=norm_eps, attention_bias=attention_bias, attention_backend=attention_backend,
                     qk_norm=qk_norm, cross_attention_heads=cross_attention_heads)
            for _ in range(depth)
        ])
        self.final_layer = FinalLayer(hidden_size, patch_size, self.out_channels, adaln)
        self._pos_cache: dict = {}
        self.initialize_weights()

    def initialize_weights(self) -> None:
        """Xavier linears; adaLN-Zero: zero modulation and output so each block starts as identity."""
        def xavier(m):
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:  # attention_bias=False: q/k/v have no bias
                    nn.init.zeros_(m.bias)
        self.apply(xavier)
        w = self.patch_embed.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.normal_(self.t_embedder.mlp.linear_1.weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp.linear_2.weight, std=0.02)
        if self.y_embedder is not None:
            nn.init.normal_(self.y_embedder.embedding_table.weight, std=0.02)
        for block in self.transformer_blocks:
            if block.adaln == "zero":
                nn.init.zeros_(block.adaLN_modulation.weight)
                nn.init.zeros_(block.adaLN_modulation.bias)
            if block.attn2 is not None:  # cross-attention starts silent, as in PixArt
                nn.init.zeros_(block.attn2.to_out.weight)
        if self.adaln_single is not None:
            nn.init.normal_(self.adaln_single.weight, std=0.02)
        if self.final_layer.adaln == "zero":
            nn.init.zeros_(self.final_layer.adaLN_modulation.weight)
            nn.init.zeros_(self.final_layer.adaLN_modulation.bias)
        nn.init.zeros_(self.final_layer.linear.weight)
        nn.init.zeros_(self.final_layer.linear.bias)

    # ------------------------------------------------------------------ helpers

    def pos_embed(self, grid_h: int, grid_w: int, device, dtype) -> torch.Tensor:
        """Cached (1, h·w, D) sin-cos positions for a token grid."""
        key = (grid_h, grid_w, device, dtype)
        if key not in self._pos_cache:
            base = self.config.sample_size / self.config.patch_size
            emb = sincos_2d(self.config.hidden_size, grid_h, grid_w, base, self.config.interpolation_scale, device)
            self._pos_cache[key] = emb.to(dtype)[None]
        return self._pos_cache[key]

    def unpatchify(self, x: torch.Tensor, grid_h: int, grid_w: int) -> torch.Tensor:
        """(B, h·w, p·p·C) → (B, C, h·p, w·p)."""
        p, c = self.config.patch_size, self.out_channels
        x = x.reshape(x.shape[0], grid_h, grid_w, p, p, c)
        x = torch.einsum("nhwpqc->nchpwq", x)
        return x.reshape(x.shape[0], c, grid_h * p, grid_w * p)

    def conditioning(self, timestep, class_labels=None, pooled_text=None, resolution=None,
                     aspect_ratio=None, batch_size: int = 1, dtype=torch.float32) -> torch.Tensor:
        """The conditioning vector c (B, D): timestep embedding + label / pooled text / size."""
        timestep = torch.as_tensor(timestep, device=self.device)
        if timestep.ndim == 0:
            timestep = timestep[None]
        timestep = timestep.expand(batch_size)
        c = self.t_embedder(timestep, dtype)
        if self.y_embedder is not None:
            if class_labels is None:
                raise ValueError("this DiT is class-conditioned: pass class_labels")
            c = c + self.y_embedder(class_labels)
        if self.pooled_embedder is not None and pooled_text is not None:
            if self.pooled_standardizer is not None:
                pooled_text = self.pooled_standardizer(pooled_text.float())
            c = c + self.pooled_embedder(pooled_text.to(dtype))
        if self.size_embedder is not None:
            if resolution is None or aspect_ratio is None:
                raise ValueError("this DiT is size-conditioned: pass resolution and aspect_ratio")
            c = c + self.size_embedder(resolution, aspect_ratio, dtype)
        return c

    # ------------------------------------------------------------------ forward

    def run_trunk(self, hidden_states, timestep, class_labels=None, encoder_hidden_states=None,
                  encoder_attention_mask=None, pooled_text=None, resolution=None, aspect_ratio=None):
        """Patchify, condition and run the transformer blocks → tokens (B, T, D), c (B, D), grid (h, w)."""
        b, _, h, w = hidden_states.shape
        p = self.config.patch_size
        if h % p or w % p:
            raise ValueError(f"input size {h}x{w} is not a multiple of the patch size {p}")
        gh, gw = h // p, w // p
        x = self.patch_embed(hidden_states).flatten(2).transpose(1, 2)  # (B, T, D)
        x = x + self.pos_embed(gh, gw, x.device, x.dtype)

        c = self.conditioning(timestep, class_labels, pooled_text, resolution, aspect_ratio, b, x.dtype)
        block_cond = self.adaln_single(nn.functional.silu(c)) if self.adaln_single is not None else c

        context, bias = None, None
        if self.caption_projection is not None:
            if encoder_hidden_states is None:
                raise ValueError("this DiT is text-conditioned: pass encoder_hidden_states")
            if self.text_standardizer is not None:
                encoder_hidden_states = self.text_standardizer(encoder_hidden_states.float())
            context = self.caption_projection(encoder_hidden_states.to(x.dtype))  # (B, L, D)
            if encoder_attention_mask is not None:
                bias = (1 - encoder_attention_mask.to(x.dtype)) * -10000.0
                bias = bias[:, None, None, :]  # (B, 1, 1, L)

        for block in self.transformer_blocks:
            if torch.is_grad_enabled() and self.gradient_checkpointing:
                x = self._gradient_checkpointing_func(block, x, block_cond, context, bias)
            else:
                x = block(x, block_cond, encoder_hidden_states=context, encoder_bias=bias)
        return x, c, (gh, gw)

    def forward(
        self,
        hidden_states: torch.Tensor,
        timestep: torch.Tensor,
        class_labels: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        pooled_text: torch.Tensor | None = None,
        resolution: torch.Tensor | None = None,
        aspect_ratio: torch.Tensor | None = None,
        return_dict: bool = True,
    ):
        """hidden_states: (B, C, H, W); timestep: scalar or (B,) → DiTOutput(sample (B, C_out, H, W))."""
        x, c, (gh, gw) = self.run_trunk(hidden_states, timestep, class_labels, encoder_hidden_states,
                                        encoder_attention_mask, pooled_text, resolution, aspect_ratio)
        x = self.final_layer(x, c)  # (B, T, p·p·C_out)
        out = self.unpatchify(x, gh, gw)
        if not return_dict:
            return (out,)
        return DiTOutput(sample=out)
