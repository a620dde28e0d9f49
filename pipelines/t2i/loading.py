"""Turns a `--model` path into a ready `TextToImagePipeline`, whatever wrote the folder.

Accepted: a ditkit pipeline folder (ours, `save_pretrained`), and diffusers pipeline folders
of `PixArtAlphaPipeline` / `PixArtSigmaPipeline` / `DiTPipeline`, whose transformer is
converted into a ditkit DiT (so ditkit's acceleration applies) while their text encoder, VAE
and scheduler are loaded by diffusers/transformers as they are. Weights: safetensors only.
"""

from __future__ import annotations

from pathlib import Path

import diffusers
import torch

from dit.convert_diffusers import dit_from_diffusers, pixart_from_diffusers

from ..core.errors import UserError
from ..core.model_index import load_error, read_model_index
from .default_model import load_default_t2i
from .pipeline import TextToImagePipeline

FOREIGN_TEXT_MAX_LENGTH = {"PixArtAlphaPipeline": 120, "PixArtSigmaPipeline": 300}


def load_t2i_pipeline(path: str | Path | None = None, device: str = "cpu", dtype: torch.dtype = torch.float32):
    """The pipeline stored at `path` (None: the shipped default) on `device` in `dtype`."""
    if path is None:
        pipe = load_default_t2i()
    else:
        path = Path(path)
        index = read_model_index(path)
        kind = index.get("_class_name")
        try:
            if kind == "TextToImagePipeline":
                pipe = TextToImagePipeline.from_pretrained(path)
            elif kind in ("PixArtAlphaPipeline", "PixArtSigmaPipeline", "DiTPipeline"):
                pipe = convert_diffusers_pipeline(path, index)
            else:
                raise UserError(f"unsupported pipeline {kind!r} in {path}; ditkit's t2i loads "
                                "TextToImagePipeline, PixArtAlphaPipeline, PixArtSigmaPipeline and DiTPipeline folders")
        except UserError:
            raise
        except Exception as err:  # corrupted safetensors, missing subfolders, bad configs …
            raise load_error(path, err) from None
    return pipe.to(device=device, dtype=dtype)


def convert_diffusers_pipeline(path: Path, index: dict):
    """A diffusers PixArt/DiT pipeline folder → TextToImagePipeline with a converted transformer."""
    kind = index["_class_name"]
    source = getattr(diffusers, kind).from_pretrained(path, use_safetensors=True)
    if kind == "DiTPipeline":
        transformer = dit_from_diffusers(source.transformer)
        id2label = index.get("id2label")
        return TextToImagePipeline(transformer=transformer, scheduler=source.scheduler, vae=source.vae,
                                   id2label=id2label)
    transformer = pixart_from_diffusers(source.transformer)
    return TextToImagePipeline(transformer=transformer, scheduler=source.scheduler, vae=source.vae,
                               text_encoder=source.text_encoder, tokenizer=source.tokenizer,
                               text_max_length=FOREIGN_TEXT_MAX_LENGTH[kind])
