"""Start a fresh run from a trained model (the config's `init_from`).

The model is read with diffusers' own loader from a pipeline folder (its `transformer/`) or a
transformer folder. A model of the same class and config is loaded as it is: a second phase of
training (fresh optimiser, its own warm-up and decay) continues an earlier run's EMA weights —
an image model or a video model alike. For a video run, an image model is instead copied into
the video backbone by `dit.inflate`. A relative path is
taken from the current folder first, then from the repository root, so the shipped recipe's
`pipelines/models/shapes-t2i` works from anywhere.

`transplant_from` then copies, from further saved models of the same class, every module whose
weights fit as they are: a video model at coarser patches takes a finer video model's temporal
attention, text path and given-frame embedding, and keeps the image model's patch embedding.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import dit
from dit.inflate import InflateError, inflate_image_to_video

from .config import ConfigError

REPO = Path(__file__).resolve().parents[1]


def resolve_model_folder(path: str) -> Path:
    """The folder holding the image transformer's config.json and weights."""
    candidates = [Path(path)] if Path(path).is_absolute() else [Path.cwd() / path, REPO / path]
    for root in candidates:
        for folder in (root / "transformer", root):
            if (folder / "config.json").is_file():
                return folder
    raise ConfigError(f"init_from {path!r}: no image model there (looked for transformer/config.json "
                      f"or config.json under {', '.join(str(c) for c in candidates)})")


def saved_class_name(folder: Path) -> str:
    return str(json.loads((folder / "config.json").read_text(encoding="utf-8")).get("_class_name"))


def load_image_model(path: str):
    """The image backbone saved at `path` (a DiT or MultiResDiT in diffusers layout)."""
    folder = resolve_model_folder(path)
    name = saved_class_name(folder)
    cls = getattr(dit, name, None)
    if not (isinstance(cls, type) and issubclass(cls, dit.DiT)):
        raise ConfigError(f"init_from {path!r}: {folder} holds a {name!r}, not an image DiT of the dit package")
    return cls.from_pretrained(folder)


def continue_model(model, path: str, folder: Path) -> list[str]:
    """Load a saved model of the same class and config into `model` (nothing left new)."""
    saved = type(model).from_pretrained(folder)
    ours = {k: v for k, v in model.config.items() if not k.startswith("_")}
    theirs = {k: v for k, v in saved.config.items() if not k.startswith("_")}
    differ = sorted(k for k in ours if ours[k] != theirs.get(k))
    if differ:
        raise ConfigError(f"init_from {path!r}: the saved {type(model).__name__} differs from the recipe's in "
                          + ", ".join(f"{k} ({theirs.get(k)!r} vs {ours[k]!r})" for k in differ))
    model.load_state_dict(saved.state_dict())
    return []


def init_from_saved(model, path: str) -> list[str]:
    """Copy the model at `path` into `model`: one of the same class is continued, an image model
    is inflated into a video model; → parameters left at their init."""
    folder = resolve_model_folder(path)
    name = saved_class_name(folder)
    if name == type(model).__name__:
        return continue_model(model, path, folder)
    if not isinstance(model, dit.VideoDiT):
        raise ConfigError(f"init_from {path!r}: {folder} holds a {name!r}; a {type(model).__name__} run can only "
                          f"continue a saved {type(model).__name__}")
    try:
        return inflate_image_to_video(load_image_model(path), model)
    except InflateError as err:
        raise ConfigError(f"init_from {path!r} does not fit the video model: {err}") from err


def _by_module(state: dict) -> dict[str, dict]:
    """{'blocks.0.attn.to_q.weight': t, ...} → {'blocks.0.attn.to_q': {'weight': t}, ...}."""
    modules: dict[str, dict] = defaultdict(dict)
    for key, value in state.items():
        owner, _, leaf = key.rpartition(".")
        modules[owner][leaf] = value
    return modules


def transplant_from_saved(model, path: str) -> list[str]:
    """Copy into `model` each module of the same-class model at `path` whose tensors all match ours
    in name and shape (a module with any mismatch is left whole); → names of the tensors copied."""
    folder = resolve_model_folder(path)
    name = saved_class_name(folder)
    if name != type(model).__name__:
        raise ConfigError(f"transplant_from {path!r}: {folder} holds a {name!r}; a {type(model).__name__} "
                          f"can only take modules from a saved {type(model).__name__}")
    ours = _by_module(model.state_dict())
    theirs = _by_module(type(model).from_pretrained(folder).state_dict())
    fits = [m for m, tensors in theirs.items() if m in ours and ours[m].keys() == tensors.keys()
            and all(ours[m][k].shape == t.shape for k, t in tensors.items())]
    if not fits:
        raise ConfigError(f"transplant_from {path!r}: no module of {folder} fits the recipe's model")
    copied = {f"{m}.{k}" if m else k: t for m in fits for k, t in theirs[m].items()}
    model.load_state_dict(copied, strict=False)
    return sorted(copied)


def summarise_modules(tensor_names: list[str]) -> str:
    """'transformer_blocks.0.attn1.to_q.weight', 'given_embedding', … → 'transformer_blocks.0,
    given_embedding, …': each tensor's top-level module (with its index in a module list)."""
    shown: dict[str, None] = {}
    for name in tensor_names:
        parts = name.split(".")
        shown[".".join(parts[:2]) if len(parts) > 2 and parts[1].isdigit() else parts[0]] = None
    return ", ".join(shown)
