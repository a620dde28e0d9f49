"""Text to image: the pipeline, its loader (ours, PixArt, DiT folders), the shipped default, the CLI
(`python -m pipelines.t2i`) and the sample grid (`python -m pipelines.t2i.sample_grid`)."""

from .default_model import SHIPPED_T2I, load_default_t2i, shapes_pipeline
from .loading import load_t2i_pipeline
from .pipeline import ImagePipelineOutput, TextToImagePipeline

__all__ = ["ImagePipelineOutput", "TextToImagePipeline", "load_t2i_pipeline", "load_default_t2i", "shapes_pipeline",
           "SHIPPED_T2I"]
