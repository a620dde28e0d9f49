"""The shipped default text-to-image and text-to-video models: package data under `pipelines/models/`.

Until a trained Shapes World model is installed there, the default is an untrained model of the
intended shape, built from a fixed seed, so the CLI and README run end to end (with noise as
output) and say so.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

SHIPPED_T2I = Path(__file__).parent / "models" / "shapes-t2i"

log = logging.getLogger(__name__)


def shapes_pipeline(transformer, text_max_length: int = 32, text_encoder=None, tokenizer=None, shift: float = 1.0):
    """A flow-matching `TextToImagePipeline` around a Shapes World transformer with MiniLM text.

    Without an encoder the saved folder names MiniLM's package instead of holding its weights,
    and `from_pretrained` brings it back; the training export and the stand-in both build this.
    """
    from diffusers import FlowMatchEulerDiscreteScheduler

    from .t2i import TextToImagePipeline
    from .text_encoder import MINILM_PACKAGE

    return TextToImagePipeline(transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=shift),
                               text_encoder=text_encoder, tokenizer=tokenizer, text_max_length=text_max_length,
                               text_encoder_package=MINILM_PACKAGE)


def untrained_t2i():
    """A seeded, untrained pixel-space text-to-image pipeline (64×64, MiniLM text, flow matching)."""
    from dit import build_dit

    from .text_encoder import load_minilm

    torch.manual_seed(0)
    transformer = build_dit("DiT-Ti/4", sample_size=64, in_channels=3, condition="text", text_dim=384,
                            pooled_dim=384, adaln="single")
    text_encoder, tokenizer = load_minilm()
    return shapes_pipeline(transformer, text_encoder=text_encoder, tokenizer=tokenizer)


def load_default_t2i():
    """The shipped model if installed, else the untrained stand-in (with a warning)."""
    from .t2i import TextToImagePipeline

    if (SHIPPED_T2I / "model_index.json").is_file():
        return TextToImagePipeline.from_pretrained(SHIPPED_T2I)
    log.warning("no trained default model is installed at %s; using an UNTRAINED DiT (outputs are noise)",
                SHIPPED_T2I)
    return untrained_t2i()


# ---------------------------------------------------------------- text-to-video

SHIPPED_T2V = Path(__file__).parent / "models" / "shapes-t2v"


def shapes_t2v_pipeline(transformer, text_max_length: int = 32, text_encoder=None, tokenizer=None, fps: int = 8,
                        shift: float = 1.0):
    """A flow-matching `TextToVideoPipeline` around a Shapes World VideoDiT with MiniLM text
    (saved without MiniLM's weights when no encoder is passed, like `shapes_pipeline`)."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    from .t2v import TextToVideoPipeline
    from .text_encoder import MINILM_PACKAGE

    return TextToVideoPipeline(transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=shift),
                               text_encoder=text_encoder, tokenizer=tokenizer, text_max_length=text_max_length,
                               text_encoder_package=MINILM_PACKAGE, fps=fps)


def untrained_t2v():
    """A seeded, untrained pixel-space text-to-video pipeline of the shipped shape (16×32×32)."""
    from dit import VideoDiT, video_dit_config

    from .text_encoder import load_minilm

    torch.manual_seed(0)
    transformer = VideoDiT(**video_dit_config("shapes"))
    text_encoder, tokenizer = load_minilm()
    return shapes_t2v_pipeline(transformer, text_encoder=text_encoder, tokenizer=tokenizer)


def load_default_t2v(image_first: bool = True):
    """The shipped text-to-video model if installed, else the untrained stand-in (with a warning).

    With `image_first` the shipped image model draws each clip's first frame (`pipelines.first_frame`),
    its prompt rewritten by `world.first_frame_caption`; the two share one MiniLM.
    """
    from .t2v import TextToVideoPipeline

    if (SHIPPED_T2V / "model_index.json").is_file():
        pipe = TextToVideoPipeline.from_pretrained(SHIPPED_T2V)
        if image_first:
            pipe.set_first_frame_model(shipped_first_frame_model(pipe.text_encoder, pipe.tokenizer))
        return pipe
    log.warning("no trained default text-to-video model is installed at %s; using an UNTRAINED VideoDiT "
                "(outputs are noise)", SHIPPED_T2V)
    return untrained_t2v()


def shipped_first_frame_model(text_encoder=None, tokenizer=None):
    """The shipped image model as a `FirstFrameModel` for Shapes World clips (None without it)."""
    import world

    from .first_frame import FirstFrameModel
    from .t2i import TextToImagePipeline

    if not (SHIPPED_T2I / "model_index.json").is_file():
        log.warning("no shipped image model at %s: clips are drawn by the video model alone", SHIPPED_T2I)
        return None
    shared = {"text_encoder": text_encoder, "tokenizer": tokenizer} if text_encoder is not None else {}
    return FirstFrameModel(TextToImagePipeline.from_pretrained(SHIPPED_T2I, **shared), world.first_frame_caption)
