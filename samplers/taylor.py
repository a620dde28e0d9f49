"""Finite-difference forecasts of a feature over the step index (TaylorSeer, CG-Taylor).

A `Forecaster` is told the feature at the steps where it was computed (`update`) and predicts it
at a later step (`predict`). It keeps the last order+1 nodes as divided differences
f[x_n], f[x_n, x_(n-1)], … — TaylorSeer's factors Δ^i, which for evenly spaced nodes are the
backward differences divided by the spacing.

Two formulas read the same factors:
- "newton" (default): Newton's backward interpolation polynomial,
  F̂(x) = Σ_i f[x_n … x_(n-i)] · Π_(j<i) (x − x_(n-j)),
  exact for a polynomial of degree ≤ order whatever the spacing of the computed steps;
- "taylor": TaylorSeer's literal expansion F̂(x_n + k) = Σ_i Δ^i k^i / i!, with
  Δ^(i+1) = (Δ^i_new − Δ^i_old) / (spacing of the last two nodes). Equal to "newton" at order
  ≤ 1; above that it is off by lower-order terms (kept to compare with the paper).
"""

from __future__ import annotations

import math

import torch

FORMULAS = ("newton", "taylor")

Feature = torch.Tensor | tuple[torch.Tensor, ...]


def _as_tuple(value: Feature) -> tuple[torch.Tensor, ...]:
    parts = (value,) if isinstance(value, torch.Tensor) else tuple(value)
    if not parts or not all(isinstance(p, torch.Tensor) for p in parts):
        raise TypeError(f"can only forecast a tensor or a tuple of tensors, got {type(value).__name__}")
    return parts


class Forecaster:
    """Divided differences of one feature (a tensor or a tuple of tensors) up to `order`."""

    def __init__(self, order: int, formula: str = "newton"):
        self.order = order
        self.formula = formula
        self.steps: list[int] = []  # nodes, newest first (at most order + 1)
        self.factors: list[tuple[torch.Tensor, ...]] = []  # factors[i] = f[x_n … x_(n-i)], each part
        self.dtypes: tuple[torch.dtype, ...] = ()
        self.is_tuple = False

    @property
    def ready(self) -> bool:
        return bool(self.factors)

    def update(self, step: int, value: Feature) -> None:
        """Record the feature computed at `step`; a step not after the last one starts over."""
        parts = _as_tuple(value)
        stale = self.steps and step <= self.steps[0]  # a repeated or earlier step: the trajectory restarted
        if stale or (self.factors and [p.shape for p in parts] != [f.shape for f in self.factors[0]]):
            self.steps, self.factors = [], []
        self.is_tuple = not isinstance(value, torch.Tensor)
        self.dtypes = tuple(p.dtype for p in parts)
        # differences are taken in at least float32; order 0 takes none, so it keeps the value as it is
        new = [parts if self.order == 0 else tuple(p.to(torch.promote_types(p.dtype, torch.float32)) for p in parts)]
        for i in range(min(self.order, len(self.factors))):
            span = step - (self.steps[i] if self.formula == "newton" else self.steps[0])
            new.append(tuple((a - b) / span for a, b in zip(new[i], self.factors[i])))
        self.factors = new
        self.steps = [step] + self.steps[: self.order]

    def predict(self, step: int) -> Feature:
        """The feature forecast at `step`, in the dtype it was recorded in."""
        if not self.factors:
            raise RuntimeError("forecast before any update")
        out = list(self.factors[0])
        weight = 1.0
        for i in range(1, len(self.factors)):
            if self.formula == "newton":
                weight *= step - self.steps[i - 1]
            else:
                weight = (step - self.steps[0]) ** i / math.factorial(i)
            out = [o + weight * f for o, f in zip(out, self.factors[i])]
        parts = tuple(o.to(d) for o, d in zip(out, self.dtypes))
        return parts if self.is_tuple else parts[0]


class HeadForecasts:
    """Forecasters for the modules after the blocks (refine branches), one per module key, for a
    policy that skips whole steps: on a skipped step the forecast (once one exists), otherwise
    the module runs and its output is learnt."""

    def __init__(self, order: int, formula: str = "newton"):
        self.order, self.formula = order, formula
        self.by_key: dict[str, Forecaster] = {}

    def __call__(self, key: str, step: int, skip: bool, run):
        head = self.by_key.get(key)
        if skip and head is not None and head.ready:
            return head.predict(step)
        out = run()
        if not skip:
            if head is None:
                head = self.by_key[key] = Forecaster(self.order, self.formula)
            head.update(step, out)
        return out

