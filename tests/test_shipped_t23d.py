"""The shipped Shapes World text-to-3D model: installed as package data, loads through the default
path, and follows a handful of prompts (read back by `world.reader3d`: nearest template by
Chamfer distance for shape and proportion, median colour). A fast smoke test, not the benchmark
(`python -m bench.t23d`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pipelines.t23d.default_model import SHIPPED_T23D, load_default_t23d
from world.reader3d import read_shape3d
from world.shapes3d import parse_caption3d, sample_shape3d
from tests.shipped_checks import assert_small_safetensors

PROMPTS = [
    "a tall red cone",
    "a wide blue cylinder",
    "a green torus",
    "a yellow cube",
    "a tall magenta pyramid",
    "a wide cyan sphere",
]

# What the shipped model gets on these six prompts (25 steps, CFG 4, seed 0, 2048 points) —
# measured 2026-12-03 (step 4500 of configs/t23d_shapes.json): colour 6/6; shape 3/6 (the cylinder
# reads sphere, the cube cylinder, the pyramid cone); proportion 4/6 (the torus and the cube read
# wide); 2 prompts all right (the cone, the sphere); no cloud clean (Chamfer 0.020-0.050 against a
# world sample's 0.003). The limits are those figures; issue 24's targets are far above them.
MAX_MISSES = {"shape": 3, "proportion": 2, "colour": 0}
MIN_ALL_RIGHT = 2


@pytest.fixture(scope="module")
def shipped():
    assert (SHIPPED_T23D / "model_index.json").is_file(), f"no shipped model at {SHIPPED_T23D}"
    return load_default_t23d()


def test_shipped_weights_are_small_safetensors():
    assert_small_safetensors(SHIPPED_T23D)


def test_shipped_model_is_the_trained_one(shipped):
    recipe = json.loads((Path(__file__).resolve().parents[1] / "configs" / "t23d_shapes.json").read_text())
    assert type(shipped.transformer).__name__ == recipe["model"] == "VoxelDiT"
    for key in ("sample_size", "patch_size", "in_channels", "hidden_size", "depth", "window_size"):
        assert shipped.transformer.config[key] == recipe["model_kwargs"][key], key
    assert shipped.is_coloured
    # trained: the zero-initialised output layer has moved, the recipe's sigma shift and the
    # caption statistics of text standardisation came along
    last = shipped.transformer.point_head[-1] if shipped.transformer.point_head is not None \
        else shipped.transformer.final_layer.linear
    assert last.weight.abs().sum() > 0
    assert shipped.scheduler.config.shift == recipe["sigma_shift"]
    std = shipped.transformer.text_standardizer.std
    assert not torch.equal(std, torch.ones_like(std))


def shortfalls(prompts: list[str], clouds, colours) -> list[str]:
    """Every limit above that these clouds break (empty: none)."""
    wanted = [parse_caption3d(p) for p in prompts]
    readings = [read_shape3d(c, k) for c, k in zip(clouds, colours)]
    problems = []
    for key, most in MAX_MISSES.items():
        bad = [(p, getattr(w, key), getattr(r, key)) for p, w, r in zip(prompts, wanted, readings)
               if not (key == "colour" and w.colour is None) and getattr(r, key) != getattr(w, key)]
        if len(bad) > most:
            problems.append(f"{key} wrong in {len(bad)} > {most}: {bad}")
    all_right = sum(r.matches(w) for r, w in zip(readings, wanted))
    if all_right < MIN_ALL_RIGHT:
        problems.append(f"{all_right} prompts all right < {MIN_ALL_RIGHT}")
    return problems


def test_shipped_model_follows_prompts(shipped):
    out = shipped(PROMPTS, num_inference_steps=25, guidance_scale=4.0, generator=torch.Generator().manual_seed(0),
                  output_type="np")
    problems = shortfalls(PROMPTS, out.points, out.colours)
    assert not problems, problems


def test_the_limits_fail_on_noise_and_pass_the_world_samples():
    """The check can fail: Gaussian blobs in grey break it; the world's own samples of the prompts pass."""
    rng = np.random.default_rng(0)
    blobs = [rng.normal(size=(2048, 3)) for _ in PROMPTS]
    assert shortfalls(PROMPTS, blobs, [np.full((2048, 3), 0.5) for _ in PROMPTS])
    samples = [sample_shape3d(p, rng=i, num_points=2048) for i, p in enumerate(PROMPTS)]
    assert not shortfalls(PROMPTS, [s.points for s in samples], [s.colours for s in samples])
