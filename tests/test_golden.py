"""No behaviour change: the shipped models make the same image and clip for the same seed as when
the arrays in tests/data/shipped_golden.npz were stored (before the pipelines were reorganised).
The tolerance absorbs float summation order across CPUs and thread counts, not a changed sampler."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pipelines import load_default_t2i, load_default_t2v
from pipelines.t2i import SHIPPED_T2I
from pipelines.t2v import SHIPPED_T2V

GOLDEN = Path(__file__).parent / "data" / "shipped_golden.npz"
TOLERANCE = 2e-3  # of [0, 1]; a changed step, seed or decode moves pixels by tenths


@pytest.fixture(scope="module")
def golden():
    if not (SHIPPED_T2I / "model_index.json").is_file() or not (SHIPPED_T2V / "model_index.json").is_file():
        pytest.skip("the shipped models are not installed")
    return np.load(GOLDEN)


def test_shipped_image_is_unchanged(golden):
    image = load_default_t2i()("a small blue square at the bottom on a black background", num_inference_steps=8,
                               guidance_scale=4.0, generator=torch.Generator().manual_seed(3),
                               output_type="np").images
    assert image.shape == golden["image"].shape
    np.testing.assert_allclose(image, golden["image"], atol=TOLERANCE, rtol=0)


def test_shipped_clip_is_unchanged(golden):
    clip = load_default_t2v()("a large red square in the left moving right on a black background",
                              num_inference_steps=8, guidance_scale=4.0, generator=torch.Generator().manual_seed(5),
                              output_type="np").frames
    assert clip.shape == golden["clip"].shape
    np.testing.assert_allclose(clip, golden["clip"], atol=TOLERANCE, rtol=0)


def regenerate() -> None:
    """Store the arrays again — only when the shipped models are meant to change (a new model is
    shipped), never to make a failing test pass: `python -m tests.test_golden`."""
    image = load_default_t2i()("a small blue square at the bottom on a black background", num_inference_steps=8,
                               guidance_scale=4.0, generator=torch.Generator().manual_seed(3),
                               output_type="np").images
    clip = load_default_t2v()("a large red square in the left moving right on a black background",
                              num_inference_steps=8, guidance_scale=4.0, generator=torch.Generator().manual_seed(5),
                              output_type="np").frames
    np.savez_compressed(GOLDEN, image=np.asarray(image), clip=np.asarray(clip))
    print(f"wrote {GOLDEN}: image {np.asarray(image).shape}, clip {np.asarray(clip).shape}")


if __name__ == "__main__":
    regenerate()
