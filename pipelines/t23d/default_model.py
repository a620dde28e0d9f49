"""The shipped default text-to-3D model: package data under `pipelines/models/shapes-t23d`, once
trained (`configs/t23d_shapes.json`).

Unlike the image and video models there is no untrained stand-in: a point cloud of noise looks
like an answer, so a checkout without the model says plainly that it is not shipped and how to
make it.
"""

from __future__ import annotations

from pathlib import Path

from diffusers import FlowMatchEulerDiscreteScheduler

from ..core.errors import UserError
from ..core.text_encoder import MINILM_PACKAGE
from .pipeline import T23DPipeline

SHIPPED_T23D = Path(__file__).resolve().parents[1] / "models" / "shapes-t23d"
RECIPE_T23D = "python -m training.train --config configs/t23d_shapes.json --out runs/t23d_shapes"


class ModelNotShipped(UserError):
    """The shipped text-to-3D model is not in this checkout (not trained yet, or package data left out)."""


def shapes_t23d_pipeline(transformer, text_max_length: int = 32, text_encoder=None, tokenizer=None,
                         shift: float = 1.0) -> T23DPipeline:
    """A flow-matching `T23DPipeline` around a Shapes World `VoxelDiT` with MiniLM text.

    Without an encoder the saved folder names MiniLM's package instead of holding its weights,
    and `from_pretrained` brings it back; the training export builds this.
    """
    return T23DPipeline(transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=shift),
                        text_encoder=text_encoder, tokenizer=tokenizer, text_max_length=text_max_length,
                        text_encoder_package=MINILM_PACKAGE)


def load_default_t23d(**components) -> T23DPipeline:
    """The shipped model (with `components` passed to `from_pretrained`, e.g. a shared text
    encoder); `ModelNotShipped` when it is absent, naming the command that trains it."""
    if not (SHIPPED_T23D / "model_index.json").is_file():
        raise ModelNotShipped(
            f"the text-to-3D model is not shipped yet ({SHIPPED_T23D} holds no model_index.json); train it with "
            f"`{RECIPE_T23D}` (about 95 minutes on 2 CPU cores), then copy runs/t23d_shapes/pipeline to {SHIPPED_T23D} "
            f"or pass that folder as the model path")
    return T23DPipeline.from_pretrained(SHIPPED_T23D, **components)
