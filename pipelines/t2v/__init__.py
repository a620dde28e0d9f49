"""Text to video: the pipeline, its loader (ours, Latte, CogVideoX folders), the shipped default
(image first), given and first frames, and the CLI (`python -m pipelines.t2v`)."""

from .default_model import SHIPPED_T2V, load_default_t2v, shapes_t2v_pipeline
from .first_frame import FirstFrameModel
from .loading import load_t2v_pipeline
from .pipeline import TextToVideoPipeline, VideoPipelineOutput

__all__ = ["FirstFrameModel", "TextToVideoPipeline", "VideoPipelineOutput", "load_t2v_pipeline", "load_default_t2v",
           "shapes_t2v_pipeline", "SHIPPED_T2V"]
