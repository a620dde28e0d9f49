"""Train a Shapes World model: `python -m training.train --config C --out OUT`.

The config's `task` picks the data and the pipeline: "t2i" (images, `TextToImagePipeline`),
"t2v" (clips with VDT given-frame masks, `TextToVideoPipeline`) or "t23d" (world 3D point clouds,
`T23DPipeline`). The loop, step by step (one optimiser step per iteration):

    batch  = batch_for_step(cfg, step, rank)         # images/clips, captions ("" at cfg_dropout), noise, sigma, masks
    cond   = text_cache.lookup(batch.captions)       # MiniLM tokens / mask / pooled, cached per caption
    loss   = flow_matching_loss(model, ...)          # v = noise - x0 at x_t = (1-σ)x0 + σ·noise
                                                     # (clips: given frames clean, loss on the rest)
    AdamW step (grad clip, warm-up lr) → EMA update
    every log_every: a row in OUT/log.jsonl; every checkpoint_every: OUT/checkpoint/ (atomic);
    every eval_every and at the end: oracle score of EMA samples, EMA exported to OUT/pipeline/.

A latent run (the config's `vae`: a diffusers AutoencoderKL folder) encodes each batch with the
frozen autoencoder before the noise is drawn (`training.latents`; clips frame by frame, so VDT's
masks cover latent frames), trains the backbone on the latents, and evaluates and exports
through the autoencoder: samples are decoded before the strict reader sees them, and
OUT/pipeline/ holds it in vae/, as a real latent checkpoint would.

Built on `accelerate.Accelerator`, so `accelerate launch -m training.train …` runs the same
loop on several processes / GPUs (each process draws its own batches; `batch_size` is per
process). Mixed precision is accelerate's: with "bf16" the prepared model's forward runs under
`torch.autocast(<device>, bfloat16)` — on CPU too; `tests/test_training.py` checks that linears
really compute in bf16. On a CPU without bf16 instructions (avx512_bf16 / AMX) that is several
times slower than float32 (docs/BENCHMARKS.md), so the shipped CPU recipe uses "no".

Re-running the same command resumes from OUT/checkpoint/ and reproduces the uninterrupted run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator

from pipelines.core.allocator import keep_freed_memory

from .checkpoint import find_checkpoint, load_checkpoint, read_state, save_checkpoint
from .config import ConfigError, TrainConfig, load_config
from .data import batch_for_step
from .ema import EMA
from .evaluate import evaluate
from .export import export_pipeline
from .flow_matching import flow_matching_loss
from .init_from import init_from_saved, summarise_modules, transplant_from_saved
from .latents import LatentCodec, check_latent_model
from .lr_schedule import build_lr_scheduler, follow_config
from .run_log import RunLog
from .text_cache import TextEmbeddingCache
from .text_stats import fit_text_standardization, training_captions

LOG, PIPELINE, CONFIG = "log.jsonl", "pipeline", "config.json"


@dataclass
class TrainResult:
    """What a call to `train` did: final step, losses of the steps it ran (main process), the
    last evaluation (or None), and the output folder."""

    step: int
    losses: list[float] = field(default_factory=list)
    last_eval: dict | None = None
    out_dir: Path | None = None


def check_resumable(saved: dict, cfg: TrainConfig, out_dir: Path) -> None:
    """A checkpoint only continues the same model in the same space (pixels, or one autoencoder's
    latents); other changes (steps, intervals) are allowed."""
    for key in ("model", "model_kwargs", "vae"):
        if saved.get(key) != getattr(cfg, key):
            raise ConfigError(f"{out_dir} holds a checkpoint of a different model ({key}: {saved.get(key)!r} "
                              f"vs {getattr(cfg, key)!r}); use another --out or delete that folder")


def make_accelerator(cfg: TrainConfig):
    """An Accelerator with the config's mixed precision (bf16 autocasts on CPU as well)."""
    return Accelerator(mixed_precision=cfg.mixed_precision)


