"""Training recipes for ditkit's shipped models, on CPU (or any accelerator `accelerate` drives).

One module per job, data flowing one way:
`config` (the recipe as data) → `data` (a seeded batch per step) + `text_cache` (MiniLM
embeddings, computed once per caption) → `flow_matching` (the loss) → `train_t2i` (the loop:
optimiser, `ema`, `lr_schedule`, `checkpoint`, `run_log`) → `evaluate` (oracle score of samples)
and `export` (a ready `TextToImagePipeline` folder).
"""

from .config import ConfigError, TrainConfig, load_config

__all__ = ["ConfigError", "TrainConfig", "load_config"]
