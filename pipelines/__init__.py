"""ditkit pipelines: one sub-package per modality, diffusers-style, plus the machinery they share.

    from pipelines import load_t23d_pipeline, load_t2i_pipeline, load_t2v_pipeline
    image = load_t2i_pipeline()("a small blue square at the bottom").images[0]
    clip = load_t2v_pipeline()("a red circle moving right").frames[0]      # (F, H, W, 3) in [0, 1]
    cloud = load_t23d_pipeline()("a tall red cone")                       # .points[0] (N, 3), .colours[0]

Layout: `pipelines.t2i`, `pipelines.t2v`, `pipelines.t23d` (each: `pipeline`, `loading`,
`default_model`, `cli`, run as `python -m pipelines.<modality>`), and `pipelines.core`, which imports
no modality. Names here load on first use, so `import pipelines` stays cheap.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "TextToImagePipeline": "pipelines.t2i", "ImagePipelineOutput": "pipelines.t2i",
    "load_t2i_pipeline": "pipelines.t2i", "load_default_t2i": "pipelines.t2i",
    "TextToVideoPipeline": "pipelines.t2v", "VideoPipelineOutput": "pipelines.t2v",
    "load_t2v_pipeline": "pipelines.t2v", "load_default_t2v": "pipelines.t2v", "FirstFrameModel": "pipelines.t2v",
    "T23DPipeline": "pipelines.t23d", "T23DPipelineOutput": "pipelines.t23d",
    "load_t23d_pipeline": "pipelines.t23d", "load_default_t23d": "pipelines.t23d",
    "UserError": "pipelines.core.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    """Lazy exports (PEP 562): the modality package is imported when one of its names is first used."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'pipelines' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
