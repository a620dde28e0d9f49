"""ditkit backbones: diffusion transformers as diffusers `ModelMixin` + `ConfigMixin` models."""

from .attention import ATTENTION_BACKENDS, Attention, set_attention_backend
from .presets import DIT_SIZES, build_dit, dit_config
from .multires import MultiResDiT, MultiResOutput
from .transformer import DiT, DiTBlock, DiTOutput

__all__ = ["ATTENTION_BACKENDS", "Attention", "set_attention_backend", "DIT_SIZES", "build_dit",
           "dit_config", "DiT", "DiTBlock", "DiTOutput", "MultiResDiT", "MultiResOutput"]
