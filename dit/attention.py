"""Multi-head attention whose kernel is chosen by name.

The projections (`to_q`, `to_k`, `to_v`, `to_out`) are fixed; only the kernel that turns
(q, k, v, bias) into an output changes. New kernels (windowed, tiled/sparse) register
themselves in `ATTENTION_BACKENDS` and every model picks them up by name.
"""

from __future__ import annotations

import importlib.util
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .attention_window3d import window_attention_3d, window_attention_3d_dense

AttentionKernel = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, "torch.Tensor | None"], torch.Tensor]


def reference_attention(q, k, v, bias=None):
    """Plain softmax(q kᵀ/√d + bias) v; the reference every fast kernel is tested against.

    q: (B, H, Tq, Dh), k/v: (B, H, Tk, Dh), bias: additive, broadcastable to (B, H, Tq, Tk).
    """
    scores = (q.float() @ k.float().transpose(-2, -1)) * q.shape[-1] ** -0.5
    if bias is not None:
        scores = scores + bias.float()
    return (scores.softmax(dim=-1) @ v.float()).to(q.dtype)


def sdpa_attention(q, k, v, bias=None):
    """PyTorch's fused scaled-dot-product attention (flash / memory-efficient / math)."""
    if bias is not None:
        bias = bias.to(q.dtype)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=bias)


def xformers_available() -> bool:
    return importlib.util.find_spec("xformers") is not None and torch.cuda.is_available()


def xformers_attention(q, k, v, bias=None):
    """xformers' memory-efficient kernel; CUDA only."""
    if not q.is_cuda:
        raise RuntimeError("the 'xformers' attention backend needs CUDA tensors; use 'sdpa' on CPU")
    import xformers.ops as xops  # optional dependency (CUDA machines only)

    # xformers wants (B, T, H, Dh) and a bias of full (B, H, Tq, Tk) shape.
    if bias is not None:
        bias = bias.to(q.dtype).expand(q.shape[0], q.shape[1], q.shape[2], k.shape[2])
    out = xops.memory_efficient_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_bias=bias
    )
    return out.transpose(1, 2)


ATTENTION_BACKENDS: dict[str, AttentionKernel] = {
    "sdpa": sdpa_attention,
    "math": reference_attention,
    "xformers": xformers_attention,
    # 3D windows: `bias` is the Window3D layout (dit.attention_window3d); windowed blocks only
    "window3d": window_attention_3d,
    "window3d_dense": window_attention_3d_dense,
}


def resolve_backend(name: str) -> str:
    """Maps 'auto' to the best installed kernel and rejects unknown or unusable names."""
    if name == "auto":
        return "xformers" if xformers_available() else "sdpa"
    if name not in ATTENTION_BACKENDS:
        raise ValueError(
            f"unknown attention backend {name!r}; choose one of {sorted(ATTENTION_BACKENDS) + ['auto']}"
        )
    if name == "xformers" and not xformers_available():
        raise ValueError("attention backend 'xformers' needs the xformers package and a CUDA device")
    return name


class Attention(nn.Module):
    """Self- or cross-attention: q from `x`, k/v from `context` (or `x`), kernel by name.

    `qk_norm` RMS-normalises each head's queries and keys (learned scale), as in SD3 and ViT-22B:
    it bounds the attention logits, so a head cannot collapse onto a few keys early in training
    and starve the others of gradient (measured on the Shapes World text cross-attention, where
    the unnormalised heads ignored the shape word entirely).
    """

    def __init__(self, dim: int, num_heads: int, context_dim: int | None = None, bias: bool = True,
                 backend: str = "sdpa", qk_norm: bool = False):
        super().__init__()
        if not isinstance(num_heads, int) or num_heads <= 0 or dim % num_heads:
            raise ValueError(f"hidden size {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        context_dim = context_dim or dim
        self.to_q = nn.Linear(dim, dim, bias=bias)
        self.to_k = nn.Linear(context_dim, dim, bias=bias)
        self.to_v = nn.Linear(context_dim, dim, bias=bias)
        self.to_out = nn.Linear(dim, dim, bias=True)
        self.norm_q = nn.RMSNorm(dim // num_heads, eps=1e-6) if qk_norm else None
        self.norm_k = nn.RMSNorm(dim // num_heads, eps=1e-6) if qk_norm else None
        self.backend = resolve_backend(backend)

    def split_heads(self, x: torch.Tensor, norm: nn.Module | None = None) -> torch.Tensor:
        """(B, T, D) → (B, H, T, Dh); `norm` acts on each head while its Dh values are still
        contiguous: on the transposed view the qk norms cost a noticeable share of a video forward
        on CPU, and here they give bit-identical output faster (docs/BENCHMARKS.md)."""
        b, t, _ = x.shape
        x = x.view(b, t, self.num_heads, -1)
        return (x if norm is None else norm(x)).transpose(1, 2)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                bias: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, Tq, D); context: (B, Tk, Dc) or None; bias: additive (B, 1, 1|Tq, Tk) or None."""
        context = x if context is None else context
        q = self.split_heads(self.to_q(x), self.norm_q)
        k = self.split_heads(self.to_k(context), self.norm_k)
        v = self.split_heads(self.to_v(context))
        out = ATTENTION_BACKENDS[self.backend](q, k, v, bias)  # (B, H, Tq, Dh)
        return self.to_out(out.transpose(1, 2).flatten(2))  # (B, Tq, D)


def set_attention_backend(model: nn.Module, name: str) -> None:
    """Switches every `Attention` inside `model` to the kernel `name`."""
    name = resolve_backend(name)
    for module in model.modules():
        if isinstance(module, Attention):
            module.backend = name
