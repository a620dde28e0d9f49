"""Export a trained model as a ready pipeline folder (diffusers layout): a `TextToImagePipeline`
for image backbones, a `TextToVideoPipeline` for `VideoDiT`, a `T23DPipeline` for `VoxelDiT`.

The folder holds the transformer, the flow-matching scheduler and, for a latent run (the
config's `vae`), the frozen autoencoder in `vae/` with its `scaling_factor` (and `shift_factor`),
so the pipelines take the same VAE path as for real latent checkpoints. It does not hold MiniLM: its
`model_index.json` names `text_encoder_package`, and `TextToImagePipeline.from_pretrained`
loads the encoder from that package — the shipped model stays a few MiB.

CLI: `python -m training.export --run runs/t2i --out DIR [--weights ema|model] [--sample-shift S]`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

from dit import VideoDiT, VoxelDiT
from pipelines.core.atomic import recover, swap_in, temp_dir_for
from pipelines.t2i.default_model import shapes_pipeline
from pipelines.t23d.default_model import shapes_t23d_pipeline
from pipelines.t2v.default_model import shapes_t2v_pipeline

from .checkpoint import find_checkpoint, load_weights, read_state
from .config import ConfigError, TrainConfig
from .latents import LatentCodec


def make_pipeline(transformer, text_max_length: int, text_encoder=None, tokenizer=None, shift: float = 1.0,
                  vae=None):
    """The flow-matching pipeline inference will use around `transformer` (image, video or point
    cloud); `shift` is the training config's `sampling_shift`; `vae` a latent run's autoencoder
    (None: pixel space; point models have none)."""
    if isinstance(transformer, VoxelDiT):
        if vae is not None:
            raise ConfigError("a point-cloud model (VoxelDiT) takes no autoencoder")
        return shapes_t23d_pipeline(transformer, text_max_length, text_encoder, tokenizer, shift=shift)
    build = shapes_t2v_pipeline if isinstance(transformer, VideoDiT) else shapes_pipeline
    return build(transformer, text_max_length, text_encoder, tokenizer, shift=shift, vae=vae)


def export_pipeline(transformer: torch.nn.Module, out_dir: str | Path, text_max_length: int,
                    shift: float = 1.0, vae=None) -> Path:
    """Write the pipeline folder (with `vae/` when given an autoencoder) atomically (a reader
    never sees a half-written one); returns it."""
    out_dir = Path(out_dir).resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    recover(out_dir, complete_marker="model_index.json")
    tmp = temp_dir_for(out_dir)
    make_pipeline(transformer, text_max_length, shift=shift, vae=vae).save_pretrained(tmp, safe_serialization=True)
    _readable_by_all(tmp)
    swap_in(tmp, out_dir)
    return out_dir


def _readable_by_all(folder: Path) -> None:
    """safetensors (0.8) writes its files 0600; a shipped model must be readable by every user."""
    umask = os.umask(0)
    os.umask(umask)
    for f in folder.rglob("*"):
        if f.is_file():
            f.chmod(0o666 & ~umask)


def export_run(run_dir: str | Path, out_dir: str | Path, weights: str = "ema", shift: float | None = None) -> Path:
    """Export the latest checkpoint of a training run (`ema` or raw `model` weights), with the
    recipe's autoencoder for a latent run; `shift` overrides the recipe's sampler shift
    (`sampling_shift`)."""
    checkpoint = find_checkpoint(run_dir)
    if checkpoint is None:
        raise ConfigError(f"no checkpoint in {str(run_dir)!r} (expected {run_dir}/checkpoint/state.json)")
    if shift is not None and not shift > 0:
        raise ConfigError(f"--sample-shift must be positive, got {shift:g}")
    cfg = TrainConfig.from_dict(read_state(checkpoint)["config"], source=f"{checkpoint}/state.json")
    model = cfg.build_model().eval()
    load_weights(checkpoint, model, weights)
    vae = LatentCodec.from_folder(cfg.vae).vae if cfg.vae else None
    return export_pipeline(model, out_dir, cfg.text_max_length, cfg.sampling_shift if shift is None else shift, vae)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.export", description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="training output folder (holds checkpoint/)")
    parser.add_argument("--out", required=True, help="pipeline folder to write")
    parser.add_argument("--weights", choices=("ema", "model"), default="ema")
    parser.add_argument("--sample-shift", type=float, default=None, metavar="S",
                        help="the exported scheduler's shift (default: the recipe's sample_shift, else sigma_shift)")
    args = parser.parse_args(argv)

    try:
        path = export_run(args.run, args.out, args.weights, args.sample_shift)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"exported {args.weights} weights of {args.run} -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
