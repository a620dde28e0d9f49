"""The shipped Shapes World text-to-video model: installed as package data, loads through the
default path, and follows a handful of prompts — motion included (read back by the strict reader,
`world.read_video`: the shape in every frame, what a person sees). A fast smoke test, not the
benchmark (`python -m bench.t2v`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pipelines.t2v.default_model import SHIPPED_T2V, load_default_t2v
from world import read_video
from world.video_oracle import video_prompt_attributes
from tests.shipped_checks import assert_small_safetensors

PROMPTS = [
    "a large red square in the left moving right on a black background",
    "a large blue circle in the top moving down on a white background",
    "a large green cross in the center spinning on a gray background",
    "a small yellow circle in the center growing on a black background",
]

# What the shipped models get on these four prompts (25 steps, CFG 4, seed 0), read strictly —
# measured 2026-12-03 (issue 21). No clip holds its shape in 90 % of its frames (shape 0/4 either
# way: squares and circles smear into blobs, the cross breaks up), so the shape is held to the share
# of frames that show it. Image-first: background, colour, size and position 4/4, motion 3/4 (the
# spinning cross reads growing); the prompt's shape in 0.23 of frames, template IoU 0.55 per
# frame, background noise 17.5 (RMS, 0-255), 3 of 64 frames clean. The video model alone:
# background and colour 4/4, size, position and motion 3/4 each; shape in 0.25 of frames, IoU
# 0.58, noise 17.4, no clean frame. The limits are those figures (shares and IoU with 0.02, noise
# with 0.5 to spare for another machine's float sums); issue 22 fixes the models and raises them.
LIMITS = {
    "image-first": {"misses": {"background": 0, "colour": 0, "size": 0, "position": 0, "motion": 1, "shape": 4},
                    "shape_frames": 0.21, "template_iou": 0.53, "noise": 18.0, "clean_frames": 3},
    "video model alone": {"misses": {"background": 0, "colour": 0, "size": 1, "position": 1, "motion": 1, "shape": 4},
                          "shape_frames": 0.23, "template_iou": 0.56, "noise": 18.0, "clean_frames": 0},
}


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


def clips_of(pipe, **kwargs) -> np.ndarray:
    out = pipe(PROMPTS, num_inference_steps=25, guidance_scale=4.0, generator=torch.Generator().manual_seed(0),
               output_type="np", **kwargs).frames
    return (np.asarray(out) * 255).round().astype(np.uint8)


def shortfalls(clips, limits: dict) -> list[str]:
    """Every limit of `limits` (a `LIMITS` entry) that these clips break, read strictly (empty: none)."""
    readings = [read_video(clip) for clip in clips]
    wanted = [video_prompt_attributes(p) for p in PROMPTS]
    problems = []
    for key, most in limits["misses"].items():
        bad = [(p, w[key], r[key]) for p, w, r in zip(PROMPTS, wanted, readings) if key in w and r[key] != w[key]]
        if len(bad) > most:
            problems.append(f"{key} wrong in {len(bad)} > {most}: {bad}")
    shape_frames = float(np.mean([r.shape_share(w["shape"]) for w, r in zip(wanted, readings)]))
    iou = float(np.mean([i for r in readings for i in r.frame_iou]))
    noise = float(np.mean([n for r in readings for n in r.frame_noise]))
    clean = sum(c for r in readings for c in r.frame_clean)
    if shape_frames < limits["shape_frames"]:
        problems.append(f"prompt's shape in {shape_frames:.3f} of frames < {limits['shape_frames']}")
    if iou < limits["template_iou"]:
        problems.append(f"template IoU {iou:.3f} < {limits['template_iou']}")
    if noise > limits["noise"]:
        problems.append(f"background noise {noise:.2f} > {limits['noise']}")
    if clean < limits["clean_frames"]:
        problems.append(f"{clean} clean frames < {limits['clean_frames']}")
    return problems


def test_shipped_model_follows_prompts(shipped):
    """The shipped pipeline: the shipped image model draws each first frame, the video model moves it."""
    assert shipped.first_frame_model is not None
    problems = shortfalls(clips_of(shipped), LIMITS["image-first"])
    assert not problems, problems


def test_shipped_video_model_alone_follows_prompts(shipped):
    problems = shortfalls(clips_of(shipped, image_first=False), LIMITS["video model alone"])
    assert not problems, problems


@pytest.mark.parametrize("pipeline", sorted(LIMITS))
def test_the_limits_fail_on_noise_and_pass_the_world_renders(pipeline):
    """The checks can fail: noise clips (and blank ones) break them; the world's own renders of the
    prompts meet every limit."""
    import world

    rng = np.random.default_rng(0)
    assert shortfalls(rng.integers(0, 256, (len(PROMPTS), 16, 32, 32, 3), dtype=np.uint8), LIMITS[pipeline])
    assert shortfalls(np.zeros((len(PROMPTS), 16, 32, 32, 3), dtype=np.uint8), LIMITS[pipeline])
    renders = [world.render_video(world.VideoSpec(**{"position": None, **world.parse_video_caption(p)}))
               for p in PROMPTS]
    assert not shortfalls(renders, LIMITS[pipeline])