def train(cfg: TrainConfig, out_dir: str | Path, max_steps: int | None = None, echo=print,
          accelerator=None, text_cache: TextEmbeddingCache | None = None) -> TrainResult:
    """Train (or resume) into `out_dir` until `total_steps`, or until step `max_steps` if given
    (the lr schedule still spans `total_steps`, so stopping early and resuming changes nothing).

    `text_cache` may be shared between calls (tests); it never changes the numbers.
    """
    out_dir = Path(out_dir)
    accelerator = accelerator or make_accelerator(cfg)
    main = accelerator.is_main_process
    say = echo if main else (lambda *a, **k: None)
    device = accelerator.device
    codec = None
    if cfg.vae:  # a latent run: the frozen autoencoder first, so a model that does not fit it stops here
        codec = LatentCodec.from_folder(cfg.vae)
        check_latent_model(cfg, codec)
        codec.to(device)
    vae = None if codec is None else codec.vae
    encode = None if codec is None else codec.encode

    model = cfg.build_model().train()
    ema = EMA(model, cfg.ema_decay)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=tuple(cfg.adam_betas),
                                  weight_decay=cfg.weight_decay)
    lr_scheduler = build_lr_scheduler(optimizer, cfg.warmup_steps, cfg.total_steps, cfg.lr_schedule,
                                      cfg.decay_steps)
    log = RunLog(out_dir / LOG)

    step, elapsed_before = 0, 0.0
    if main:
        out_dir.mkdir(parents=True, exist_ok=True)
        checkpoint = find_checkpoint(out_dir)  # main first: it repairs an interrupted save
    accelerator.wait_for_everyone()
    if not main:
        checkpoint = find_checkpoint(out_dir)
    if checkpoint is not None:
        check_resumable(read_state(checkpoint)["config"], cfg, out_dir)
        state = load_checkpoint(checkpoint, model, ema.model, optimizer, lr_scheduler)
        follow_config(lr_scheduler, cfg.warmup_steps, cfg.total_steps, cfg.lr_schedule, cfg.decay_steps)
        step, elapsed_before = state["step"], state["elapsed"]
        if main:
            log.truncate_after(step)  # drop rows of steps the killed run did after its checkpoint
            log.write({"kind": "resume", "step": step, "elapsed": round(elapsed_before, 2)})
        say(f"resumed from {checkpoint} at step {step}")
    if main:
        (out_dir / CONFIG).write_text(json.dumps(cfg.to_dict(), indent=1), encoding="utf-8")

    model, optimizer = accelerator.prepare(model, optimizer)
    ema.model.to(device)
    if text_cache is None:
        text_cache = TextEmbeddingCache.from_minilm(cfg.text_max_length)
    elif text_cache.max_length != cfg.text_max_length:
        raise ConfigError(f"text cache pads to {text_cache.max_length} tokens but text_max_length is "
                          f"{cfg.text_max_length}")
    text_cache.text_encoder.to(device)
    if checkpoint is None and cfg.init_from:  # a fresh run from a trained model: weights and text statistics
        raw_model = accelerator.unwrap_model(model)
        left = init_from_saved(raw_model, cfg.init_from)
        ema.model.load_state_dict(raw_model.state_dict())
        say(f"started from the image model at {cfg.init_from} (new: {', '.join(left)})" if left
            else f"continued the model at {cfg.init_from}")
    elif checkpoint is None:  # a fresh run measures its text statistics once; a resumed one has them in the weights
        raw_model = accelerator.unwrap_model(model)
        captions = training_captions(cfg)
        if fit_text_standardization(raw_model, captions, text_cache):
            ema.model.load_state_dict(raw_model.state_dict())
            say(f"text standardization fitted on {len(captions)} training captions")
    if checkpoint is None and cfg.transplant_from:  # then modules that fit from further saved models
        raw_model = accelerator.unwrap_model(model)
        for path in cfg.transplant_from:
            say(f"took from {path}: {summarise_modules(transplant_from_saved(raw_model, path))}")
        ema.model.load_state_dict(raw_model.state_dict())

    stop = min(cfg.total_steps, max_steps) if max_steps is not None else cfg.total_steps
    result = TrainResult(step=step, out_dir=out_dir)
    started = time.perf_counter()
    window_losses, window_time = [], 0.0

    def elapsed() -> float:
        return elapsed_before + time.perf_counter() - started

    def save() -> None:
        if main:
            save_checkpoint(out_dir, accelerator.unwrap_model(model), ema.model, optimizer, lr_scheduler,
                            {"step": step, "elapsed": elapsed(), "config": cfg.to_dict()})
        accelerator.wait_for_everyone()

    def evaluate_and_export() -> None:
        if main:
            t0 = time.perf_counter()
            score = evaluate(ema.model, text_cache.text_encoder, text_cache.tokenizer, cfg, vae=vae)
            export_pipeline(ema.model, out_dir / PIPELINE, cfg.text_max_length, cfg.sampling_shift, vae)
            row = {"kind": "eval", "step": step, **score, "eval_s": round(time.perf_counter() - t0, 2)}
            log.write(row)
            result.last_eval = row
            attrs = " ".join(f"{k} {v:.2f}" for k, v in score.items() if k not in ("n", "joint") and v is not None)
            say(f"eval  step {step:>6}  joint {score['joint']:.3f}  {attrs}  (n={score['n']}, {row['eval_s']:.0f}s)")
        accelerator.wait_for_everyone()

    if step >= stop:
        say(f"nothing to do: checkpoint is at step {step}, stop is {stop}")
        if main and not (out_dir / PIPELINE / "model_index.json").is_file():
            export_pipeline(ema.model, out_dir / PIPELINE, cfg.text_max_length, cfg.sampling_shift, vae)
        return result

    while step < stop:
        step += 1
        t0 = time.perf_counter()
        batch = batch_for_step(cfg, step, accelerator.process_index, encode)
        cond = text_cache.lookup(batch.captions, device)
        given = None if batch.given_mask is None else batch.given_mask.to(device)
        now = cfg.at_step(step)  # the recipe's stage in force
        pair_weight, pair_mask = 0.0, None
        if batch.twins and now.contrast_loss_weight:
            pair_weight = now.contrast_loss_weight
            pair_mask = torch.tensor([c != "" for c in batch.captions[0::2]], device=device)
        loss, _parts = flow_matching_loss(model, batch.x0.to(device), batch.noise.to(device),
                                          batch.sigma.to(device), cond, now.branch_loss_weights, given,
                                          pair_weight, pair_mask)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        lr_scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        ema.update(accelerator.unwrap_model(model), num_updates=step - 1)
        loss_value = accelerator.reduce(loss.detach(), "mean").item()
        window_time += time.perf_counter() - t0
        window_losses.append(loss_value)
        result.losses.append(loss_value)
        result.step = step

        if step % cfg.log_every == 0 or step == stop:
            row = {"kind": "train", "step": step, "loss": sum(window_losses) / len(window_losses),
                   "lr": lr_scheduler.get_last_lr()[0], "steps_per_s": len(window_losses) / window_time,
                   "elapsed": round(elapsed(), 2), "cached_captions": len(text_cache)}
            if main:
                log.write(row)
            say(f"step {step:>6}/{stop}  loss {row['loss']:.4f}  lr {row['lr']:.2e}  "
                f"{row['steps_per_s']:.2f} steps/s  {row['elapsed']:.0f}s")
            window_losses, window_time = [], 0.0
        if step % cfg.checkpoint_every == 0 or step == stop:
            save()
        if (cfg.eval_every and step % cfg.eval_every == 0) or step == stop:
            evaluate_and_export()
    return result


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, help="JSON recipe, e.g. configs/t2i_shapes_latent.json")
    p.add_argument("--out", required=True, help="run folder: log.jsonl, checkpoint/, pipeline/")
    p.add_argument("--max-steps", type=int, default=None,
                   help="stop at this global step (the schedule still spans total_steps); re-run to continue")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.max_steps is not None and args.max_steps <= 0:
            raise ConfigError(f"--max-steps must be positive, got {args.max_steps}")
        cfg = load_config(args.config)
        keep_freed_memory()  # a training step frees and re-allocates the same activations (docs/BENCHMARKS.md)
        train(cfg, args.out, max_steps=args.max_steps, echo=lambda *a: print(*a, flush=True))
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
