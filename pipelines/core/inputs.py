"""The one validation of what a user asks for: pipeline calls, CLIs and the app all check here.

Every check raises a `UserError` naming the field and the bad value, worded the same wherever it
is asked from. The limits are shared too, so a value the app refuses the CLI refuses as well:
guidance must be finite, steps stay below a sane cap, sizes and frame counts are bounded.
API clients and CLI users can send anything, so nothing here trusts a widget's range.
"""

from __future__ import annotations

import math

from samplers import METHODS, BottleneckConfig, make_config, method_knobs

from .errors import UserError

MAX_PROMPT_CHARS = 1000
MAX_STEPS = 1000          # the training schedule's length: no diffusers scheduler takes more
MAX_GUIDANCE = 30.0
MAX_SEED = 2**32 - 1      # numpy's seed range, and exact in a browser's JavaScript numbers
MAX_SIDE = 4096
MAX_FRAMES = 1024
MAX_FPS = 1000.0
# the threshold knob's starting value (and the API's default): the first-block cache's own, which
# bench/cache.py chose; picking a method in the UI moves the slider to that method's default
DEFAULT_THRESHOLD = 0.1


# ---------------------------------------------------------------- scalars

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
    """A finite number in [low, high] (nan and inf are refused by name)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserError(f"{name} must be a finite number, got {value!r}")
    if not low <= value <= high:
        bounds = f">= {low:g}" if high == math.inf else f"between {low:g} and {high:g}"
        raise UserError(f"{name} must be {bounds}, got {value:g}")
    return float(value)


def boolean(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise UserError(f"{name} must be true or false, got {value!r}")
    return value


# ---------------------------------------------------------------- what a generation asks for

def prompt(value, name: str = "prompt", required: bool = True) -> str | None:
    """Stripped text; an empty optional prompt (a negative prompt) means none."""
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


def steps(value, name: str = "num_inference_steps") -> int:
    return integer(name, value, 1, MAX_STEPS)


def guidance(value, name: str = "guidance_scale") -> float:
    return number(name, value, 0.0, MAX_GUIDANCE)


def seed(value, name: str = "seed") -> int:
    return integer(name, value, 0, MAX_SEED)


def side(name: str, value) -> int | None:
    """A requested height or width; None or 0 mean the model's native size. The model itself
    checks its patch grid and its own limit (`check_side`)."""
    if value is None:
        return None
    return integer(name, value, 0, MAX_SIDE) or None


def frames(value, name: str = "num_frames") -> int | None:
    """A frame count; None or 0 mean the model's default."""
    if value is None:
        return None
    return integer(name, value, 0, MAX_FRAMES) or None


def fps(value, name: str = "fps") -> float | None:
    if value is None:
        return None
    value = number(name, value, 0.0, MAX_FPS)
    if value <= 0:
        raise UserError(f"{name} must be above 0, got {value:g}")
    return value


# ---------------------------------------------------------------- a pipeline call's arguments

def prompt_lists(prompt_or_prompts, negative_prompt=None) -> tuple[list[str], list[str] | None]:
    """A prompt or list of prompts → (prompts, negatives or None), negatives one per prompt."""
    prompts = [prompt_or_prompts] if isinstance(prompt_or_prompts, str) else list(prompt_or_prompts)
    negatives = None
    if negative_prompt is not None:
        negatives = [negative_prompt] * len(prompts) if isinstance(negative_prompt, str) else list(negative_prompt)
    return prompts, negatives


def check_prompts(prompts: list, negatives: list | None = None) -> None:
    for p in prompts:
        if not isinstance(p, str) or not p.strip():
            raise UserError(f"empty prompt: {p!r}")
        if len(p) > MAX_PROMPT_CHARS:
            raise UserError(f"a prompt is {len(p)} characters long; the limit is {MAX_PROMPT_CHARS}")
    if negatives is not None and len(negatives) != len(prompts):
        raise UserError(f"got {len(negatives)} negative prompts for {len(prompts)} prompts")


def check_steps_and_guidance(num_inference_steps, guidance_scale) -> None:
    if isinstance(num_inference_steps, float) or isinstance(num_inference_steps, bool):
        raise UserError(f"num_inference_steps must be a positive integer, got {num_inference_steps!r}")
    steps(num_inference_steps)
    guidance(guidance_scale)


def check_side(name: str, value, multiple: int, native: int, limit_factor: int = 4) -> None:
    """height / width: a positive multiple of the model's grid, at most `limit_factor` × native."""
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0 or value % multiple:
        raise UserError(f"{name} {value!r} must be a positive multiple of {multiple} (the model's patch grid)")
    if value > limit_factor * native:
        raise UserError(f"{name} {value} is beyond this model's limit of {limit_factor * native} "
                        f"({limit_factor}x its native {native})")


def check_output_type(output_type, allowed: tuple[str, ...]) -> None:
    if output_type not in allowed:
        names = ", ".join(repr(a) for a in allowed[:-1]) + f" or {allowed[-1]!r}"
        raise UserError(f"output_type must be {names}, got {output_type!r}")


# ---------------------------------------------------------------- acceleration

def acceleration(method: str, knobs: dict, bottleneck: bool, knob_names: dict[str, str] | None = None,
                 only_used: bool = False, label: str = "acceleration") -> list | None:
    """A cache method, its knobs ({"threshold": 0.1, …}, None values left out) and the bottleneck
    switch → a pipeline's `acceleration` argument (None when off). `knob_names` says how each knob
    is called where the user typed it (`--cache-threshold` on the CLI), for the error message.
    A knob the method does not take is refused, or with `only_used` dropped (the app keeps every
    knob's widget around whatever the method)."""
    knob_names = knob_names or {}
    if method not in METHODS:
        raise UserError(f"unknown {label} method {method!r}; choose one of {', '.join(METHODS)}")
    takes = method_knobs(method)
    chosen_knobs = {}
    for knob, value in knobs.items():
        if value is None:
            continue
        knob_label = knob_names.get(knob, knob)
        if knob not in takes:
            if only_used:
                continue
            listed = " ".join(knob_names.get(k, k) for k in takes) or "no knobs"
            raise UserError(f"{label} {method} takes no {knob_label} (it takes {listed})")
        chosen_knobs[knob] = (number(knob_label, value, 0.0, math.inf) if knob == "threshold"
                              else integer(knob_label, value, 1, MAX_STEPS) if knob == "interval"
                              else integer(knob_label, value, 0, 8))
    try:
        cache = make_config(method, **chosen_knobs)
    except ValueError as err:
        raise UserError(f"{label} {method}: {err}") from None
    chosen = [c for c in (cache, BottleneckConfig() if boolean("bottleneck", bottleneck) else None) if c is not None]
    return chosen or None
