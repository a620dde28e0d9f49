"""What every shipped model folder must be: safetensors weights only, within the 30 MB budget."""

from __future__ import annotations

from pathlib import Path

MAX_BYTES = 30 * 2**20


def assert_small_safetensors(folder: Path) -> None:
    weights = list(folder.rglob("*.safetensors"))
    assert weights, f"the shipped model at {folder} must hold safetensors weights"
    assert not list(folder.rglob("*.bin")) and not list(folder.rglob("*.pt"))
    assert sum(w.stat().st_size for w in folder.rglob("*") if w.is_file()) <= MAX_BYTES
