"""VoxelDiT: a DiT-3D-style diffusion transformer that denoises point clouds through a voxel grid.

Reads top to bottom: positions, the block, the model. The noisy points (B, N, C) — xyz, plus rgb
when coloured — are average-voxelised into a G³ grid (`dit.voxel`), cut into p³ patches by a
Conv3d ((G/p)³ tokens with 3D sin-cos positions), run through DiT blocks with adaLN and text
cross-attention, unpatchified back to a G³ volume and read back at every point by trilinear
interpolation: a per-point prediction (noise, v or velocity) of the same shape as the input.

Blocks listed in `window_blocks` attend within w×w×w windows of the token grid only
(`dit.attention_window3d`, really windowed: a token never sees another window, an item never
sees another item); with `shift_windows` every second windowed block moves its windows by w/2
(Swin). The other blocks attend globally. DiT-3D's released code meant to do this but never
did (its window flag is parsed as characters, and its window path attends globally across the
batch).
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

from .attention import ATTENTION_BACKENDS, resolve_backend
from .attention_window3d import Window3D, dense_window_bias, window_attention_3d, window_attention_3d_dense
from .embeddings import CaptionProjection, MLPEmbedder, TextStandardizer, TimestepEmbedder, sincos_1d
from .transformer import DiTBlock, FinalLayer, modulate
from .voxel import devoxelize, grid_coordinates, voxelize

WINDOW_KERNELS = (window_attention_3d, window_attention_3d_dense)


def sincos_3d(dim: int, grid: tuple[int, int, int], device=None) -> torch.Tensor:
    """Fixed 3D position embedding of a row-major (gx, gy, gz) token grid → (gx·gy·gz, dim):
    [x | y | z] sin-cos features, each axis an even share of `dim` (z takes the remainder)."""
    if dim % 2:
        raise ValueError(f"hidden size {dim} must be even for 3D sin-cos positions")
    share = (dim // 6) * 2
    axes = [torch.arange(g, dtype=torch.float64, device=device) for g in grid]
    xx, yy, zz = torch.meshgrid(*axes, indexing="ij")
    parts = [sincos_1d(d, a.flatten()) for d, a in ((share, xx), (share, yy), (dim - 2 * share, zz))]
    return torch.cat(parts, dim=1).float()


#################################################################################
#                                 The block                                     #
#################################################################################

class VoxelDiTBlock(DiTBlock):
    """A `DiTBlock` whose self-attention is either global or confined to 3D windows (`window`)."""

    def __init__(self, dim: int, num_heads: int, window: Window3D | None = None,
                 window_backend: str = "window3d", **kwargs):
        super().__init__(dim, num_heads, **kwargs)
        self.window = window
        if window is not None:
            self.attn1.backend = resolve_backend(window_backend)

    def self_attention_bias(self, x: torch.Tensor):
        """None (global), the layout (window kernels) or its dense mask (any other kernel, so
        `set_attention_backend(model, "math")` keeps the windows)."""
        if self.window is None:
            return None
        if ATTENTION_BACKENDS[self.attn1.backend] in WINDOW_KERNELS:
            return self.window
        return dense_window_bias(self.window, x.device, x.dtype)

    def forward(self, hidden_states: torch.Tensor, cond: torch.Tensor,
                encoder_hidden_states: torch.Tensor | None = None,
                encoder_bias: torch.Tensor | None = None) -> torch.Tensor:
        """hidden_states: (B, T, D) tokens of the grid in row-major order; as `DiTBlock.forward`."""
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.modulation(cond)
        x = hidden_states
        h = modulate(self.norm1(x), shift_msa, scale_msa)
        x = x + gate_msa * self.attn1(h, bias=self.self_attention_bias(x))
        if self.attn2 is not None:
            x = x + self.attn2(x, encoder_hidden_states, encoder_bias)
        x = x + gate_mlp * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))
        return x  # (B, T, D)


TransformerBlockRegistry.register(VoxelDiTBlock, TransformerBlockMetadata(return_hidden_states_index=0))


#################################################################################
#                                  The model                                    #
#################################################################################

@dataclass
class VoxelDiTOutput(BaseOutput):
    """sample: (B, N, C_out) — the per-point prediction (noise, v or velocity)."""

    sample: torch.Tensor


def window_plan(depth: int, window_blocks, window_size: int, shift_windows: bool) -> dict[int, int]:
    """block index → window shift for each windowed block; refuses what DiT-3D's flag silently did."""
    if isinstance(window_blocks, str) or not all(isinstance(i, int) and not isinstance(i, bool) for i in window_blocks):
        raise ValueError(f"window_blocks must be a list of block indices (ints), got {window_blocks!r}")
    blocks = sorted(set(window_blocks))
    if blocks and not 0 <= blocks[0] <= blocks[-1] < depth:
        raise ValueError(f"window_blocks {list(window_blocks)} must lie in [0, depth={depth})")
    if blocks and window_size <= 0:
        raise ValueError(f"windowed blocks {blocks} need a positive window_size, got {window_size}")
    return {i: (window_size // 2 if shift_windows and n % 2 else 0) for n, i in enumerate(blocks)}


class VoxelDiT(ModelMixin, ConfigMixin, CacheMixin):
    """Point-cloud diffusion transformer over a voxel grid (DiT-3D), conditioned on text.

    - `sample`: (B, N, in_channels) noisy points, xyz first (then rgb when in_channels = 6).
    - `sample_size`: voxel grid G (32); `patch_size` p → (G/p)³ tokens (p = 4: 512, p = 2: 4096).
    - `window_blocks` / `window_size` / `shift_windows`: which blocks attend within windows of
      window_size³ tokens (see the module docstring); `window_backend` "window3d" (partitioned)
      or "window3d_dense" (its masked reference); global blocks use `attention_backend`.
    - `text_dim`: text-encoder hidden size (MiniLM: 384) for cross-attention to its tokens;
      `pooled_dim`: the pooled sentence embedding, added to the timestep embedding. Neither:
      unconditional. Classifier-free guidance uses the empty caption's encoding as the null.
    - `voxel_normalize`: each cloud centred and scaled onto the grid (DiT-3D) or [-1, 1]³ fixed.
    - `occupancy_channel`: the voxel features gain a 0/1 "holds a point" channel, so an empty
      voxel differs from one whose points average to zero.
    - `point_head_channels` > 0: the grid predicts that many features per voxel and a per-point
      MLP maps [devoxelised features, the point's own input] to the output, so points sharing a
      voxel can differ by more than trilinear interpolation allows; 0: DiT-3D's plain readout.
    """

    _supports_gradient_checkpointing = True
    _no_split_modules = ["VoxelDiTBlock"]

    @register_to_config
    def __init__(
        self,
        sample_size: int = 32,
        patch_size: int = 4,
        in_channels: int = 3,
        out_channels: int | None = None,
        hidden_size: int = 384,
        depth: int = 12,
        num_heads: int = 6,
        mlp_ratio: float = 4.0,
        window_size: int = 0,
        window_blocks: tuple[int, ...] | list[int] = (),
        shift_windows: bool = False,
        window_backend: str = "window3d",
        attention_backend: str = "sdpa",
        text_dim: int | None = None,
        pooled_dim: int | None = None,
        adaln: str = "zero",
        voxel_normalize: bool = True,
        occupancy_channel: bool = True,
        point_head_channels: int = 0,
        timestep_freq_shift: float = 1.0,
        norm_eps: float = 1e-6,
        attention_bias: bool = True,
        text_standardization: bool = False,
        qk_norm: bool = False,
        cross_attention_heads: int | None = None,
    ):
        super().__init__()
        if adaln not in ("zero", "single"):
            raise ValueError(f"adaln must be 'zero' or 'single', got {adaln!r}")
        if in_channels < 3:
            raise ValueError(f"points need at least xyz: in_channels must be >= 3, got {in_channels}")
        if sample_size % patch_size:
            raise ValueError(f"sample_size {sample_size} is not a multiple of the patch size {patch_size}")
        if pooled_dim and not text_dim:
            raise ValueError("pooled_dim needs text_dim: the pooled embedding comes with the text tokens")
        grid = sample_size // patch_size
        plan = window_plan(depth, window_blocks, window_size, shift_windows)
        if plan and grid % window_size:
            raise ValueError(f"window_size {window_size} does not divide the {grid}³ token grid "
                             f"(sample_size {sample_size} / patch_size {patch_size})")
        if window_backend not in ("window3d", "window3d_dense"):
            raise ValueError(f"window_backend must be 'window3d' or 'window3d_dense', got {window_backend!r}")
        self.out_channels = out_channels or in_channels
        self.gradient_checkpointing = False
        head = point_head_channels or self.out_channels

        voxel_channels = in_channels + int(occupancy_channel)
        self.patch_embed = nn.Conv3d(voxel_channels, hidden_size, patch_size, stride=patch_size)
        self.t_embedder = TimestepEmbedder(hidden_size, freq_shift=timestep_freq_shift)
        self.caption_projection = CaptionProjection(text_dim, hidden_size) if text_dim else None
        self.pooled_embedder = MLPEmbedder(pooled_dim, hidden_size) if pooled_dim else None
        self.text_standardizer = TextStandardizer(text_dim) if text_standardization and text_dim else None
        self.pooled_standardizer = (TextStandardizer(pooled_dim) if text_standardization and pooled_dim else None)
        self.adaln_single = nn.Linear(hidden_size, 6 * hidden_size) if adaln == "single" else None

        self.transformer_blocks = nn.ModuleList([
            VoxelDiTBlock(hidden_size, num_heads,
                          window=Window3D((grid,) * 3, window_size, plan[i]) if i in plan else None,
                          window_backend=window_backend, mlp_ratio=mlp_ratio, adaln=adaln,
                          cross_attention=bool(text_dim), norm_eps=norm_eps, attention_bias=attention_bias,
                          attention_backend=attention_backend, qk_norm=qk_norm,
                          cross_attention_heads=cross_attention_heads)
            for i in range(depth)
        ])
        # FinalLayer maps to p·p·C; asking for p·C channels gives the p³·C of a 3D patch
        self.final_layer = FinalLayer(hidden_size, patch_size, patch_size * head, adaln)
        self.point_head = (nn.Sequential(nn.Linear(head + in_channels, head), nn.SiLU(),
                                         nn.Linear(head, self.out_channels))
                           if point_head_channels else None)
        self.register_buffer("pos_embed", sincos_3d(hidden_size, (grid,) * 3)[None], persistent=False)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        """Xavier linears; adaLN-Zero: zero modulation and output so each block starts as identity."""
        def xavier(m):
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        self.apply(xavier)
        w = self.patch_embed.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.patch_embed.bias)
        nn.init.normal_(self.t_embedder.mlp.linear_1.weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp.linear_2.weight, std=0.02)
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
        last = self.point_head[-1] if self.point_head is not None else self.final_layer.linear
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    # ------------------------------------------------------------------ helpers

    @property
    def token_grid(self) -> int:
        return self.config.sample_size // self.config.patch_size

    def unpatchify(self, x: torch.Tensor) -> torch.Tensor:
        """(B, g³, p³·C) → (B, C, g·p, g·p, g·p)."""
        g, p = self.token_grid, self.config.patch_size
        c = x.shape[-1] // p ** 3
        x = x.reshape(x.shape[0], g, g, g, p, p, p, c)
        x = torch.einsum("nxyzpqrc->ncxpyqzr", x)
        return x.reshape(x.shape[0], c, g * p, g * p, g * p)

    def conditioning(self, timestep, pooled_text=None, batch_size: int = 1, dtype=torch.float32) -> torch.Tensor:
        """The conditioning vector c (B, D): timestep embedding (+ pooled text)."""
        timestep = torch.as_tensor(timestep, device=self.device)
        if timestep.ndim == 0:
            timestep = timestep[None]
        c = self.t_embedder(timestep.expand(batch_size), dtype)
        if self.pooled_embedder is not None and pooled_text is not None:
            if self.pooled_standardizer is not None:
                pooled_text = self.pooled_standardizer(pooled_text.float())
            c = c + self.pooled_embedder(pooled_text.to(dtype))
        return c

    # ------------------------------------------------------------------ forward

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        pooled_text: torch.Tensor | None = None,
        return_dict: bool = True,
    ):
        """sample: (B, N, in_channels); timestep: scalar or (B,); encoder_hidden_states (B, L, text_dim),
        encoder_attention_mask (B, L), pooled_text (B, pooled_dim) → VoxelDiTOutput(sample (B, N, C_out))."""
        cfg = self.config
        if sample.ndim != 3 or sample.shape[-1] != cfg.in_channels:
            raise ValueError(f"expected points of shape (B, N, {cfg.in_channels}), got {tuple(sample.shape)}")
        b, g = sample.shape[0], cfg.sample_size
        coords = grid_coordinates(sample[..., :3], g, cfg.voxel_normalize)  # (B, N, 3) in [0, G]
        volume, counts = voxelize(sample, coords, g)  # (B, C, G, G, G), (B, 1, G, G, G)
        if cfg.occupancy_channel:
            volume = torch.cat([volume, (counts > 0).to(volume.dtype)], dim=1)
        x = self.patch_embed(volume).flatten(2).transpose(1, 2)  # (B, T, D)
        x = x + self.pos_embed.to(x.dtype)

        c = self.conditioning(timestep, pooled_text, b, x.dtype)  # (B, D)
        block_cond = self.adaln_single(nn.functional.silu(c)) if self.adaln_single is not None else c

        context, bias = None, None
        if self.caption_projection is not None:
            if encoder_hidden_states is None:
                raise ValueError("this VoxelDiT is text-conditioned: pass encoder_hidden_states")
            if self.text_standardizer is not None:
                encoder_hidden_states = self.text_standardizer(encoder_hidden_states.float())
            context = self.caption_projection(encoder_hidden_states.to(x.dtype))  # (B, L, D)
            if encoder_attention_mask is not None:
                bias = ((1 - encoder_attention_mask.to(x.dtype)) * -10000.0)[:, None, None, :]  # (B, 1, 1, L)

        for block in self.transformer_blocks:
            if torch.is_grad_enabled() and self.gradient_checkpointing:
                x = self._gradient_checkpointing_func(block, x, block_cond, context, bias)
            else:
                x = block(x, block_cond, encoder_hidden_states=context, encoder_bias=bias)  # (B, T, D)

        x = self.final_layer(x, c)  # (B, T, p³·C_head)
        out = devoxelize(self.unpatchify(x), coords)  # (B, N, C_head)
        if self.point_head is not None:
            out = self.point_head(torch.cat([out, sample.to(out.dtype)], dim=-1))  # (B, N, C_out)
        if not return_dict:
            return (out,)
        return VoxelDiTOutput(sample=out)
