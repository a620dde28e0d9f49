"""Training recipes for ditkit's shipped models, on CPU (or any accelerator `accelerate` drives).

One module per job, data flowing one way:
`config` (the recipe as data; `task` t2i or t2v) → `data` (a seeded batch per step: images, or
clips with VDT given-frame masks; in a latent run encoded by `latents`, the frozen autoencoder)
+ `text_cache` (MiniLM embeddings, computed once per caption) → `flow_matching` (the loss) →
`train` (the loop: optimiser, `ema`, `lr_schedule`, `checkpoint`, `run_log`) → `evaluate`
(oracle score of samples) and `export` (a ready `TextToImagePipeline` or `TextToVideoPipeline`
folder, with its `vae/` for a latent run).
"""

from .config import ConfigError, TrainConfig, load_config

__all__ = ["ConfigError", "TrainConfig", "load_config"]
