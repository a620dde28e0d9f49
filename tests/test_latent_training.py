"""Latent-space training (the config's `vae`) on a tiny random AutoencoderKL (widths 8/16, 2x
downsampling, 4 latent channels): batches are the rendered pixels encoded with the pipelines'
own scaling, a few steps lower the loss on a fixed batch, the exported pipeline folder carries
the autoencoder in vae/ and generates through it, and its scaling factor is really used."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL

from pipelines.core.pixels import to_unit_range
from pipelines.t2i import TextToImagePipeline
from pipelines.t2i.loading import load_t2i_pipeline
from pipelines.t2v import TextToVideoPipeline
from pipelines.t2v.loading import load_t2v_pipeline
from training.checkpoint import find_checkpoint, load_weights
from training.config import ConfigError, TrainConfig, load_config
from training.data import batch_for_step
from training.export import export_run
from training.flow_matching import flow_matching_loss
from training.latents import LatentCodec, check_latent_model
from training.text_cache import TextEmbeddingCache
from training.train import train

pytestmark = pytest.mark.usefixtures("one_thread")

TINY_VAE = dict(in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 2,
                up_block_types=["UpDecoderBlock2D"] * 2, block_out_channels=[8, 16], layers_per_block=1,
                latent_channels=4, norm_num_groups=4, sample_size=16, mid_block_add_attention=False)
SCALE, SHIFT = 1.7, 0.1   # not the diffusers defaults, and a shift, so a dropped or misordered term shows
SIDE, LATENT = 16, 8      # 16x16 world renders -> 8x8x4 latents
TEXT = dict(text_dim=384, pooled_dim=384, num_heads=2)
RECIPES = {
    "t2i": dict(model="DiT", model_kwargs=dict(sample_size=LATENT, patch_size=2, in_channels=4, hidden_size=64, depth=2,
                                               condition="text", adaln="single", **TEXT),
                batch_size=8),
    "t2v": dict(task="t2v", model="VideoDiT", num_frames=4,
                model_kwargs=dict(sample_size=LATENT, num_frames=4, patch_size=2, in_channels=4, hidden_size=32, depth=2,
                                  branch_channels=[], branch_depths=[], **TEXT),
                batch_size=4),
}
STEPS = 20
REPO = Path(__file__).resolve().parents[1]


def quiet(*_args, **_kwargs):
    pass


@pytest.fixture(scope="module")
def vae_dir(tmp_path_factory):
    """A random tiny AutoencoderKL saved as training.train_autoencoder exports one."""
    torch.manual_seed(0)
    vae = AutoencoderKL(**TINY_VAE)
    vae.register_to_config(scaling_factor=SCALE, shift_factor=SHIFT)
    path = tmp_path_factory.mktemp("autoencoder") / "vae"
    vae.save_pretrained(path)
    return path


def recipe(task: str, vae_dir, **changes) -> TrainConfig:
    cfg = dict(resolution=SIDE, vae=str(vae_dir), lr=2e-3, warmup_steps=2, total_steps=STEPS, ema_decay=0.9,
               mixed_precision="no", log_every=STEPS, checkpoint_every=STEPS, eval_every=0, eval_prompts=2,
               eval_steps=2, **RECIPES[task])
    cfg.update(changes)
    return TrainConfig.from_dict(cfg)


@pytest.fixture(scope="module", params=["t2i", "t2v"])
def latent_run(request, vae_dir, tmp_path_factory, minilm):
    """STEPS steps of a tiny latent recipe: (task, cfg, output folder, TrainResult)."""
    cfg = recipe(request.param, vae_dir)
    out = tmp_path_factory.mktemp(f"latent-{request.param}")
    result = train(cfg, out, echo=quiet, text_cache=TextEmbeddingCache(*minilm, max_length=cfg.text_max_length))
    return request.param, cfg, out, result


# ---------------------------------------------------------------------------- the latents


def test_batches_are_the_rendered_pixels_encoded_with_the_pipelines_scaling(vae_dir):
    codec = LatentCodec.from_folder(vae_dir)
    for task in ("t2i", "t2v"):
        cfg = recipe(task, vae_dir)
        pixels = batch_for_step(cfg, 3)
        latents = batch_for_step(cfg, 3, encode=codec.encode)
        frames = (cfg.num_frames,) if task == "t2v" else ()
        assert latents.x0.shape == latents.noise.shape == (cfg.batch_size, 4, *frames, LATENT, LATENT)
        assert latents.captions == pixels.captions  # the noise (latent-shaped) and what follows it differ
        images = pixels.x0.transpose(1, 2).flatten(0, 1) if task == "t2v" else pixels.x0  # (N, 3, H, W)
        with torch.no_grad():
            mode = codec.vae.encode(images).latent_dist.mode()
        expected = (mode - SHIFT) * SCALE                                           # (N, 4, h, w)
        if task == "t2v":  # frame by frame: latent frame t is frame t's encoding, and VDT's mask indexes them
            expected = expected.reshape(cfg.batch_size, cfg.num_frames, 4, LATENT, LATENT).transpose(1, 2)
            assert latents.given_mask.shape == (cfg.batch_size, latents.x0.shape[2])
        torch.testing.assert_close(latents.x0, expected)


def test_the_pipelines_decode_inverts_the_training_encode(vae_dir):
    """decode(encode(x)) through the two sides (training's codec, the pipelines' decode) is the
    autoencoder's own round trip: the scaling and shift cancel, in the right order."""
    codec = LatentCodec.from_folder(vae_dir)
    x = torch.rand(2, 3, SIDE, SIDE) * 2 - 1
    with torch.no_grad():
        own = to_unit_range(codec.vae.decode(codec.vae.encode(x).latent_dist.mode()).sample)
    holder = SimpleNamespace(vae=codec.vae)  # the pipelines' decode needs nothing but their vae
    with torch.no_grad():
        torch.testing.assert_close(TextToImagePipeline.decode(holder, codec.encode(x)), own)
        clip = codec.encode(torch.stack([x, x.flip(0)], dim=2))                     # (2, 4, 2, h, w)
        torch.testing.assert_close(TextToVideoPipeline.decode(holder, clip)[:, 0], own)


