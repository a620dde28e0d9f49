"""Turns a `--model` path into a ready `TextToImagePipeline`, whatever wrote the folder.

Accepted: a ditkit pipeline folder (ours, `save_pretrained`), and diffusers pipeline folders
of `PixArtAlphaPipeline` / `PixArtSigmaPipeline` / `DiTPipeline`, whose transformer is
converted into a ditkit DiT (so ditkit's acceleration applies) while their text encoder, VAE
and scheduler are loaded by diffusers/transformers as they are. Weights: safetensors only.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .errors import UserError

FOREIGN_TEXT_MAX_LENGTH = {"PixArtAlphaPipeline": 120, "PixArtSigmaPipeline": 300}


def read_model_index(path: Path) -> dict:
    if not path.exists():
        raise UserError(f"model path not found: {path}")
    if not path.is_dir() or not (path / "model_index.json").is_file():
        raise UserError(f"not a checkpoint folder (no model_index.json): {path}")
    try:
        return json.loads((path / "model_index.json").read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"model_index.json in {path} is not valid JSON: {err}") from None


def load_t2i_pipeline(path: str | Path | None = None, device: str = "cpu", dtype: torch.dtype = torch.float32):
    """The pipeline stored at `path` (None: the shipped default) on `device` in `dtype`."""
    from .default_model import load_default_t2i
    from .t2i import TextToImagePipeline

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
            first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise UserError(f"could not load the model in {path}: {type(err).__name__}: {first_line}") from None
    return pipe.to(device=device, dtype=dtype)


def convert_diffusers_pipeline(path: Path, index: dict):
    """A diffusers PixArt/DiT pipeline folder → TextToImagePipeline with a converted transformer."""
    import diffusers

    from dit.convert_diffusers import dit_from_diffusers, pixart_from_diffusers

    from .t2i import TextToImagePipeline

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
