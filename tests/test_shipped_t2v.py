"""The shipped Shapes World text-to-video model: installed as package data, loads through the
default path, and follows a handful of prompts — motion included (read back by the video oracle).
A fast smoke test, not the benchmark (`bench/t2v.py`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pipelines.t2v.default_model import SHIPPED_T2V, load_default_t2v
from world.video_oracle import read_video, video_prompt_attributes
from tests.shipped_checks import assert_small_safetensors

PROMPTS = [
    "a large red square in the left moving right on a black background",
    "a large blue circle in the top moving down on a white background",
    "a large green cross in the center spinning on a gray background",
    "a small yellow circle in the center growing on a black background",
]


@pytest.fixture(scope="module")
def shipped():
    assert (SHIPPED_T2V / "model_index.json").is_file(), f"no shipped model at {SHIPPED_T2V}"
    return load_default_t2v()


def test_shipped_weights_are_small_safetensors():
    assert_small_safetensors(SHIPPED_T2V)


def test_shipped_model_is_the_trained_one(shipped):
    recipe = json.loads((Path(__file__).resolve().parents[1] / "configs" / "t2v_shapes_fast.json").read_text())
    assert type(shipped.transformer).__name__ == "VideoDiT"
    assert shipped.transformer.config.num_frames == recipe["num_frames"]
    for key in ("patch_size", "branch_channels", "interpolation_scale"):
        assert shipped.transformer.config[key] == recipe["model_kwargs"][key], key
    assert shipped.scheduler.config.shift == recipe["sigma_shift"]
    # inflation from the image model starts each temporal-attention gate (row 5 of the block's
    # modulation table) at zero; training is what opens it
    for block in shipped.transformer.transformer_blocks:
        assert block.scale_shift_table[5].abs().sum() > 0


def misses_of(pipe, **kwargs) -> dict:
    out = pipe(PROMPTS, num_inference_steps=25, guidance_scale=4.0, generator=torch.Generator().manual_seed(0),
               output_type="np", **kwargs).frames
    clips = (np.asarray(out) * 255).round().astype(np.uint8)
    misses = {}
    for prompt, clip in zip(PROMPTS, clips):
        want, got = video_prompt_attributes(prompt), read_video(clip)
        for key, value in want.items():
            if got.get(key) != value:
                misses.setdefault(key, []).append((prompt, value, got.get(key)))
    return misses


def test_shipped_model_follows_prompts(shipped):
    """The shipped pipeline: the shipped image model draws each first frame, the video model moves it."""
    assert shipped.first_frame_model is not None
    misses = misses_of(shipped)
    # held out, image-first clips read colour, size, position and background 1.00, shape and motion
    # 0.9 or more (docs/BENCHMARKS.md): one miss in four allowed for shape and for motion
    for key in ("colour", "size", "position", "background"):
        assert key not in misses, misses[key]
    assert len(misses.get("shape", [])) <= 1, misses["shape"]
    assert len(misses.get("motion", [])) <= 1, misses["motion"]


def test_shipped_video_model_alone_follows_prompts(shipped):
    misses = misses_of(shipped, image_first=False)
    # the video model alone (bench/t2v.py --first-frame-model none, 32 prompts a split) reads colour
    # and background 1.00, position 0.94-1.00 and motion 0.81 (docs/BENCHMARKS.md): colour and
    # background must hold here, position and motion with one miss in four allowed. Its shape read
    # is 0.25-0.34 (image-first is what draws shapes), so shape is not asserted per prompt.
    for key in ("colour", "background"):
        assert key not in misses, misses[key]
    for key in ("position", "motion"):
        assert len(misses.get(key, [])) <= 1, misses[key]
