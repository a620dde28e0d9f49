"""Checks of what a person (or an API client) sent, before any model is touched.

Each raises a `UserError` naming the field and the bad value; the handlers show it as a
`gr.Error`. API clients can send anything JSON holds, so nothing here trusts the widget's range.
"""

from __future__ import annotations

import math

from pipelines.errors import UserError

MAX_PROMPT_CHARS = 1000
MAX_STEPS = 200
MAX_GUIDANCE = 30.0
MAX_SEED = 2**32 - 1
MAX_SIDE = 4096
MAX_FRAMES = 1024
# the threshold knob's starting value (and the API's default): the first-block cache's own, which
# bench/cache.py chose; picking a method in the UI moves the slider to that method's default
DEFAULT_THRESHOLD = 0.1


def prompt(value, name: str = "prompt", required: bool = True) -> str | None:
    """Stripped text; an empty negative prompt means none."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise UserError(f"{name} must be text, got {value!r}")
    value = value.strip()
    if not value:
        if required:
            raise UserError(f"the {name} is empty: describe what to generate, e.g. 'a red circle'")
        return None
    if len(value) > MAX_PROMPT_CHARS:
        raise UserError(f"the {name} is {len(value)} characters long; the limit is {MAX_PROMPT_CHARS}")
    return value


def integer(name: str, value, low: int, high: int) -> int:
    """An int in [low, high]; widgets send whole numbers as floats (3.0), which are accepted."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            (isinstance(value, float) and not (math.isfinite(value) and value.is_integer())):
        raise UserError(f"{name} must be a whole number, got {value!r}")
    value = int(value)
    if not low <= value <= high:
        raise UserError(f"{name} must be between {low} and {high}, got {value}")
    return value


def number(name: str, value, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserError(f"{name} must be a number, got {value!r}")
    if not low <= value <= high:
        raise UserError(f"{name} must be between {low:g} and {high:g}, got {value:g}")
    return float(value)


def side(name: str, value) -> int | None:
    """A height or width; 0 means the model's native size (None for the pipeline). The model
    itself checks the patch grid and its own limit."""
    value = integer(name, value, 0, MAX_SIDE)
    return value or None


def frames(value) -> int | None:
    """A frame count; 0 means the model's default."""
    return integer("frames", value, 0, MAX_FRAMES) or None


def boolean(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise UserError(f"{name} must be true or false, got {value!r}")
    return value


def acceleration(method, threshold, interval, bottleneck) -> list | None:
    """The acceleration widgets → a pipeline's `acceleration` argument (None when off).

    Only the knobs the method takes are passed on: the UI keeps every knob's widget around.
    """
    from samplers import METHODS, BottleneckConfig, make_config, method_knobs

    if method not in METHODS:
        raise UserError(f"unknown acceleration method {method!r}; choose one of {', '.join(METHODS)}")
    knobs = {}
    if "threshold" in method_knobs(method):
        knobs["threshold"] = number("threshold", threshold, 0.0, 10.0)
    if "interval" in method_knobs(method):
        knobs["interval"] = integer("interval", interval, 1, MAX_STEPS)
    try:
        cache = make_config(method, **knobs)
    except ValueError as err:
        raise UserError(f"acceleration {method}: {err}") from None
    chosen = [c for c in (cache, BottleneckConfig() if boolean("bottleneck", bottleneck) else None) if c is not None]
    return chosen or None
