"""Diffusers PixArt-α and DiT pipeline folders run through ditkit's pipeline and CLI.

The folders are tiny, random, and written by diffusers' own `save_pretrained`; ditkit converts
their transformer and must then reproduce diffusers' own pipeline output for the same seed.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import (AutoencoderKL, DDIMScheduler, DiTPipeline, DiTTransformer2DModel, PixArtAlphaPipeline,
                       PixArtTransformer2DModel)
from PIL import Image

from pipelines.t2i import load_t2i_pipeline
from pipelines.t2i.cli import main

from .tiny_models import randomize


def tiny_vae():
    torch.manual_seed(0)
    return AutoencoderKL(block_out_channels=(16, 16), down_block_types=("DownEncoderBlock2D",) * 2,
                         up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=8,
                         layers_per_block=1).eval()


@pytest.fixture(scope="module")
def pixart_dir(tmp_path_factory, minilm):
    from transformers import T5Config, T5EncoderModel

    tokenizer = minilm[1]  # any saved tokenizer works; MiniLM's is on disk already
    text_encoder = randomize(T5EncoderModel(T5Config(vocab_size=tokenizer.vocab_size, d_model=32, num_layers=1,
                                                     num_heads=2, d_kv=16, d_ff=64)), seed=1, std=0.1)
    transformer = randomize(PixArtTransformer2DModel(
        sample_size=8, num_layers=2, attention_head_dim=8, num_attention_heads=2, in_channels=4, out_channels=8,
        caption_channels=32, cross_attention_dim=16), seed=2, std=0.1)
    pipe = PixArtAlphaPipeline(tokenizer=tokenizer, text_encoder=text_encoder.eval(), vae=tiny_vae(),
                               transformer=transformer.eval(), scheduler=DDIMScheduler())
    path = tmp_path_factory.mktemp("foreign") / "pixart"
    pipe.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def dit_dir(tmp_path_factory):
    transformer = randomize(DiTTransformer2DModel(
        sample_size=8, num_layers=2, attention_head_dim=8, num_attention_heads=2, in_channels=4, out_channels=8,
        num_embeds_ada_norm=1000), seed=3, std=0.1)
    blocks = transformer.transformer_blocks  # real DiT checkpoints share one embedder across blocks
    for block in blocks[1:]:
        block.norm1.emb.load_state_dict(blocks[0].norm1.emb.state_dict())
    pipe = DiTPipeline(transformer=transformer.eval(), vae=tiny_vae(), scheduler=DDIMScheduler())
    path = tmp_path_factory.mktemp("foreign") / "dit"
    pipe.save_pretrained(path)
    return path


def test_pixart_folder_matches_diffusers_pipeline(pixart_dir):
    ours = load_t2i_pipeline(pixart_dir)
    theirs = PixArtAlphaPipeline.from_pretrained(pixart_dir)
    kw = dict(num_inference_steps=4, guidance_scale=4.5, output_type="np", height=16, width=16)
    a = ours("a red circle", generator=torch.Generator().manual_seed(0), **kw).images
    b = theirs("a red circle", generator=torch.Generator().manual_seed(0), use_resolution_binning=False,
               clean_caption=False, **kw).images
    assert a.shape == (1, 16, 16, 3)
    assert np.abs(a - b).max() <= 1e-4


def test_dit_folder_matches_diffusers_pipeline(dit_dir):
    ours = load_t2i_pipeline(dit_dir)
    theirs = DiTPipeline.from_pretrained(dit_dir)
    a = ours("207", generator=torch.Generator().manual_seed(0), num_inference_steps=4, guidance_scale=4.0,
             output_type="np").images
    b = theirs([207], generator=torch.Generator().manual_seed(0), num_inference_steps=4, guidance_scale=4.0,
               output_type="np").images
    assert np.abs(a - b).max() <= 1e-4


@pytest.mark.parametrize("which,prompt", [("pixart", "a red circle"), ("dit", "207")])
def test_cli_runs_diffusers_folders(which, prompt, pixart_dir, dit_dir, tmp_path, capsys):
    folder = {"pixart": pixart_dir, "dit": dit_dir}[which]
    out = tmp_path / "x.png"
    code = main(["--model", str(folder), "--prompt", prompt, "--out", str(out), "--steps", "2"])
    assert code == 0, capsys.readouterr().err
    assert Image.open(out).size == (16, 16)


def test_cli_rejects_unknown_label_for_class_model(dit_dir, tmp_path, capsys):
    code = main(["--model", str(dit_dir), "--prompt", "a red circle", "--out", str(tmp_path / "x.png")])
    assert code == 2 and "not a class index" in capsys.readouterr().err
