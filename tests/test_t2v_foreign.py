"""Diffusers Latte and CogVideoX pipeline folders run through ditkit's t2v loader and CLI.

The folders are tiny, random, and written by diffusers' own `save_pretrained`; ditkit loads
them with diffusers' own classes, so its adapter must give exactly diffusers' output.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from diffusers import (AutoencoderKL, AutoencoderKLCogVideoX, CogVideoXDDIMScheduler, CogVideoXPipeline,
                       CogVideoXTransformer3DModel, DDIMScheduler, LattePipeline, LatteTransformer3DModel)

from pipelines.core.errors import UserError
from pipelines.t2v.loading import load_t2v_pipeline
from pipelines.t2v.cli import main
from pipelines.core.video_io import read_clip

from .tiny_models import randomize


@pytest.fixture(scope="module")
def t5():
    """A tiny random T5 encoder and a saved tokenizer (MiniLM's: any tokenizer on disk will do)."""
    from transformers import AutoTokenizer, T5Config, T5EncoderModel

    from pipelines.core.text_encoder import minilm_path

    tokenizer = AutoTokenizer.from_pretrained(minilm_path(), local_files_only=True)
    encoder = T5EncoderModel(T5Config(vocab_size=tokenizer.vocab_size, d_model=32, num_layers=1, num_heads=2,
                                      d_kv=16, d_ff=64))
    return randomize(encoder, seed=1, std=0.1).eval(), tokenizer


@pytest.fixture(scope="module")
def latte_dir(tmp_path_factory, t5):
    transformer = randomize(LatteTransformer3DModel(
        sample_size=8, num_layers=1, patch_size=2, attention_head_dim=8, num_attention_heads=2, caption_channels=32,
        in_channels=4, cross_attention_dim=16, out_channels=8, attention_bias=True, activation_fn="gelu-approximate",
        num_embeds_ada_norm=1000, norm_type="ada_norm_single", norm_elementwise_affine=False, norm_eps=1e-6,
        video_length=4), seed=2, std=0.1)
    torch.manual_seed(0)
    vae = AutoencoderKL(block_out_channels=(16, 16), down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=8,
                        layers_per_block=1)
    pipe = LattePipeline(tokenizer=t5[1], text_encoder=t5[0], vae=vae.eval(), transformer=transformer.eval(),
                         scheduler=DDIMScheduler())
    path = tmp_path_factory.mktemp("foreign-video") / "latte"
    pipe.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def cogvideox_dir(tmp_path_factory, t5):
    transformer = randomize(CogVideoXTransformer3DModel(
        num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=4, time_embed_dim=2,
        text_embed_dim=32, num_layers=1, sample_width=2, sample_height=2, sample_frames=9, patch_size=2,
        temporal_compression_ratio=4, max_text_seq_length=16), seed=3, std=0.1)
    torch.manual_seed(0)
    vae = AutoencoderKLCogVideoX(in_channels=3, out_channels=3, down_block_types=("CogVideoXDownBlock3D",) * 4,
                                 up_block_types=("CogVideoXUpBlock3D",) * 4, block_out_channels=(8, 8, 8, 8),
                                 latent_channels=4, layers_per_block=1, norm_num_groups=2,
                                 temporal_compression_ratio=4)
    pipe = CogVideoXPipeline(tokenizer=t5[1], text_encoder=t5[0], vae=vae.eval(), transformer=transformer.eval(),
                             scheduler=CogVideoXDDIMScheduler())
    path = tmp_path_factory.mktemp("foreign-video") / "cogvideox"
    pipe.save_pretrained(path)
    return path


def seeded():
    return torch.Generator().manual_seed(0)


def test_latte_folder_matches_diffusers_pipeline(latte_dir):
    ours = load_t2v_pipeline(latte_dir)
    theirs = LattePipeline.from_pretrained(latte_dir)
    kw = dict(num_inference_steps=2, guidance_scale=4.5, height=16, width=16, output_type="np")
    a = ours("a red circle", num_frames=4, generator=seeded(), **kw).frames
    b = theirs("a red circle", video_length=4, negative_prompt="", clean_caption=False, generator=seeded(),
               **kw).frames
    assert a.shape == (1, 4, 16, 16, 3)
    assert np.abs(a - b).max() <= 1e-4
    assert ours.config.num_frames == 4 and ours.config.fps > 0


def test_cogvideox_folder_matches_diffusers_pipeline(cogvideox_dir):
    ours = load_t2v_pipeline(cogvideox_dir)
    theirs = CogVideoXPipeline.from_pretrained(cogvideox_dir)
    kw = dict(num_inference_steps=2, guidance_scale=6.0, height=16, width=16, output_type="np")
    a = ours("a red circle", num_frames=9, generator=seeded(), **kw).frames
    b = theirs("a red circle", num_frames=9, max_sequence_length=16, generator=seeded(), **kw).frames
    assert a.shape == (1, 9, 16, 16, 3)
    assert np.abs(a - b).max() <= 1e-4


@pytest.mark.parametrize("which,frames", [("latte", 4), ("cogvideox", 9)])
def test_cli_makes_a_clip_from_diffusers_folders(which, frames, latte_dir, cogvideox_dir, tmp_path, capsys):
    folder = {"latte": latte_dir, "cogvideox": cogvideox_dir}[which]
    out = tmp_path / "clip.gif"
    code = main(["--model", str(folder), "--prompt", "a red circle", "--out", str(out), "--steps", "2"])
    assert code == 0, capsys.readouterr().err
    assert read_clip(out).shape == (frames, 16, 16, 3)


@pytest.mark.parametrize("which,argv,expected", [
    ("latte", ["--init-frames", "{tmp}/f.png"], "init_frames are not supported by LattePipeline"),
    ("cogvideox", ["--keyframes", "0={tmp}/f.png"], "keyframes are not supported by CogVideoXPipeline"),
    ("latte", ["--num-frames", "3"], "num_frames 3 is not possible for this LattePipeline"),
    ("cogvideox", ["--num-frames", "5"], "num_frames 5 is not possible for this CogVideoXPipeline"),
    ("cogvideox", ["--height", "24"], "height 24 must be a positive multiple of 16"),
    ("latte", ["--cache", "fbcache"], "caches and bottleneck sampling (acceleration) are not supported by LattePipeline"),
])
def test_cli_refuses_what_a_foreign_pipeline_cannot_do(which, argv, expected, latte_dir, cogvideox_dir, tmp_path,
                                                       capsys):
    from PIL import Image

    Image.new("RGB", (16, 16), "red").save(tmp_path / "f.png")
    folder = {"latte": latte_dir, "cogvideox": cogvideox_dir}[which]
    code = main(["--model", str(folder), "--prompt", "a red circle", "--out", str(tmp_path / "x.mp4"),
                 *[a.format(tmp=tmp_path) for a in argv]])
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert code == 2 and last.startswith("error: ") and expected in last, err
    assert not (tmp_path / "x.mp4").exists()


def test_unknown_pipeline_class_is_named(tmp_path):
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "AnimateDiffPipeline"}))
    with pytest.raises(UserError, match="unsupported pipeline 'AnimateDiffPipeline'"):
        load_t2v_pipeline(tmp_path)