def test_a_backbone_that_does_not_fit_the_latents_is_refused(vae_dir):
    codec = LatentCodec.from_folder(vae_dir)
    pixel_sized = recipe("t2i", vae_dir)
    pixel_sized.model_kwargs = {**pixel_sized.model_kwargs, "in_channels": 3, "sample_size": SIDE}
    with pytest.raises(ConfigError, match=r"4 latent channels.*sample_size must be resolution / 2"):
        check_latent_model(pixel_sized, codec)
    with pytest.raises(ConfigError, match="no autoencoder there"):
        LatentCodec.from_folder(vae_dir.parent / "missing")
    with pytest.raises(ConfigError, match="vae must be null or an autoencoder folder"):
        recipe("t2i", vae_dir, vae="")


# ---------------------------------------------------------------------------- training and export


def test_a_few_latent_steps_lower_the_loss_on_a_fixed_batch(latent_run, vae_dir, minilm):
    task, cfg, out, result = latent_run
    assert result.step == STEPS and all(np.isfinite(result.losses))
    codec = LatentCodec.from_folder(vae_dir)
    fixed = batch_for_step(cfg, 10 ** 6, encode=codec.encode)  # a batch no step trained on
    cache = TextEmbeddingCache(*minilm, max_length=cfg.text_max_length)
    cond = cache.lookup(fixed.captions)
    before = cfg.build_model()  # seeded: the model the run started from
    after = cfg.build_model()
    load_weights(find_checkpoint(out), after, "model")
    with torch.no_grad():
        losses = [flow_matching_loss(m.eval(), fixed.x0, fixed.noise, fixed.sigma, cond, None, fixed.given_mask)[0]
                  for m in (before, after)]
    assert losses[1] < 0.8 * losses[0], (task, losses)


