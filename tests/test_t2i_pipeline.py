"""TextToImagePipeline: outputs, schedulers, guidance, callbacks, cache hooks, save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, FlowMatchEulerDiscreteScheduler

from dit import build_dit
from pipelines.core.errors import UserError
from pipelines.core.schedulers import make_scheduler
from pipelines.t2i import TextToImagePipeline

from .tiny_models import randomize


def run(pipe, seed=0, **kw):
    kw.setdefault("num_inference_steps", 4)
    return pipe("a large red circle in the top left", generator=torch.Generator().manual_seed(seed),
                output_type="np", **kw).images


def test_output_types(tiny_t2i):
    pil = tiny_t2i("a red circle", num_inference_steps=2).images
    assert len(pil) == 1 and pil[0].size == (8, 8)
    arr = run(tiny_t2i, num_images_per_prompt=2)
    assert arr.shape == (2, 8, 8, 3) and 0 <= arr.min() and arr.max() <= 1
    pt = tiny_t2i(["a", "b"], num_inference_steps=2, output_type="pt").images
    assert pt.shape == (2, 3, 8, 8)
    (tup,) = tiny_t2i("a red circle", num_inference_steps=2, output_type="np", return_dict=False)
    assert tup.shape == (1, 8, 8, 3)


def test_same_seed_same_image_other_seed_differs(tiny_t2i):
    a, b, c = run(tiny_t2i, 1), run(tiny_t2i, 1), run(tiny_t2i, 2)
    assert np.array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3


def test_guidance_and_negative_prompt_change_the_image(tiny_t2i):
    plain = run(tiny_t2i, guidance_scale=1.0)
    guided = run(tiny_t2i, guidance_scale=5.0)
    negative = run(tiny_t2i, guidance_scale=5.0, negative_prompt="a blue square")
    assert np.abs(plain - guided).max() > 1e-3
    assert np.abs(guided - negative).max() > 1e-3


def test_prompt_changes_the_image(tiny_t2i):
    a = tiny_t2i("a red circle", generator=torch.Generator().manual_seed(0), num_inference_steps=3,
                 output_type="np").images
    b = tiny_t2i("a green cross on a black background", generator=torch.Generator().manual_seed(0),
                 num_inference_steps=3, output_type="np").images
    assert np.abs(a - b).max() > 1e-3


@pytest.mark.parametrize("name", ["flow-euler", "flow-heun", "dpm++", "unipc"])
def test_flow_model_with_fitting_schedulers(tiny_t2i, name):
    tiny_t2i.scheduler = make_scheduler(name, tiny_t2i.scheduler)
    out = run(tiny_t2i, num_inference_steps=5)
    assert np.isfinite(out).all()


@pytest.mark.parametrize("first,then", [("unipc", "flow-heun"), ("flow-heun", "dpm++"), ("flow-euler", "flow-euler")])
def test_switching_flow_schedulers_keeps_the_shift_under_each_ones_name(first, then):
    """FlowMatch* take `shift`, the multistep solvers `flow_shift`; passing the other name made
    diffusers warn on every --scheduler run."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    from pipelines.core.schedulers import scheduler_config

    one = make_scheduler(first, FlowMatchEulerDiscreteScheduler(shift=8.0))
    cls, config = scheduler_config(then, one)
    own, other = ("shift", "flow_shift") if cls.__name__.startswith("FlowMatch") else ("flow_shift", "shift")
    assert config[own] == 8.0 and (other not in config or own == "flow_shift"), config
    assert cls.from_config(config).config[own] == 8.0


@pytest.mark.parametrize("scheduler_cls", [DDIMScheduler, DPMSolverMultistepScheduler])
@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_noise_model_with_ddpm_family(tiny_t2i, scheduler_cls, prediction_type):
    tiny_t2i.scheduler = scheduler_cls(prediction_type=prediction_type)
    a, b = run(tiny_t2i, 3), run(tiny_t2i, 3)
    assert np.isfinite(a).all() and np.array_equal(a, b)


def test_make_scheduler_refuses_mismatched_objective(tiny_t2i):
    with pytest.raises(UserError, match="ddim"):
        make_scheduler("ddim", FlowMatchEulerDiscreteScheduler())
    with pytest.raises(UserError, match="flow-euler"):
        make_scheduler("flow-euler", DDIMScheduler())
    with pytest.raises(UserError, match="unknown scheduler 'nope'"):
        make_scheduler("nope", DDIMScheduler())
    assert type(make_scheduler("dpm++", DDIMScheduler(prediction_type="v_prediction"))).__name__ == \
        "DPMSolverMultistepScheduler"


