"""The shipped default text-to-image model: package data under `pipelines/models/shapes-t2i`.

A checkout without it (a build that left package data out) falls back to an untrained model of
the shipped shape, built from a fixed seed, and says so loudly: outputs are then noise.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler

from dit import SHAPES_AUTOENCODER, SHAPES_T2I_DIT, DiT

from ..core.text_encoder import MINILM_PACKAGE, load_minilm
from .pipeline import TextToImagePipeline

SHIPPED_T2I = Path(__file__).resolve().parents[1] / "models" / "shapes-t2i"

log = logging.getLogger(__name__)


def shapes_pipeline(transformer, text_max_length: int = 32, text_encoder=None, tokenizer=None, shift: float = 1.0,
                    vae=None):
    """A flow-matching `TextToImagePipeline` around a Shapes World transformer with MiniLM text,
    in pixel space, or in the latent space of `vae` (an `AutoencoderKL`, saved in the folder's vae/).

    Without an encoder the saved folder names MiniLM's package instead of holding its weights,
    and `from_pretrained` brings it back; the training export and the stand-in both build this.
    """
    return TextToImagePipeline(transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=shift),
                               text_encoder=text_encoder, tokenizer=tokenizer, vae=vae, text_max_length=text_max_length,
                               text_encoder_package=MINILM_PACKAGE)


def untrained_shapes_autoencoder() -> AutoencoderKL:
    """The Shapes World autoencoder's architecture, untrained (64×64×3 → 16×16×4)."""
    return AutoencoderKL(**SHAPES_AUTOENCODER)


def untrained_t2i():
    """A seeded, untrained text-to-image pipeline of the shipped model's shape: a latent DiT and
    the Shapes World autoencoder (64×64, MiniLM text, flow matching)."""
    torch.manual_seed(0)
    transformer = DiT(**SHAPES_T2I_DIT)
    text_encoder, tokenizer = load_minilm()
    return shapes_pipeline(transformer, text_encoder=text_encoder, tokenizer=tokenizer,
                           vae=untrained_shapes_autoencoder())


def load_default_t2i(**components):
    """The shipped model (with `components` passed to `from_pretrained`, e.g. a shared text
    encoder), else the untrained stand-in with a warning."""
    if (SHIPPED_T2I / "model_index.json").is_file():
        return TextToImagePipeline.from_pretrained(SHIPPED_T2I, **components)
    log.warning("the shipped text-to-image model is missing from %s (package data not installed?); "
                "using an UNTRAINED DiT (outputs are noise)", SHIPPED_T2I)
    return untrained_t2i()
