"""Reading a pipeline folder's `model_index.json`, and saying in one line why a folder did not load."""

from __future__ import annotations

import json
from pathlib import Path

from .errors import UserError


def read_model_index(path: Path) -> dict:
    """The folder's model_index.json as a dict; UserError when the path is not a pipeline folder."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"model path not found: {path}")
    if not path.is_dir() or not (path / "model_index.json").is_file():
        raise UserError(f"not a checkpoint folder (no model_index.json): {path}")
    try:
        return json.loads((path / "model_index.json").read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"model_index.json in {path} is not valid JSON: {err}") from None


def load_error(path: Path, err: Exception) -> UserError:
    """A loader's failure (corrupt safetensors, missing subfolder, bad config …) as one line."""
    first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
    return UserError(f"could not load the model in {path}: {type(err).__name__}: {first_line}")
