"""ditkit backbones: diffusion transformers as diffusers `ModelMixin` + `ConfigMixin` models."""

from .attention import ATTENTION_BACKENDS, Attention, set_attention_backend
from .presets import (DIT_SIZES, SHAPES_AUTOENCODER, SHAPES_T2I_DIT, VIDEO_DIT_PRESETS, build_dit, dit_config,
                      video_dit_config)
from .multires import MultiResDiT, MultiResOutput
from .transformer import DiT, DiTBlock, DiTOutput
from .video import VideoDiT, VideoDiTBlock, VideoDiTOutput
from .attention_window3d import Window3D
from .voxel import devoxelize, grid_coordinates, voxelize
from .voxel_dit import VoxelDiT, VoxelDiTBlock, VoxelDiTOutput

__all__ = ["ATTENTION_BACKENDS", "Attention", "set_attention_backend", "DIT_SIZES", "build_dit",
           "dit_config", "DiT", "DiTBlock", "DiTOutput", "MultiResDiT", "MultiResOutput",
           "VIDEO_DIT_PRESETS", "video_dit_config", "SHAPES_T2I_DIT", "SHAPES_AUTOENCODER", "VideoDiT", "VideoDiTBlock", "VideoDiTOutput",
           "Window3D", "voxelize", "devoxelize", "grid_coordinates", "VoxelDiT", "VoxelDiTBlock", "VoxelDiTOutput"]
