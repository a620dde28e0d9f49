"""The shipped default text-to-video model: package data under `pipelines/models/shapes-t2v`,
image first (the shipped image model draws each clip's first frame).

A checkout without it falls back to an untrained model of the shipped shape, built from a fixed
seed, and says so loudly: outputs are then noise.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from diffusers import FlowMatchEulerDiscreteScheduler

import world
from dit import VideoDiT, video_dit_config

from ..core.text_encoder import MINILM_PACKAGE, load_minilm
from ..t2i.default_model import SHIPPED_T2I, untrained_shapes_autoencoder
from ..t2i.pipeline import TextToImagePipeline
from .first_frame import FirstFrameModel
from .pipeline import TextToVideoPipeline

SHIPPED_T2V = Path(__file__).resolve().parents[1] / "models" / "shapes-t2v"

log = logging.getLogger(__name__)


def shapes_t2v_pipeline(transformer, text_max_length: int = 32, text_encoder=None, tokenizer=None, fps: int = 8,
                        shift: float = 1.0, vae=None):
    """A flow-matching `TextToVideoPipeline` around a Shapes World VideoDiT with MiniLM text
    (saved without MiniLM's weights when no encoder is passed, like `shapes_pipeline`), in pixel
    space or on per-frame latents of `vae` (an `AutoencoderKL`, saved in the folder's vae/)."""
    return TextToVideoPipeline(transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=shift),
                               text_encoder=text_encoder, tokenizer=tokenizer, vae=vae, text_max_length=text_max_length,
                               text_encoder_package=MINILM_PACKAGE, fps=fps)


def untrained_t2v():
    """A seeded, untrained text-to-video pipeline of the shipped model's shape: a latent VideoDiT
    and the Shapes World autoencoder (16 frames of 64×64)."""
    torch.manual_seed(0)
    transformer = VideoDiT(**video_dit_config("shapes"))
    text_encoder, tokenizer = load_minilm()
    return shapes_t2v_pipeline(transformer, text_encoder=text_encoder, tokenizer=tokenizer,
                               vae=untrained_shapes_autoencoder())


def load_default_t2v(image_first: bool = True):
    """The shipped text-to-video model, else the untrained stand-in with a warning.

    With `image_first` the shipped image model draws each clip's first frame (`FirstFrameModel`),
    its prompt rewritten by `world.first_frame_caption`; the two share one MiniLM.
    """
    if (SHIPPED_T2V / "model_index.json").is_file():
        pipe = TextToVideoPipeline.from_pretrained(SHIPPED_T2V)
        if image_first:
            pipe.set_first_frame_model(shipped_first_frame_model(pipe.text_encoder, pipe.tokenizer))
        return pipe
    log.warning("the shipped text-to-video model is missing from %s (package data not installed?); using an "
                "UNTRAINED VideoDiT (outputs are noise)", SHIPPED_T2V)
    return untrained_t2v()


def shipped_first_frame_model(text_encoder=None, tokenizer=None):
    """The shipped image model as a `FirstFrameModel` for Shapes World clips (None without it)."""
    if not (SHIPPED_T2I / "model_index.json").is_file():
        log.warning("no shipped image model at %s: clips are drawn by the video model alone", SHIPPED_T2I)
        return None
    shared = {"text_encoder": text_encoder, "tokenizer": tokenizer} if text_encoder is not None else {}
    return FirstFrameModel(TextToImagePipeline.from_pretrained(SHIPPED_T2I, **shared), world.first_frame_caption)
