"""Convert diffusers' DiT and PixArt-α transformers into ditkit's `DiT`, weight for weight.

    from dit.convert_diffusers import load_diffusers_transformer
    model = load_diffusers_transformer("path/to/pipeline/transformer")

The converted model reproduces the diffusers model's output (same math, same weights); the
tests in `tests/test_convert.py` hold it to 1e-4 in fp32. Entry points:

- `dit_from_diffusers(model)` / `pixart_from_diffusers(model)`: a loaded diffusers model → `DiT`.
- `dit_config_from_diffusers(config)` / `pixart_config_from_diffusers(config)`: a diffusers
  config (dict or FrozenDict) → `DiT` constructor kwargs.
- `convert_dit_state_dict(sd, depth)` / `convert_pixart_state_dict(sd, depth)`: a diffusers
  state dict (a loaded model's, or a raw safetensors file's) → ditkit keys. Every source key
  must be consumed; leftovers raise a ValueError that names them.
- `load_diffusers_transformer(path)`: a diffusers transformer folder → `DiT`.

Differences the converter bridges:
- diffusers' DiT gives every block its own timestep + label embedder (`norm1.emb`) and uses
  block 0's for the final layer. Checkpoints converted from facebookresearch/DiT hold the same
  embedder in every block; ditkit's DiT shares one, so the converter takes block 0's and
  refuses checkpoints whose blocks' embedders differ.
- diffusers' fixed sin-cos position buffer (`pos_embed.pos_embed`) is recomputed by ditkit from
  the config and is dropped when a raw state dict carries it.
- Dropout (`dropout`, the label embedder's CFG dropout) exists only in training; ditkit's DiT
  has none, so outputs match in eval mode.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Mapping

import diffusers
import torch

from .transformer import DiT

__all__ = [
    "dit_config_from_diffusers", "pixart_config_from_diffusers",
    "convert_dit_state_dict", "convert_pixart_state_dict",
    "dit_from_diffusers", "pixart_from_diffusers", "load_diffusers_transformer",
]

# Buffers diffusers derives from the config; ditkit recomputes them, so they carry no weights.
_DERIVED_BUFFERS = ("pos_embed.pos_embed",)


#################################################################################
#                                   Configs                                     #
#################################################################################

def _get(config: Mapping[str, Any] | Any, name: str, default=None):
    if isinstance(config, Mapping):
        return config.get(name, default)
    return getattr(config, name, default)


def _check_common(config, kind: str, norm_type: str) -> None:
    """Rejects diffusers options that ditkit's DiT does not implement (so no silent mismatch)."""
    if _get(config, "norm_type", norm_type) != norm_type:
        raise ValueError(f"{kind}: norm_type {_get(config, 'norm_type')!r} is not supported (expected {norm_type!r})")
    if _get(config, "activation_fn", "gelu-approximate") != "gelu-approximate":
        raise ValueError(f"{kind}: activation_fn {_get(config, 'activation_fn')!r} is not supported; "
                         "ditkit's MLP is Linear → GELU(tanh) → Linear ('gelu-approximate')")
    if _get(config, "norm_elementwise_affine", False):
        raise ValueError(f"{kind}: norm_elementwise_affine=True is not supported; ditkit's block norms "
                         "have no affine parameters")
    sample_size, patch_size = _get(config, "sample_size"), _get(config, "patch_size")
    if not isinstance(sample_size, int) or not isinstance(patch_size, int):
        raise ValueError(f"{kind}: sample_size and patch_size must be ints, got {sample_size!r}, {patch_size!r}")
    if sample_size % patch_size:
        raise ValueError(f"{kind}: sample_size {sample_size} is not a multiple of patch_size {patch_size}")


def _common_kwargs(config) -> dict:
    heads, head_dim = _get(config, "num_attention_heads"), _get(config, "attention_head_dim")
    in_channels = _get(config, "in_channels")
    return dict(
        sample_size=_get(config, "sample_size"),
        patch_size=_get(config, "patch_size"),
        in_channels=in_channels,
        # learned sigma: diffusers' config already says out_channels = 2 * in_channels
        out_channels=_get(config, "out_channels") or in_channels,
        hidden_size=heads * head_dim,
        depth=_get(config, "num_layers"),
        num_heads=heads,
        mlp_ratio=4.0,  # diffusers' FeedForward: inner dim = 4 * dim
        norm_eps=float(_get(config, "norm_eps")),
        attention_bias=bool(_get(config, "attention_bias", True)),
    )


