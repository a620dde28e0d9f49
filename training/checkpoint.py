"""Atomic training checkpoints in `OUT/checkpoint/`, and resuming from them.

Layout (written into a temporary folder, then swapped in by `atomic_dir.swap_in`, so a kill at
any moment leaves the previous or the new checkpoint, never a half-written one):

    model.safetensors      trained weights
    ema.safetensors        EMA weights
    optimizer.pt           {"optimizer": AdamW state, "lr_scheduler": LambdaLR state}  (torch.save)
    rng.pt                 torch / python RNG states (the step's data and noise are re-derived
                           from (seed, step), so these matter only for code outside that scheme)
    state.json             {"step", "elapsed", "config"} — written last: its presence marks a
                           complete checkpoint

Everything `torch.save`d is loaded back with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from pipelines.core.atomic import recover, swap_in, temp_dir_for

CHECKPOINT = "checkpoint"


def _state_for_safetensors(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}


def save_checkpoint(out_dir: str | Path, model: torch.nn.Module, ema_model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer, lr_scheduler, state: dict) -> Path:
    """Write a complete checkpoint to `out_dir/checkpoint/` atomically; returns its path."""
    final = Path(out_dir) / CHECKPOINT
    tmp = temp_dir_for(final)
    save_file(_state_for_safetensors(model), tmp / "model.safetensors")
    save_file(_state_for_safetensors(ema_model), tmp / "ema.safetensors")
    torch.save({"optimizer": optimizer.state_dict(), "lr_scheduler": lr_scheduler.state_dict()},
               tmp / "optimizer.pt")
    rng = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    torch.save(rng, tmp / "rng.pt")
    (tmp / "state.json").write_text(json.dumps(state, indent=1), encoding="utf-8")  # last: marks complete
    swap_in(tmp, final)
    return final


def find_checkpoint(out_dir: str | Path) -> Path | None:
    """The complete checkpoint under `out_dir`, or None (repairs an interrupted save first)."""
    final = Path(out_dir) / CHECKPOINT
    if not final.parent.is_dir():
        return None
    recover(final, complete_marker="state.json")
    return final if (final / "state.json").is_file() else None


def read_state(path: str | Path) -> dict:
    """The checkpoint's state.json: step, elapsed seconds, the config it was trained with."""
    return json.loads((Path(path) / "state.json").read_text(encoding="utf-8"))


def load_weights(path: str | Path, module: torch.nn.Module, name: str = "ema") -> None:
    """Load `model` or `ema` weights (strictly) from a checkpoint folder."""
    module.load_state_dict(load_file(Path(path) / f"{name}.safetensors"))


def load_checkpoint(path: str | Path, model: torch.nn.Module, ema_model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer, lr_scheduler) -> dict:
    """Restore weights, EMA, optimiser, lr schedule and RNG from `path`; returns its state.json."""
    path = Path(path)
    load_weights(path, model, "model")
    load_weights(path, ema_model, "ema")
    opt = torch.load(path / "optimizer.pt", weights_only=True)
    optimizer.load_state_dict(opt["optimizer"])
    lr_scheduler.load_state_dict(opt["lr_scheduler"])
    rng = torch.load(path / "rng.pt", weights_only=True)
    torch.set_rng_state(rng["torch"])
    random.setstate(_as_python_rng_state(rng["python"]))
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    return read_state(path)


def _as_python_rng_state(state) -> tuple:
    """random.setstate needs tuples; a round trip may hand back lists."""
    version, internal, gauss = state
    return version, tuple(internal), gauss
