"""The shipped Shapes World model: installed as package data, loads through the default path, and
follows a handful of prompts (read back by the oracle). A fast smoke test, not the benchmark."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipelines.t2i.default_model import SHIPPED_T2I, load_default_t2i
from world.oracle import read_image
from tests.shipped_checks import assert_small_safetensors

PROMPTS = [
    "a large red circle in the top left on a white background",
    "a small blue square at the bottom right on a black background",
    "a large green cross in the center on a gray background",
    "a small yellow triangle in the top on a black background",
]


@pytest.fixture(scope="module")
def shipped():
    assert (SHIPPED_T2I / "model_index.json").is_file(), f"no shipped model at {SHIPPED_T2I}"
    return load_default_t2i()


def test_shipped_weights_are_small_safetensors():
    assert_small_safetensors(SHIPPED_T2I)


def test_shipped_model_is_the_trained_one(shipped):
    import json
    from pathlib import Path

    assert type(shipped.transformer).__name__ == "MultiResDiT"
    # a trained model is not at its zero-initialised output head
    assert shipped.transformer.final_layer.linear.weight.abs().sum() > 0
    # the recipe's text statistics and sigma shift came along with it
    recipe = json.loads((Path(__file__).resolve().parents[1] / "configs" / "t2i_shapes.json").read_text())
    assert shipped.scheduler.config.shift == recipe["sigma_shift"]
    assert not torch.equal(shipped.transformer.text_standardizer.std, torch.ones_like(shipped.transformer.text_standardizer.std))


def test_shipped_model_follows_prompts(shipped):
    out = shipped(PROMPTS, num_inference_steps=25, guidance_scale=4.0,
                  generator=torch.Generator().manual_seed(0), output_type="np").images
    images = (np.asarray(out) * 255).round().astype(np.uint8)
    from world.oracle import prompt_attributes

    wrong = []
    for prompt, image in zip(PROMPTS, images):
        want, got = prompt_attributes(prompt), read_image(image)
        missed = {k: (v, got.get(k)) for k, v in want.items() if got.get(k) != v}
        if missed:
            wrong.append((prompt, missed))
    # the model meets joint >= 0.85 on held-out prompts; allow one miss in four here
    assert len(wrong) <= 1, wrong
