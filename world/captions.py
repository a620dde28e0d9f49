"""Captions in WORLD.md's grammar, their paraphrases, and the parser that reads them back.

Image grammar: `a [size] <colour> <shape> [in the <position> | at the <position>]
[on a <background> background]`. Video grammar: `a [size] <colour> <shape> [in the <position>]
[<motion>] [on a <background> background]`. A training caption may leave out size, position,
background (and, for clips, motion); the sample then simply shows whatever was drawn, so the
model learns that a left-out attribute can be anything.
"""

from __future__ import annotations

import re

from .scene import ImageSpec, as_rng
from .video_scene import DEFAULT_START, VideoSpec
from .vocab import BACKGROUNDS, COLOURS, MOTIONS, POSITIONS, SHAPES, SIZES

OPTIONAL_IMAGE_ATTRIBUTES = ("size", "position", "background")
OPTIONAL_VIDEO_ATTRIBUTES = ("size", "position", "motion", "background")


def _choice(words) -> str:
    """Regex alternation of `words`, longest first so 'top left' wins over 'top'."""
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


_IMAGE_GRAMMAR = re.compile(
    rf"a (?:(?P<size>{_choice(SIZES)}) )?(?P<colour>{_choice(COLOURS)}) (?P<shape>{_choice(SHAPES)})"
    rf"(?: (?:in|at) the (?P<position>{_choice(POSITIONS)}))?"
    rf"(?: on a (?P<background>{_choice(BACKGROUNDS)}) background)?")
_VIDEO_GRAMMAR = re.compile(
    rf"a (?:(?P<size>{_choice(SIZES)}) )?(?P<colour>{_choice(COLOURS)}) (?P<shape>{_choice(SHAPES)})"
    rf"(?: in the (?P<position>{_choice(POSITIONS)}))?"
    rf"(?: (?P<motion>{_choice(MOTIONS)}))?"
    rf"(?: on a (?P<background>{_choice(BACKGROUNDS)}) background)?")


# ---------------------------------------------------------------------------- writing

def stated_attributes(spec, rng, drop_prob: float, optional: tuple[str, ...]) -> dict[str, str]:
    """The spec's attributes that a caption will state: colour and shape always, each optional
    one kept with probability 1 - drop_prob (all of them without an rng)."""
    attrs = {k: v for k, v in spec.as_dict().items() if v is not None}
    for name in optional:
        if name in attrs and rng is not None and rng.random() < drop_prob:
            del attrs[name]
    return attrs


def canonical_caption(attrs: dict[str, str], preposition: str = "in") -> str:
    """The grammar's wording of `attrs` (colour, shape; optional size, position, motion,
    background): e.g. 'a large red circle in the top left on a white background'."""
    words = ["a"]
    if "size" in attrs:
        words.append(attrs["size"])
    words += [attrs["colour"], attrs["shape"]]
    if "position" in attrs:
        words += [preposition, "the", attrs["position"]]
    if "motion" in attrs:
        words.append(attrs["motion"])
    if "background" in attrs:
        words += ["on a", attrs["background"], "background"]
    return " ".join(words)


def paraphrases(attrs: dict[str, str], preposition: str = "in") -> list[str]:
    """Wordings of the same image attributes; the canonical one first, no duplicates.

    e.g. 'a red circle, large, top left, white background' or
    'a white background with a large red circle in the top left'.
    """
    size = f"{attrs['size']} " if "size" in attrs else ""
    obj = f"a {size}{attrs['colour']} {attrs['shape']}"
    where = f" {preposition} the {attrs['position']}" if "position" in attrs else ""
    listed = ", ".join([f"a {attrs['colour']} {attrs['shape']}"]
                       + [attrs[k] for k in ("size", "position") if k in attrs]
                       + ([f"{attrs['background']} background"] if "background" in attrs else []))
    options = [canonical_caption(attrs, preposition), listed]
    if "background" in attrs:
        options.append(f"a {attrs['background']} background with {obj}{where}")
        if where:
            options.append(f"{obj} on a {attrs['background']} background,{where}")
    return list(dict.fromkeys(options))


def caption(spec: ImageSpec, rng=None, paraphrase: bool = False, drop_prob: float = 0.3) -> str:
    """A caption of an image spec.

    Without an rng: the full canonical caption. With an rng (numpy Generator or seed): size,
    position and background are each left out with probability `drop_prob`, the preposition is
    'in' or 'at', and with `paraphrase` the wording is drawn from `paraphrases` (canonical
    included).
    """
    rng = None if rng is None else as_rng(rng)
    attrs = stated_attributes(spec, rng, drop_prob, OPTIONAL_IMAGE_ATTRIBUTES)
    preposition = "in" if rng is None or rng.random() < 0.5 else "at"
    if not paraphrase or rng is None:
        return canonical_caption(attrs, preposition)
    options = paraphrases(attrs, preposition)
    return options[int(rng.integers(len(options)))]


def video_caption(spec: VideoSpec, rng=None, drop_prob: float = 0.3) -> str:
    """A caption of a clip; without an rng every attribute the spec has is stated, e.g.
    'a small red square in the right moving left on a black background'."""
    rng = None if rng is None else as_rng(rng)
    return canonical_caption(stated_attributes(spec, rng, drop_prob, OPTIONAL_VIDEO_ATTRIBUTES))


# ---------------------------------------------------------------------------- reading

def _parse(text: str, grammar: re.Pattern, kind: str) -> dict[str, str]:
    normalised = " ".join(str(text).lower().split())
    match = grammar.fullmatch(normalised)
    if match is None:
        raise ValueError(f"not a canonical Shapes World {kind} caption: {text!r}")
    return {k: v for k, v in match.groupdict().items() if v is not None}


def parse_caption(text: str) -> dict[str, str]:
    """The attributes a canonical image caption states (left-out ones absent).

    'a large red circle at the top left' -> {'size': 'large', 'colour': 'red',
    'shape': 'circle', 'position': 'top left'}. Raises ValueError outside the grammar.
    """
    return _parse(text, _IMAGE_GRAMMAR, "image")


def parse_video_caption(text: str) -> dict[str, str]:
    """The attributes a canonical video caption states, motion included when given."""
    return _parse(text, _VIDEO_GRAMMAR, "video")


def first_frame_caption(text: str) -> str:
    """The image caption of a clip caption's first frame: the motion dropped, the start position
    stated (where the motion needs room when the clip leaves it out).

    'a red square moving left on a black background' -> 'a red square in the right on a black
    background'. Text outside the video grammar comes back unchanged.
    """
    try:
        attrs = parse_video_caption(text)
    except ValueError:
        return text
    motion = attrs.pop("motion", None)
    if motion is not None and "position" not in attrs:
        attrs["position"] = DEFAULT_START[motion]
    return canonical_caption(attrs)
