"""Text to 3D: the pipeline (point clouds from a VoxelDiT, coloured when the model is), its loader and
the shipped default; meshes from its points in `pipelines.t23d.mesh`."""

from .default_model import RECIPE_T23D, SHIPPED_T23D, ModelNotShipped, load_default_t23d, shapes_t23d_pipeline
from .loading import load_t23d_pipeline
from .pipeline import T23DPipeline, T23DPipelineOutput

__all__ = ["T23DPipeline", "T23DPipelineOutput", "load_t23d_pipeline", "load_default_t23d", "shapes_t23d_pipeline",
           "ModelNotShipped", "SHIPPED_T23D", "RECIPE_T23D"]