def test_callback_on_step_end_sees_and_replaces_latents(tiny_t2i):
    seen = []

    def callback(pipe, i, t, tensors):
        seen.append((i, tensors["latents"].shape))
        return {"latents": torch.zeros_like(tensors["latents"])} if i == 3 else {}

    out = run(tiny_t2i, callback_on_step_end=callback, num_inference_steps=4)
    assert [i for i, _ in seen] == [0, 1, 2, 3]
    assert seen[0][1] == (1, 3, 8, 8)
    assert np.allclose(out, 0.5)  # zero latents decode to mid-grey


def test_every_transformer_call_runs_in_a_cache_context(tiny_t2i):
    contexts = []
    original = tiny_t2i.transformer.cache_context

    def spy(name):
        contexts.append(name)
        return original(name)

    tiny_t2i.transformer.cache_context = spy
    run(tiny_t2i, num_inference_steps=3, guidance_scale=4.0)
    assert contexts == ["cond", "uncond"] * 3


def count_block_runs(transformer, index):
    counter = {"n": 0}
    transformer.transformer_blocks[index].mlp.register_forward_hook(lambda *a: counter.__setitem__("n", counter["n"] + 1))
    return counter


def test_diffusers_first_block_cache_attaches_and_skips(tiny_t2i):
    from diffusers.hooks import FirstBlockCacheConfig

    reference = run(tiny_t2i, num_inference_steps=8)
    tiny_t2i.transformer.enable_cache(FirstBlockCacheConfig(threshold=10.0))  # reuse whenever possible
    tail = count_block_runs(tiny_t2i.transformer, -1)
    cached = run(tiny_t2i, num_inference_steps=8)
    # first step of each context computes; later steps reuse the tail's residual
    assert tail["n"] == 2
    assert cached.shape == reference.shape and np.isfinite(cached).all()
    # state is reset per call: a second call behaves exactly like the first
    tail["n"] = 0
    again = run(tiny_t2i, num_inference_steps=8)
    assert tail["n"] == 2 and np.array_equal(cached, again)
    tiny_t2i.transformer.disable_cache()
    tiny_t2i.transformer.enable_cache(FirstBlockCacheConfig(threshold=0.0))  # never reuse
    tail["n"] = 0
    exact = run(tiny_t2i, num_inference_steps=8)
    assert tail["n"] == 16
    np.testing.assert_allclose(exact, reference, atol=1e-6)


def test_save_and_load_round_trip(tiny_t2i, tmp_path):
    before = run(tiny_t2i)
    tiny_t2i.save_pretrained(tmp_path / "p")
    loaded = TextToImagePipeline.from_pretrained(tmp_path / "p")
    assert loaded.config.text_max_length == 16
    np.testing.assert_allclose(run(loaded), before, atol=1e-6)


def test_folder_without_text_encoder_gets_minilm_back(tiny_t2i_dir):
    assert not (tiny_t2i_dir / "text_encoder").exists()
    pipe = TextToImagePipeline.from_pretrained(tiny_t2i_dir)
    assert type(pipe.text_encoder).__name__ == "BertModel"
    assert run(pipe).shape == (1, 8, 8, 3)


def test_class_conditional_pipeline_takes_labels():
    transformer = randomize(build_dit("DiT-N/2", sample_size=8, in_channels=4, out_channels=8, num_classes=10))
    pipe = TextToImagePipeline(transformer=transformer, scheduler=DDIMScheduler(),
                               id2label={"3": "tabby cat, tabby", "7": "goldfish"})
    a = pipe("3", generator=torch.Generator().manual_seed(0), num_inference_steps=3, output_type="np").images
    b = pipe("Tabby", generator=torch.Generator().manual_seed(0), num_inference_steps=3, output_type="np").images
    c = pipe("goldfish", generator=torch.Generator().manual_seed(0), num_inference_steps=3, output_type="np").images
    assert np.array_equal(a, b) and np.abs(a - c).max() > 1e-3
    with pytest.raises(UserError, match="'unicorn'"):
        pipe("unicorn", num_inference_steps=2)


@pytest.mark.parametrize("kwargs,match", [
    (dict(prompt=""), "empty prompt"),
    (dict(num_inference_steps=0), "num_inference_steps"),
    (dict(height=7), "height 7"),
    (dict(width=10 ** 4), "width 10000 is beyond"),
    (dict(guidance_scale=-1.0), "guidance_scale"),
    (dict(output_type="jpeg"), "output_type"),
])
def test_bad_call_arguments_raise_user_errors(tiny_t2i, kwargs, match):
    kwargs.setdefault("prompt", "a red circle")
    with pytest.raises(UserError, match=match):
        tiny_t2i(**kwargs)
