"""Turns a `--model` path into a ready `T23DPipeline`: a ditkit text-to-3D folder (`save_pretrained`,
the training export), or the shipped default when no path is given. Weights: safetensors only."""

from __future__ import annotations

from pathlib import Path

import torch

from ..core.errors import UserError
from ..core.model_index import load_error, read_model_index
from .default_model import load_default_t23d
from .pipeline import T23DPipeline


def load_t23d_pipeline(path: str | Path | None = None, device: str = "cpu", dtype: torch.dtype = torch.float32):
    """The pipeline stored at `path` (None: the shipped default) on `device` in `dtype`; a
    `UserError` in one line for a missing folder, another pipeline's folder or unreadable weights."""
    if path is None:
        pipe = load_default_t23d()
    else:
        path = Path(path)
        kind = read_model_index(path).get("_class_name")
        if kind != "T23DPipeline":
            raise UserError(f"unsupported pipeline {kind!r} in {path}; ditkit's t23d loads T23DPipeline folders "
                            f"(e.g. a training run's pipeline/ from configs/t23d_shapes.json)")
        try:
            pipe = T23DPipeline.from_pretrained(path)
        except Exception as err:  # corrupted safetensors, missing subfolders, bad configs …
            raise load_error(path, err) from None
    return pipe.to(device=device, dtype=dtype)