def dit_config_from_diffusers(config: Mapping[str, Any]) -> dict:
    """`DiTTransformer2DModel` config → `DiT` kwargs (class-conditioned, adaLN-Zero)."""
    _check_common(config, "DiTTransformer2DModel", "ada_norm_zero")
    num_classes = _get(config, "num_embeds_ada_norm")
    if num_classes is None:
        raise ValueError("DiTTransformer2DModel: num_embeds_ada_norm (the number of classes) is required")
    return dict(
        _common_kwargs(config),
        condition="class",
        num_classes=num_classes,
        adaln="zero",
        timestep_freq_shift=1.0,
        interpolation_scale=1.0,
    )


def pixart_config_from_diffusers(config: Mapping[str, Any]) -> dict:
    """`PixArtTransformer2DModel` config → `DiT` kwargs (text-conditioned, adaLN-single)."""
    kind = "PixArtTransformer2DModel"
    _check_common(config, kind, "ada_norm_single")
    if _get(config, "attention_type", "default") != "default":
        raise ValueError(f"{kind}: attention_type {_get(config, 'attention_type')!r} is not supported")
    caption_channels = _get(config, "caption_channels")
    if caption_channels is None:
        raise ValueError(f"{kind}: models without caption_channels (no caption projection) are not supported")
    kwargs = _common_kwargs(config)
    hidden = kwargs["hidden_size"]
    if _get(config, "cross_attention_dim") != hidden:
        raise ValueError(f"{kind}: cross_attention_dim {_get(config, 'cross_attention_dim')} must equal the "
                         f"hidden size {hidden} (the caption projection's output)")
    # diffusers' PixArt block norm1 uses norm_eps; ditkit's norm1 uses 1e-6 (every released PixArt).
    if kwargs["norm_eps"] != 1e-6:
        raise ValueError(f"{kind}: norm_eps {kwargs['norm_eps']} is not supported; ditkit's adaLN-single "
                         "block normalises attention inputs with eps 1e-6, as every released PixArt does")
    sample_size = kwargs["sample_size"]
    use_additional = _get(config, "use_additional_conditions")
    if use_additional is None:  # diffusers' rule: the 1024px model (sample_size 128) has them
        use_additional = sample_size == 128
    if use_additional and hidden % 3:
        raise ValueError(f"{kind}: size conditioning needs a hidden size divisible by 3, got {hidden}")
    interpolation_scale = _get(config, "interpolation_scale")
    if interpolation_scale is None:
        interpolation_scale = max(sample_size // 64, 1)
    return dict(
        kwargs,
        condition="text",
        text_dim=caption_channels,
        adaln="single",
        size_conditioning=bool(use_additional),
        timestep_freq_shift=0.0,
        interpolation_scale=float(interpolation_scale),
    )


#################################################################################
#                                 State dicts                                   #
#################################################################################

class _Mapper:
    """Moves keys from a source state dict to ditkit names and reports what is left over."""

    def __init__(self, state_dict: Mapping[str, torch.Tensor], kind: str):
        self.kind = kind
        self.src = dict(state_dict)
        self.out: dict[str, torch.Tensor] = {}
        for key in _DERIVED_BUFFERS:
            self.src.pop(key, None)

    def module(self, src: str, dst: str, required: bool = True) -> bool:
        """Moves every `{src}.<param>` (weight, bias, …) to `{dst}.<param>`."""
        prefix = src + "."
        keys = [k for k in self.src if k.startswith(prefix) and "." not in k[len(prefix):]]
        if not keys:
            if required:
                raise ValueError(f"{self.kind}: the state dict has no parameters for {src!r}")
            return False
        for k in keys:
            self.out[dst + "." + k[len(prefix):]] = self.src.pop(k)
        return True

    def tensor(self, src: str, dst: str) -> None:
        if src not in self.src:
            raise ValueError(f"{self.kind}: the state dict has no {src!r}")
        self.out[dst] = self.src.pop(src)

    def finish(self) -> dict[str, torch.Tensor]:
        if self.src:
            raise ValueError(f"{self.kind}: {len(self.src)} state-dict key(s) have no counterpart in ditkit's DiT "
                             f"(wrong depth, or an unsupported variant?): {sorted(self.src)}")
        return self.out


def _map_block_attention_mlp(m: _Mapper, i: int, attentions: tuple[str, ...]) -> None:
    s, d = f"transformer_blocks.{i}", f"transformer_blocks.{i}"
    for attn in attentions:
        for proj in ("to_q", "to_k", "to_v"):
            m.module(f"{s}.{attn}.{proj}", f"{d}.{attn}.{proj}")
        m.module(f"{s}.{attn}.to_out.0", f"{d}.{attn}.to_out")
    m.module(f"{s}.ff.net.0.proj", f"{d}.mlp.0")
    m.module(f"{s}.ff.net.2", f"{d}.mlp.2")


def convert_dit_state_dict(state_dict: Mapping[str, torch.Tensor], depth: int) -> dict[str, torch.Tensor]:
    """diffusers `DiTTransformer2DModel` state dict → ditkit `DiT` (adaln="zero", condition="class").

    Block 0's timestep + label embedder becomes the shared one; every other block's must be
    identical to it (as in checkpoints converted from facebookresearch/DiT), else ValueError.
    """
    m = _Mapper(state_dict, "DiTTransformer2DModel")
    m.module("pos_embed.proj", "patch_embed")

    emb = re.compile(r"^transformer_blocks\.(\d+)\.norm1\.emb\.(.+)$")
    differing = []
    for key in list(m.src):
        match = emb.match(key)
        if match is None or match[1] == "0":
            continue
        ref = f"transformer_blocks.0.norm1.emb.{match[2]}"
        value = m.src.pop(key)
        if ref not in m.src:
            raise ValueError(f"DiTTransformer2DModel: {key!r} has no counterpart {ref!r} in block 0")
        if not torch.equal(value, m.src[ref]):
            differing.append(key)
    if differing:
        raise ValueError(
            "DiTTransformer2DModel: this checkpoint has per-block timestep/label embedders that differ "
            f"from block 0's ({sorted(differing)}); ditkit's DiT shares one embedder across all blocks "
            "(as facebookresearch/DiT does), so it cannot represent this checkpoint exactly")
    m.module("transformer_blocks.0.norm1.emb.timestep_embedder.linear_1", "t_embedder.mlp.linear_1")
    m.module("transformer_blocks.0.norm1.emb.timestep_embedder.linear_2", "t_embedder.mlp.linear_2")
    m.module("transformer_blocks.0.norm1.emb.class_embedder.embedding_table", "y_embedder.embedding_table")

    for i in range(depth):
        m.module(f"transformer_blocks.{i}.norm1.linear", f"transformer_blocks.{i}.adaLN_modulation")
        _map_block_attention_mlp(m, i, ("attn1",))

    m.module("proj_out_1", "final_layer.adaLN_modulation")
    m.module("proj_out_2", "final_layer.linear")
    return m.finish()


def convert_pixart_state_dict(state_dict: Mapping[str, torch.Tensor], depth: int) -> dict[str, torch.Tensor]:
    """diffusers `PixArtTransformer2DModel` state dict → ditkit `DiT` (adaln="single", condition="text").

    Size-conditioning embedders (PixArt-α 1024) are mapped when present.
    """
    m = _Mapper(state_dict, "PixArtTransformer2DModel")
    m.module("pos_embed.proj", "patch_embed")
    m.module("adaln_single.emb.timestep_embedder.linear_1", "t_embedder.mlp.linear_1")
    m.module("adaln_single.emb.timestep_embedder.linear_2", "t_embedder.mlp.linear_2")
    for src, dst in (("resolution_embedder", "resolution"), ("aspect_ratio_embedder", "aspect_ratio")):
        for lin in ("linear_1", "linear_2"):
            m.module(f"adaln_single.emb.{src}.{lin}", f"size_embedder.{dst}.{lin}", required=False)
    m.module("adaln_single.linear", "adaln_single")
    m.module("caption_projection.linear_1", "caption_projection.linear_1")
    m.module("caption_projection.linear_2", "caption_projection.linear_2")

    for i in range(depth):
        m.tensor(f"transformer_blocks.{i}.scale_shift_table", f"transformer_blocks.{i}.scale_shift_table")
        _map_block_attention_mlp(m, i, ("attn1", "attn2"))

    m.tensor("scale_shift_table", "final_layer.scale_shift_table")
    m.module("proj_out", "final_layer.linear")
    return m.finish()


#################################################################################
#                                    Models                                     #
#################################################################################

def _load_exact(model: DiT, state_dict: dict[str, torch.Tensor], kind: str) -> DiT:
    """`load_state_dict(strict=True)` with ValueErrors that name the offending keys."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    if missing or unexpected:
        raise ValueError(f"{kind}: converted weights do not match ditkit's DiT: missing {missing}, "
                         f"unexpected {unexpected}")
    wrong = [f"{k}: {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in state_dict.items()
             if v.shape != own[k].shape]
    if wrong:
        raise ValueError(f"{kind}: converted weights have the wrong shapes (checkpoint vs DiT): {wrong}")
    model.load_state_dict(state_dict, strict=True)
    return model


def _place_like(dit: DiT, source: torch.nn.Module) -> DiT:
    """Moves the converted model to the source's device and dtype (only if they differ)."""
    p, q = next(source.parameters()), next(dit.parameters())
    if p.device != q.device:
        dit = dit.to(p.device)
    if p.dtype != q.dtype:
        dit = dit.to(p.dtype)
    return dit.eval()


def dit_from_diffusers(model) -> DiT:
    """A `diffusers.DiTTransformer2DModel` → an equivalent ditkit `DiT` (same device and dtype)."""
    kwargs = dit_config_from_diffusers(model.config)
    state_dict = convert_dit_state_dict(model.state_dict(), kwargs["depth"])
    dit = _load_exact(DiT(**kwargs), state_dict, "DiTTransformer2DModel")
    return _place_like(dit, model)


def pixart_from_diffusers(model) -> DiT:
    """A `diffusers.PixArtTransformer2DModel` → an equivalent ditkit `DiT` (same device and dtype)."""
    config = dict(model.config)
    # the model knows whether it was built with size conditioning, whatever the config said
    config["use_additional_conditions"] = bool(getattr(model, "use_additional_conditions",
                                                       config.get("use_additional_conditions")))
    kwargs = pixart_config_from_diffusers(config)
    state_dict = convert_pixart_state_dict(model.state_dict(), kwargs["depth"])
    dit = _load_exact(DiT(**kwargs), state_dict, "PixArtTransformer2DModel")
    return _place_like(dit, model)


# legacy `Transformer2DModel` folders (facebook/DiT-*, PixArt-alpha/*) are told apart by norm_type,
# as diffusers itself does when it remaps them
_LEGACY_NORM_TYPES = {"ada_norm_zero": "DiTTransformer2DModel", "ada_norm_single": "PixArtTransformer2DModel"}


def load_diffusers_transformer(path: str | os.PathLike) -> DiT:
    """A diffusers transformer folder (`config.json` + safetensors weights) → ditkit `DiT`.

    `path` may also be a pipeline folder with a `transformer/` subfolder. Supported classes:
    `DiTTransformer2DModel`, `PixArtTransformer2DModel`, and the legacy `Transformer2DModel`
    with norm_type "ada_norm_zero" (DiT) or "ada_norm_single" (PixArt).
    """
    path = os.fspath(path)
    if not os.path.isfile(os.path.join(path, "config.json")) and \
            os.path.isfile(os.path.join(path, "transformer", "config.json")):
        path = os.path.join(path, "transformer")
    with open(os.path.join(path, "config.json")) as f:
        config = json.load(f)
    class_name = config.get("_class_name")
    if class_name == "Transformer2DModel":
        class_name = _LEGACY_NORM_TYPES.get(config.get("norm_type"), class_name)
    converters = {"DiTTransformer2DModel": dit_from_diffusers, "PixArtTransformer2DModel": pixart_from_diffusers}
    if class_name not in converters:
        extra = f" with norm_type {config.get('norm_type')!r}" if class_name == "Transformer2DModel" else ""
        raise ValueError(f"unsupported diffusers transformer class {config.get('_class_name')!r}{extra} in "
                         f"{path}; supported: {sorted(converters)} (and legacy Transformer2DModel DiT/PixArt)")
    source = getattr(diffusers, class_name).from_pretrained(path, use_safetensors=True)
    return converters[class_name](source)
