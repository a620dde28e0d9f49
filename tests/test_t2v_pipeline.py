"""TextToVideoPipeline: outputs, seeds, given frames kept exactly, bad inputs, callbacks, save/load."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch

from pipelines.core.errors import UserError
from pipelines.t2v import TextToVideoPipeline, VideoPipelineOutput
from pipelines.core.text_encoder import MINILM_PACKAGE

from .tiny_models import TINY_T2V_FRAMES as FRAMES, TINY_T2V_SIZE as SIZE, clip_uint8, tiny_video_dit

REPO = Path(__file__).resolve().parents[1]
# tiny_t2v (tests/conftest.py): a random pipeline of FRAMES frames of SIZE×SIZE


def run(pipe, seed=0, **kw):
    kw.setdefault("num_inference_steps", 3)
    return pipe("a red square moving left", generator=torch.Generator().manual_seed(seed), **kw).frames


def test_output_types_and_shapes(tiny_t2v):
    out = tiny_t2v("a red circle", num_inference_steps=2)
    assert isinstance(out, VideoPipelineOutput)
    arr = out.frames
    assert arr.shape == (1, FRAMES, SIZE, SIZE, 3) and arr.dtype == np.float32 and 0 <= arr.min() and arr.max() <= 1
    pil = run(tiny_t2v, output_type="pil", num_frames=4, num_inference_steps=2)
    assert len(pil) == 1 and len(pil[0]) == 4 and pil[0][0].size == (SIZE, SIZE)
    pt = tiny_t2v(["a", "b"], num_inference_steps=2, output_type="pt", num_videos_per_prompt=2).frames
    assert pt.shape == (4, FRAMES, 3, SIZE, SIZE) and 0 <= pt.min() and pt.max() <= 1
    latent = run(tiny_t2v, output_type="latent", num_inference_steps=2, height=16, width=4)
    assert latent.shape == (1, 3, FRAMES, 16, 4)
    (tup,) = tiny_t2v("a red circle", num_inference_steps=2, num_frames=2, return_dict=False)
    assert tup.shape == (1, 2, SIZE, SIZE, 3)
    assert tiny_t2v.config.fps == 12 and tiny_t2v.config.num_frames == FRAMES


def test_same_seed_same_clip_other_seed_or_prompt_differs(tiny_t2v):
    a, b, c = run(tiny_t2v, 1), run(tiny_t2v, 1), run(tiny_t2v, 2)
    assert np.array_equal(a, b) and np.abs(a - c).max() > 1e-3
    other = tiny_t2v("a green cross", generator=torch.Generator().manual_seed(1), num_inference_steps=3).frames
    assert np.abs(a - other).max() > 1e-3
    guided = run(tiny_t2v, 1, guidance_scale=1.0)
    assert np.abs(a - guided).max() > 1e-3


@pytest.mark.parametrize("form", ["uint8", "float", "pil", "tensor"])
def test_init_frames_come_back_exactly(tiny_t2v, form):
    init = clip_uint8(2)
    given = {"uint8": init, "float": init / 255.0, "pil": [PIL.Image.fromarray(f) for f in init],
             "tensor": torch.from_numpy(init).permute(0, 3, 1, 2).float() / 255}[form]
    out = run(tiny_t2v, init_frames=given, num_videos_per_prompt=2)
    assert out.shape == (2, FRAMES, SIZE, SIZE, 3)
    for clip in out:
        assert np.array_equal(np.round(clip[:2] * 255).astype(np.uint8), init)
    if form == "float":
        assert np.array_equal(out[0, :2], (init / 255.0).astype(np.float32))
    plain = run(tiny_t2v, num_videos_per_prompt=2)
    assert np.abs(out[:, 2:] - plain[:, 2:]).max() > 1e-4  # the model sees them: later frames change


def test_keyframes_come_back_exactly_alone_and_with_init_frames(tiny_t2v):
    images = clip_uint8(3, seed=1)
    out = run(tiny_t2v, keyframes={5: images[0], 2: PIL.Image.fromarray(images[1])})
    assert np.array_equal(np.round(out[0, 5] * 255).astype(np.uint8), images[0])
    assert np.array_equal(np.round(out[0, 2] * 255).astype(np.uint8), images[1])
    both = run(tiny_t2v, init_frames=images[:1], keyframes=[(FRAMES - 1, images[2])], output_type="pt")
    assert np.array_equal((both[0, 0] * 255).round().byte().permute(1, 2, 0).numpy(), images[0])
    assert np.array_equal((both[0, -1] * 255).round().byte().permute(1, 2, 0).numpy(), images[2])


def test_given_frames_stay_clean_in_the_latents_at_every_step(tiny_t2v):
    init = clip_uint8(2)
    expected = torch.from_numpy(init).permute(3, 0, 1, 2).float() / 127.5 - 1  # (C, k, H, W)
    seen = []
    tiny_t2v(["a", "b"], init_frames=init, num_inference_steps=3, generator=torch.Generator().manual_seed(0),
             callback_on_step_end=lambda pipe, i, t, d: seen.append(d["latents"][:, :, :2].clone()))
    assert len(seen) == 3
    for latents in seen:
        assert torch.allclose(latents, expected.expand_as(latents), atol=1e-6)


def test_callback_sees_and_replaces_latents(tiny_t2v):
    seen = []

    def callback(pipe, i, t, tensors):
        seen.append((i, tuple(tensors["latents"].shape)))
        return {"latents": torch.zeros_like(tensors["latents"])} if i == 2 else {}

    out = run(tiny_t2v, callback_on_step_end=callback)
    assert seen == [(0, (1, 3, FRAMES, SIZE, SIZE)), (1, (1, 3, FRAMES, SIZE, SIZE)), (2, (1, 3, FRAMES, SIZE, SIZE))]
    assert np.allclose(out, 0.5)  # zero latents decode to mid-grey


def test_every_transformer_call_runs_in_a_cache_context(tiny_t2v):
    contexts = []
    original = tiny_t2v.transformer.cache_context
    tiny_t2v.transformer.cache_context = lambda name: contexts.append(name) or original(name)
    run(tiny_t2v, guidance_scale=4.0)
    assert contexts == ["cond", "uncond"] * 3


def test_first_block_cache_threshold_zero_is_exact_and_reset_per_call(tiny_t2v):
    from diffusers.hooks import FirstBlockCacheConfig

    reference = run(tiny_t2v, num_inference_steps=4)
    tiny_t2v.transformer.enable_cache(FirstBlockCacheConfig(threshold=0.0))
    np.testing.assert_allclose(run(tiny_t2v, num_inference_steps=4), reference, atol=1e-6)
    tiny_t2v.transformer.disable_cache()
    tiny_t2v.transformer.enable_cache(FirstBlockCacheConfig(threshold=1e9))
    assert np.array_equal(run(tiny_t2v, num_inference_steps=4), run(tiny_t2v, num_inference_steps=4))


BAD_CALLS = [
    (dict(prompt=""), "empty prompt: ''"),
    (dict(prompt=["a", "  "]), "empty prompt: '  '"),
    (dict(num_frames=0), "num_frames must be a positive integer, got 0"),
    (dict(num_frames=FRAMES + 1), f"num_frames {FRAMES + 1} is beyond this model's limit of {FRAMES}"),
    (dict(height=7), "height 7 must be a positive multiple of 2"),
    (dict(width=10 ** 4), "width 10000 is beyond"),
    (dict(num_inference_steps=0), "num_inference_steps must be between 1 and 1000, got 0"),
    (dict(guidance_scale=-1.0), "guidance_scale must be between 0 and 30, got -1"),
    (dict(output_type="gif"), "output_type must be .*got 'gif'"),
    (dict(num_videos_per_prompt=0), "num_videos_per_prompt must be a positive integer, got 0"),
    (dict(init_frames=clip_uint8(2, size=4)), "init_frames: size 4x4, expected 8x8"),
    (dict(init_frames=clip_uint8(FRAMES + 1)), f"got {FRAMES + 1} init_frames for a video of num_frames={FRAMES}"),
    (dict(init_frames=clip_uint8(2) * 2.0), "init_frames as floats must lie in \\[0, 1\\]"),
    (dict(init_frames=np.zeros((2, SIZE, SIZE, 5))), "init_frames must be RGB images"),
    (dict(keyframes={FRAMES: clip_uint8(1)[0]}), f"keyframe index {FRAMES} is out of range"),
    (dict(keyframes={-1: clip_uint8(1)[0]}), "keyframe index -1 is out of range"),
    (dict(keyframes={3: clip_uint8(1, size=16)[0]}), "keyframe 3: size 16x16, expected 8x8"),
    (dict(keyframes={1: clip_uint8(1)[0]}, init_frames=clip_uint8(2)), "keyframe index 1 conflicts with init_frames"),
    (dict(keyframes=[(2, clip_uint8(1)[0]), (2, clip_uint8(1)[0])]), "keyframe index 2 is given twice"),
    (dict(keyframes={"2": clip_uint8(1)[0]}), "keyframe index '2' is not an integer"),
    (dict(callback_on_step_end_tensor_inputs=["noise"]), "callback tensor 'noise'"),
    (dict(latents=torch.zeros(1, 3, 2, SIZE, SIZE)), "latents have shape"),
]


@pytest.mark.parametrize("kwargs,match", BAD_CALLS, ids=[f"{m.split(' ')[0]}{i}" for i, (_, m) in enumerate(BAD_CALLS)])
def test_bad_call_arguments_raise_user_errors_naming_the_value(tiny_t2v, kwargs, match):
    kwargs.setdefault("prompt", "a red circle")
    with pytest.raises(UserError, match=match):
        tiny_t2v(num_inference_steps=kwargs.pop("num_inference_steps", 1), **kwargs)


def test_check_inputs_alone_for_the_cli(tiny_t2v):
    tiny_t2v.check_inputs("x", num_frames=None, height=None, width=None, num_inference_steps=5, guidance_scale=4.0,
                          init_frames=clip_uint8(2), keyframes={5: clip_uint8(1)[0]})
    with pytest.raises(UserError, match="keyframe index 9"):
        tiny_t2v.check_inputs("x", keyframes={9: clip_uint8(1)[0]})


def save_without_minilm(pipe, path):
    pipe.register_modules(text_encoder=None, tokenizer=None)
    pipe.save_pretrained(path)


def test_save_and_load_round_trip(tiny_t2v, tmp_path):
    before = run(tiny_t2v, init_frames=clip_uint8(1))
    tiny_t2v.save_pretrained(tmp_path / "full")
    loaded = TextToVideoPipeline.from_pretrained(tmp_path / "full")
    assert loaded.config.fps == 12 and loaded.config.num_frames == FRAMES and loaded.config.text_max_length == 16
    np.testing.assert_allclose(run(loaded, init_frames=clip_uint8(1)), before, atol=1e-6)

    save_without_minilm(tiny_t2v, tmp_path / "lean")
    assert not (tmp_path / "lean" / "text_encoder").exists()
    lean = TextToVideoPipeline.from_pretrained(tmp_path / "lean")
    assert type(lean.text_encoder).__name__ == "BertModel"
    np.testing.assert_allclose(run(lean, init_frames=clip_uint8(1)), before, atol=1e-6)


def test_loads_in_a_fresh_process(tiny_t2v, tmp_path):
    before = run(tiny_t2v, num_inference_steps=2)
    save_without_minilm(tiny_t2v, tmp_path / "p")
    script = ("import sys, numpy as np, torch; from pipelines.t2v import TextToVideoPipeline; "
              "p = TextToVideoPipeline.from_pretrained(sys.argv[1]); "
              "np.save(sys.argv[2], p('a red square moving left', num_inference_steps=2, "
              "generator=torch.Generator().manual_seed(0)).frames)")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "p"), str(tmp_path / "out.npy")], cwd=REPO,
                          capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), before, atol=1e-5)


def test_default_model_stand_in(monkeypatch, tmp_path, caplog):
    from pipelines.t2v import default_model

    monkeypatch.setattr(default_model, "SHIPPED_T2V", tmp_path / "absent")
    monkeypatch.setattr(default_model, "untrained_t2v", lambda: "stand-in")
    with caplog.at_level("WARNING"):
        assert default_model.load_default_t2v() == "stand-in"
    assert "UNTRAINED" in caplog.text
    pipe = default_model.shapes_t2v_pipeline(tiny_video_dit(), fps=6)
    assert pipe.config.text_encoder_package == MINILM_PACKAGE and pipe.config.fps == 6
    assert type(pipe.scheduler).__name__ == "FlowMatchEulerDiscreteScheduler"
