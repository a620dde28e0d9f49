"""The frozen autoencoder of a latent run (the config's `vae`): world pixels in, latents out.

A latent run trains the DiT / VideoDiT on `(mode - shift_factor) · scaling_factor` of a diffusers
`AutoencoderKL` — exactly the map the pipelines' VAE path inverts (`decode` divides by
`scaling_factor`, then adds `shift_factor`; `TextToVideoPipeline.encode_frames` is this map), so
the exported pipeline decodes what the model learnt to draw. Clips are encoded frame by frame
(Latte-style: an image autoencoder, no compression in time), (B, 3, F, H, W) → (B, C, F, h, w),
so VDT's given-frame masks apply to latent frames one for one.

Why the posterior's mode and not a sample: it is what the pipeline encodes given frames with, so
the clean frames a video model is shown in training are the ones it sees when continuing a clip;
it keeps a step's batch a pure function of (seed, step, rank), with no generator for the VAE; and
the Shapes World autoencoder's posterior is narrow — std 0.065 against a spread of 3.46 in the
latents at step 2000 of runs/vae_shapes (KL weight 1e-6), so a sample would add 2 % noise and
nothing else. (DiT and SD sample, for a posterior that is not narrow.)

Why encode every batch instead of caching latents: batches are rendered on the fly and never
repeat (no fixed data set to cache), and the encoder is small. Measured at one thread on the
shared 2-core machine with the 16/32/64 autoencoder of configs/vae_shapes.json: 0.075 s (light
load) to 0.2 s (loaded) for a batch of 32 64×64 images, up to a sixth of a ~1 s t2i_shapes_latent
step under the same load; 0.17-0.39 s for 4 clips of 16 frames, up to a seventh of a ~2.4 s
t2v_shapes_latent step. A fixed pre-encoded set
would win that back at the cost of the endless fresh renders; on a GPU the encode is noise.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import AutoencoderKL

from .config import ConfigError, TrainConfig

REPO = Path(__file__).resolve().parents[1]
VAE_SUBFOLDER = "vae"


def resolve_vae_folder(path: str | Path) -> Path:
    """The folder holding the autoencoder's config.json: `path` itself or its `vae/` (a pipeline
    or autoencoder run folder); a relative path is looked up from the current folder, then from
    the repository root (as `init_from` is)."""
    path = Path(path)
    candidates = [path] if path.is_absolute() else [Path.cwd() / path, REPO / path]
    for root in candidates:
        for folder in (root, root / VAE_SUBFOLDER):
            if (folder / "config.json").is_file():
                return folder
    raise ConfigError(f"vae {str(path)!r}: no autoencoder there (looked for config.json and vae/config.json "
                      f"under {', '.join(str(c) for c in candidates)}); train one with "
                      "python -m training.train_autoencoder, which writes OUT/vae")


class LatentCodec:
    """A frozen `AutoencoderKL` and the scaling the pipelines undo: pixels → model-space latents."""

    def __init__(self, vae: AutoencoderKL):
        self.vae = vae.eval().requires_grad_(False)

    @classmethod
    def from_folder(cls, path: str | Path) -> "LatentCodec":
        """The autoencoder saved at `path` (see `resolve_vae_folder`); only `AutoencoderKL` folders."""
        folder = resolve_vae_folder(path)
        kind = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("_class_name")
        if kind != "AutoencoderKL":
            raise ConfigError(f"vae {str(path)!r}: {folder} holds a {kind!r}, not an AutoencoderKL")
        return cls(AutoencoderKL.from_pretrained(folder, use_safetensors=True))

    def to(self, device) -> "LatentCodec":
        self.vae.to(device)
        return self

    @property
    def channels(self) -> int:
        """Latent channels: the DiT's in_channels."""
        return self.vae.config.latent_channels

    @property
    def downsampling(self) -> int:
        """Pixels per latent cell along a side (the pipelines' `vae_scale_factor`)."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def scaling_factor(self) -> float:
        return float(self.vae.config.scaling_factor)

    @property
    def shift_factor(self) -> float:
        return float(self.vae.config.get("shift_factor") or 0.0)

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W) → (B, C, h, w), or clips (B, 3, F, H, W) → (B, C, F, h, w) frame by
        frame; pixels in [-1, 1], latents `(mode - shift_factor) · scaling_factor` in float32 on
        the autoencoder's device."""
        param = next(self.vae.parameters())
        if x.ndim == 5:
            b, _, f = x.shape[:3]
            z = self.encode(x.transpose(1, 2).flatten(0, 1))                # (B·F, C, h, w)
            return z.reshape(b, f, *z.shape[1:]).transpose(1, 2).contiguous()  # (B, C, F, h, w)
        if x.ndim != 4 or x.shape[1] != self.vae.config.in_channels:
            raise ValueError(f"expected images (B, {self.vae.config.in_channels}, H, W) or clips "
                             f"(B, {self.vae.config.in_channels}, F, H, W), got shape {tuple(x.shape)}")
        z = self.vae.encode(x.to(param.device, param.dtype)).latent_dist.mode()  # (B, C, h, w)
        return ((z - self.shift_factor) * self.scaling_factor).float()


def check_latent_model(cfg: TrainConfig, codec: LatentCodec) -> None:
    """The backbone of a latent recipe must take the autoencoder's latents: in_channels = latent
    channels, sample_size = resolution / downsampling (and low_res a multiple of it); else a
    ConfigError naming the values to use."""
    kwargs, factor = cfg.model_kwargs, codec.downsampling
    problems = []
    for key in ("in_channels", "out_channels"):
        value = kwargs.get(key)
        if (key == "in_channels" or value is not None) and value != codec.channels:
            problems.append(f"model_kwargs.{key} must be the autoencoder's {codec.channels} latent channels, "
                            f"got {value!r}")
    if cfg.resolution % factor or kwargs.get("sample_size") != cfg.resolution // factor:
        problems.append(f"model_kwargs.sample_size must be resolution / {factor} (the autoencoder's downsampling) "
                        f"= {cfg.resolution / factor:g} latent cells, got {kwargs.get('sample_size')!r}")
    if cfg.low_res is not None and cfg.low_res % factor:
        problems.append(f"low_res {cfg.low_res} is not a multiple of the autoencoder's downsampling {factor}")
    if problems:
        raise ConfigError(f"vae {cfg.vae!r}: " + "; ".join(problems))
