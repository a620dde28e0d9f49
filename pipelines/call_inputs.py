"""Checks of the call arguments every ditkit pipeline shares (prompts, steps, guidance, sizes,
output type): one `UserError` naming the bad value, worded the same in t2i and t2v."""

from __future__ import annotations

from .errors import UserError


def prompt_lists(prompt, negative_prompt=None) -> tuple[list[str], list[str] | None]:
    """A prompt or list of prompts → (prompts, negatives or None), negatives one per prompt."""
    prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    negatives = None
    if negative_prompt is not None:
        negatives = [negative_prompt] * len(prompts) if isinstance(negative_prompt, str) else list(negative_prompt)
    return prompts, negatives


def check_prompts(prompts: list, negatives: list | None = None) -> None:
    for p in prompts:
        if not isinstance(p, str) or not p.strip():
            raise UserError(f"empty prompt: {p!r}")
    if negatives is not None and len(negatives) != len(prompts):
        raise UserError(f"got {len(negatives)} negative prompts for {len(prompts)} prompts")


def check_steps_and_guidance(num_inference_steps, guidance_scale) -> None:
    if not isinstance(num_inference_steps, int) or isinstance(num_inference_steps, bool) or num_inference_steps <= 0:
        raise UserError(f"num_inference_steps must be a positive integer, got {num_inference_steps!r}")
    if guidance_scale < 0:
        raise UserError(f"guidance_scale must be >= 0, got {guidance_scale}")


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