def test_export_holds_the_autoencoder_and_generates_through_it(latent_run, vae_dir):
    task, cfg, out, result = latent_run
    folder = out / "pipeline"
    saved = json.loads((folder / "vae" / "config.json").read_text())
    assert saved["_class_name"] == "AutoencoderKL"
    assert saved["scaling_factor"] == pytest.approx(SCALE) and saved["shift_factor"] == pytest.approx(SHIFT)
    assert json.loads((folder / "model_index.json").read_text())["vae"] == ["diffusers", "AutoencoderKL"]
    # the periodic eval decoded through the autoencoder and was read by the strict reader
    assert {"joint", "template_iou", "noise"} <= set(result.last_eval)
    # python -m training.export from the checkpoint brings the recipe's autoencoder along too
    again = export_run(out, out / "exported")
    assert json.loads((again / "vae" / "config.json").read_text())["scaling_factor"] == pytest.approx(SCALE)
    source = AutoencoderKL.from_pretrained(vae_dir)
    load = load_t2v_pipeline if task == "t2v" else load_t2i_pipeline
    pipe = load(folder)
    pipe.set_progress_bar_config(disable=True)
    assert isinstance(pipe.vae, AutoencoderKL) and pipe.native_size == SIDE
    for name, value in source.state_dict().items():  # frozen: the run's autoencoder, untouched
        torch.testing.assert_close(pipe.vae.state_dict()[name], value)
    out_np = pipe("a red circle", num_inference_steps=2, generator=torch.Generator().manual_seed(0), output_type="np")
    if task == "t2v":
        assert out_np.frames.shape == (1, cfg.num_frames, SIDE, SIDE, 3)
        given = np.random.default_rng(0).random((1, SIDE, SIDE, 3)).astype(np.float32)  # VDT: a frame to continue
        continued = pipe("a red circle", num_inference_steps=2, init_frames=given, output_type="np").frames
        np.testing.assert_allclose(continued[0, 0], given[0], atol=1e-6)
    else:
        assert out_np.images.shape == (1, SIDE, SIDE, 3)


def test_the_scaling_factor_is_used_when_decoding(latent_run):
    task, cfg, out, _ = latent_run
    load = load_t2v_pipeline if task == "t2v" else load_t2i_pipeline
    pipes = [load(out / "pipeline"), load(out / "pipeline")]
    pipes[1].vae.register_to_config(scaling_factor=2 * SCALE)
    results = []
    for pipe in pipes:
        pipe.set_progress_bar_config(disable=True)
        out_pt = pipe("a blue square", num_inference_steps=2, generator=torch.Generator().manual_seed(1),
                      output_type="pt")
        results.append(out_pt.frames if task == "t2v" else out_pt.images)
    assert results[0].shape == results[1].shape
    assert (results[0] - results[1]).abs().max() > 1e-3  # same latents, another scale: other pixels
    # and the decode is exactly vae.decode(z / scaling_factor + shift_factor)
    z = torch.randn(1, 4, LATENT, LATENT, generator=torch.Generator().manual_seed(2))
    pipe = pipes[1]
    with torch.no_grad():
        expected = to_unit_range(pipe.vae.decode(z / (2 * SCALE) + SHIFT).sample)
        got = pipe.decode(z[:, :, None])[:, 0] if task == "t2v" else pipe.decode(z)
    torch.testing.assert_close(got, expected)


def test_the_latent_recipes_load_and_fit_the_shapes_autoencoder():
    """configs/*_latent.json: 64x64 pixels, 16x16x4 latents of runs/vae_shapes_decoder/vae (4x, 4
    channels) — configs/vae_shapes.json's autoencoder with its decoder fine-tuned, the same model shape."""
    recipe_of_vae = json.loads((REPO / "configs" / "vae_shapes.json").read_text())["model_kwargs"]
    decoder_recipe = json.loads((REPO / "configs" / "vae_shapes_decoder.json").read_text())
    assert decoder_recipe["model_kwargs"] == recipe_of_vae and decoder_recipe["init_from"] == "runs/vae_shapes/vae"
    assert decoder_recipe["train_encoder"] is False  # the latents stay runs/vae_shapes/vae's
    shapes_vae = LatentCodec(AutoencoderKL(**recipe_of_vae))  # the autoencoder's shape, untrained
    for name in ("t2i_shapes_latent", "t2v_shapes_latent"):
        cfg = load_config(REPO / "configs" / f"{name}.json")
        assert cfg.vae == "runs/vae_shapes_decoder/vae" and cfg.resolution == 64
        assert f"--config configs/{name}.json" in cfg.description
        check_latent_model(cfg, shapes_vae)
        assert cfg.model_kwargs["sample_size"] == 16 and cfg.model_kwargs["patch_size"] == 2
    assert load_config(REPO / "configs" / "t2v_shapes_latent.json").num_frames == 16
