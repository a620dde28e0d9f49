"""Image-first text to video: an image model draws each clip's first frame, the video model continues it."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import world
from pipelines.core.errors import UserError
from pipelines.t2v.first_frame import FirstFrameModel


class Recording(FirstFrameModel):
    """A first-frame model that remembers what it was asked and what it drew."""

    def __init__(self, pipeline, caption=None):
        super().__init__(pipeline, caption)
        self.calls = []

    def draw(self, prompts, negatives, height, width, num_inference_steps, guidance_scale, generator=None):
        frames = super().draw(prompts, negatives, height, width, num_inference_steps, guidance_scale, generator)
        self.calls.append({"prompts": self.image_prompts(prompts), "negatives": negatives, "frames": frames})
        return frames


def call(pipe, prompts=("a red square moving left", "a large blue circle in the top moving down"), seed=0, **kw):
    kw.setdefault("num_inference_steps", 3)
    return pipe(list(prompts), generator=torch.Generator().manual_seed(seed), output_type="pt", **kw).frames


def test_first_frame_caption_drops_the_motion_and_states_the_start():
    assert world.first_frame_caption("a red square moving left on a black background") == \
        "a red square in the right on a black background"
    assert world.first_frame_caption("a large blue circle in the top moving down") == "a large blue circle in the top"
    assert world.first_frame_caption("A  small green cross growing") == "a small green cross in the center"
    assert world.first_frame_caption("a yellow triangle") == "a yellow triangle"
    assert world.first_frame_caption("a cat surfing at dawn") == "a cat surfing at dawn"  # outside the grammar


def test_each_clip_starts_with_its_own_image(tiny_t2v, tiny_t2i):
    recorder = Recording(tiny_t2i, world.first_frame_caption)
    tiny_t2v.set_first_frame_model(recorder)
    out = call(tiny_t2v, negative_prompt="noise", num_videos_per_prompt=2)  # (4, F, 3, H, W)
    (record,) = recorder.calls
    assert record["prompts"] == ["a red square in the right"] * 2 + ["a large blue circle in the top"] * 2
    assert record["negatives"] == ["noise"] * 4
    assert torch.equal(out[:, 0], record["frames"])  # kept exactly
    assert not torch.equal(out[0, 0], out[2, 0]) and not torch.equal(out[0, 0], out[1, 0])
    assert not torch.equal(out[:, 1], out[:, 0])  # the rest is generated


def test_image_first_is_repeatable_and_off_is_the_video_model_alone(tiny_t2v, tiny_t2i):
    plain = call(tiny_t2v)
    tiny_t2v.set_first_frame_model(FirstFrameModel(tiny_t2i))
    a, b, other = call(tiny_t2v), call(tiny_t2v), call(tiny_t2v, seed=1)
    assert torch.equal(a, b) and not torch.equal(a, other)
    assert not torch.equal(a, plain)
    assert torch.equal(call(tiny_t2v, image_first=False), plain)


def test_an_image_of_another_size_is_area_resized(tiny_t2v, tiny_t2i):
    """The image model draws at its own size (8×8 here); a 4×4 clip gets it area-averaged."""
    drawn = tiny_t2i(["a red square"], num_inference_steps=2, generator=torch.Generator().manual_seed(3),
                     output_type="pt").images
    frames = FirstFrameModel(tiny_t2i).draw(["a red square"], None, 4, 4, 2, 4.0, torch.Generator().manual_seed(3))
    assert drawn.shape[-2:] == (8, 8) and frames.shape == (1, 3, 4, 4)
    assert torch.allclose(frames, F.avg_pool2d(drawn, 2).clamp(0, 1), atol=1e-6)
    tiny_t2v.set_first_frame_model(FirstFrameModel(tiny_t2i))
    assert call(tiny_t2v, height=4, width=4).shape[-2:] == (4, 4)


def test_given_frames_win_over_the_image_model(tiny_t2v, tiny_t2i):
    recorder = Recording(tiny_t2i)
    tiny_t2v.set_first_frame_model(recorder)
    init = np.random.default_rng(0).integers(0, 256, (1, 8, 8, 3), dtype=np.uint8)
    out = call(tiny_t2v, init_frames=init)
    assert recorder.calls == []
    assert torch.equal(out[:, 0], torch.from_numpy(init[0]).permute(2, 0, 1).float().expand(2, -1, -1, -1) / 255)


@pytest.mark.parametrize("kwargs,message", [
    ({"image_first": "yes"}, "image_first must be None (auto), True or False"),
    ({"image_first": True, "init_frames": np.zeros((1, 8, 8, 3), np.uint8)}, "init_frames/keyframes were given too"),
])
def test_bad_image_first_requests_are_refused(tiny_t2v, tiny_t2i, kwargs, message):
    tiny_t2v.set_first_frame_model(FirstFrameModel(tiny_t2i))
    with pytest.raises(UserError, match=re.escape(message)):
        call(tiny_t2v, **kwargs)


def test_image_first_without_a_model_is_refused(tiny_t2v):
    with pytest.raises(UserError, match="no first-frame model"):
        call(tiny_t2v, image_first=True)
