"""Shared fixtures: tiny models built and saved by the tests themselves (no downloads)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# OpenMP threads that spin while waiting make small-tensor tests ~10x slower whenever another
# process (a second test worker, a subprocess under test, a training job) shares the cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import pytest
import torch

from .tiny_models import randomize, tiny_text_dit, tiny_video_dit  # plain helpers: test modules import them from there


@pytest.fixture
def one_thread():
    """Tiny models run faster on one thread — ~50x faster while a training job holds both cores.
    Modules of tiny-model tests opt in: `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def minilm():
    from pipelines.core.text_encoder import load_minilm

    return load_minilm()


@pytest.fixture
def tiny_t2i(minilm):
    """A pixel-space, text-conditioned, flow-matching pipeline with random weights (8×8 images)."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    from pipelines.t2i import TextToImagePipeline
    from pipelines.core.text_encoder import MINILM_PACKAGE

    text_encoder, tokenizer = minilm
    return TextToImagePipeline(transformer=tiny_text_dit(), scheduler=FlowMatchEulerDiscreteScheduler(),
                               text_encoder=text_encoder, tokenizer=tokenizer, text_max_length=16,
                               text_encoder_package=MINILM_PACKAGE)


@pytest.fixture
def tiny_t2i_dir(tiny_t2i, tmp_path):
    """The tiny pipeline saved like the shipped model: without MiniLM (it comes from its package)."""
    tiny_t2i.text_encoder = None
    tiny_t2i.tokenizer = None
    tiny_t2i.register_modules(text_encoder=None, tokenizer=None)
    path = tmp_path / "tiny-t2i"
    tiny_t2i.save_pretrained(path)
    return path


@pytest.fixture
def tiny_t2v(minilm):
    """A pixel-space, flow-matching text-to-video pipeline with random weights (6 frames of 8×8:
    tests/tiny_models.py's TINY_T2V_FRAMES and TINY_T2V_SIZE)."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    from pipelines.t2v import TextToVideoPipeline
    from pipelines.core.text_encoder import MINILM_PACKAGE

    text_encoder, tokenizer = minilm
    return TextToVideoPipeline(transformer=tiny_video_dit(), scheduler=FlowMatchEulerDiscreteScheduler(),
                               text_encoder=text_encoder, tokenizer=tokenizer, text_max_length=16,
                               text_encoder_package=MINILM_PACKAGE, fps=12)


@pytest.fixture(scope="session")
def tiny_t2v_dir(tmp_path_factory):
    """A random pixel-space text-to-video pipeline (4 frames by default, at most 6, of 8×8 at 12 fps),
    saved like the shipped model: without MiniLM (it comes from its package)."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    from dit import VideoDiT
    from pipelines.t2v import TextToVideoPipeline
    from pipelines.core.text_encoder import MINILM_PACKAGE

    transformer = randomize(VideoDiT(sample_size=8, num_frames=6, patch_size=2, hidden_size=32, depth=1, num_heads=2,
                                     text_dim=384, pooled_dim=384, branch_channels=(8,), branch_depths=(1,)), std=0.1)
    pipe = TextToVideoPipeline(transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(),
                               text_max_length=16, text_encoder_package=MINILM_PACKAGE, fps=12, num_frames=4)
    path = tmp_path_factory.mktemp("t2v") / "tiny-t2v"
    pipe.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_t2v_dir):
    """A `--model-dir` for the app: tiny-t2i and tiny-t2v pipeline folders (saved without MiniLM)."""
    import shutil

    from diffusers import FlowMatchEulerDiscreteScheduler

    from pipelines.t2i import TextToImagePipeline
    from pipelines.core.text_encoder import MINILM_PACKAGE

    root = tmp_path_factory.mktemp("models")
    pipe = TextToImagePipeline(transformer=tiny_text_dit(), scheduler=FlowMatchEulerDiscreteScheduler(),
                               text_max_length=16, text_encoder_package=MINILM_PACKAGE)
    pipe.save_pretrained(root / "tiny-t2i")
    shutil.copytree(tiny_t2v_dir, root / "tiny-t2v")
    return root
