"""What one still image shows (`ImageSpec`), how specs are drawn, and the held-out split.

The held-out split is a fixed ~5% of the full attribute combinations
(size, colour, shape, position, background). Training never renders them, so a model's score
on them measures composition of attributes it has only seen apart. Membership comes from a
stable hash (sha256) of the combination's words, so it is the same on every machine, Python
version and run (Python's own `hash()` of strings is salted per process).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
from dataclasses import dataclass, fields

import numpy as np

from .vocab import BACKGROUNDS, COLOURS, IMAGE_ATTRIBUTES, POSITIONS, SHAPES, SIZES

SPLITS = ("train", "heldout", "any")
HELDOUT_MODULUS = 20  # one combination in ~20 is held out (~5%)


@dataclass(frozen=True)
class ImageSpec:
    """One object on a plain background: every attribute a caption can state."""

    colour: str
    shape: str
    size: str
    position: str
    background: str

    def __post_init__(self):
        for field, allowed in IMAGE_ATTRIBUTES.items():
            value = getattr(self, field)
            if value not in allowed:
                raise ValueError(f"unknown {field} {value!r}; expected one of {list(allowed)}")

    def as_dict(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def combination_key(spec: ImageSpec) -> str:
    """The full attribute tuple as text, in the fixed order that the split hashes."""
    return "|".join((spec.size, spec.colour, spec.shape, spec.position, spec.background))


def is_held_out(spec: ImageSpec) -> bool:
    """True for the fixed ~5% of combinations that training must never render."""
    digest = hashlib.sha256(combination_key(spec).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % HELDOUT_MODULUS == 0


@functools.lru_cache(maxsize=None)
def all_specs() -> tuple[ImageSpec, ...]:
    """Every combination, in vocabulary order (2 * 6 * 4 * 9 * 3 = 1296)."""
    return tuple(ImageSpec(colour=c, shape=s, size=z, position=p, background=b)
                 for z, c, s, p, b in itertools.product(SIZES, COLOURS, SHAPES, POSITIONS, BACKGROUNDS))


@functools.lru_cache(maxsize=None)
def split_specs(split: str) -> tuple[ImageSpec, ...]:
    """The combinations of one split: 'train', 'heldout' or 'any' (both)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    if split == "any":
        return all_specs()
    want_held_out = split == "heldout"
    return tuple(s for s in all_specs() if is_held_out(s) == want_held_out)


def as_rng(rng_or_seed) -> np.random.Generator:
    """A numpy Generator from a seed, a Generator (returned as is) or None (fresh entropy)."""
    return np.random.default_rng(rng_or_seed)


def sample_spec(rng, split: str = "train") -> ImageSpec:
    """One combination drawn uniformly from `split`; `rng` is a numpy Generator or a seed."""
    specs = split_specs(split)
    return specs[int(as_rng(rng).integers(len(specs)))]
