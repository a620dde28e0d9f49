"""Train the Shapes World autoencoder: `python -m training.train_autoencoder --config C --out OUT`.

The model is a diffusers `AutoencoderKL`. Why that class: it is the `vae` of every real latent
DiT checkpoint the pipelines load (DiT, PixArt, Latte; SD3/Flux add `shift_factor`), so our
latent models take exactly their path — `vae.encode(x).latent_dist`, `scaling_factor`,
`vae.decode(z / scaling_factor)`; its depth (downsampling factor), widths and latent channels
are config numbers; and the KL term keeps the latents bounded and smooth, which a diffusion
model in its space needs. `AutoencoderTiny` (TAESD) decodes faster but fixes 8x downsampling
and has no KL, and the video autoencoders compress time, which our per-frame (Latte-style)
video model does not want.

Data: world frames rendered on the fly, never stored — still 64x64 images (`world.sample_spec`
+ `world.render_image`) and frames of 16-frame 64x64 clips (`world.sample_video_spec` +
`world.render_video`), every background, training split only. Each step's batch is a pure
function of (seed, step), so a resumed run trains on the batches an uninterrupted one would.

The loop, one optimiser step per iteration:

    x        = batch_for_step(cfg, step)                 # (B, 3, 64, 64) in [-1, 1]
    post     = vae.encode(x).latent_dist                 # diagonal Gaussian, (B, C, h, w)
    x_hat    = vae.decode(post.sample()).sample          # (B, 3, 64, 64)
    loss     = L1 + MSE (+ edge) + kl_weight * KL        # see `autoencoder_loss`
    AdamW step (grad clip; lr warm-up, constant, linear decay at the end) → EMA update
    every log_every steps a row in OUT/log.jsonl; every checkpoint_every_s seconds OUT/checkpoint.pt
    (temp file + os.replace); every eval_every steps PSNR / background noise / template IoU of
    the EMA model on held-out images and frames (training.autoencoder_eval).

The run stops itself at `total_steps` or after `time_budget_s` seconds of training (summed over
resumes), whichever comes first; the lr decay follows whichever is nearer its end, so a run cut
by the clock still ends annealed. At the end (or with `--export`) the EMA weights go to OUT/vae/
(`save_pretrained`, safetensors) with `scaling_factor` = 1 / std of the latents of a fixed
sample of world images and frames (and `shift_factor` = their mean if `shift_latents`).
Re-running the same command resumes from OUT/checkpoint.pt.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import world

from .autoencoder_eval import reconstruction_report

CHECKPOINT, LOG, EXPORT = "checkpoint.pt", "log.jsonl", "vae"


class AutoencoderConfigError(ValueError):
    """An autoencoder recipe that cannot be used: the message names the file and the bad keys/values."""


# ---------------------------------------------------------------------------------- the recipe


@dataclass
class AutoencoderConfig:
    """One autoencoder recipe, read from JSON (e.g. `configs/vae_shapes.json`). `model_kwargs`
    is required; unknown keys are refused (a misspelt key must not silently fall back)."""

    model_kwargs: dict                     # AutoencoderKL(**model_kwargs)
    description: str = ""
    model: str = "AutoencoderKL"           # a diffusers autoencoder class with encode().latent_dist
    # data
    resolution: int = 64                   # image and frame side in pixels
    num_frames: int = 16                   # frames per rendered clip
    batch_size: int = 16
    video_frac: float = 0.5                # share of each batch that is clip frames (the rest stills)
    frames_per_clip: int = 2               # frames drawn from each rendered clip
    # objective
    l1_weight: float = 1.0
    mse_weight: float = 1.0
    edge_weight: float = 0.0               # L1 of the horizontal/vertical pixel differences
    kl_weight: float = 1e-6                # on the KL summed over latent elements against a
                                           # reconstruction loss summed over pixels (SD's convention)
    # optimisation
    lr: float = 1e-3
    warmup_steps: int = 200
    decay_frac: float = 0.2                # linear decay to min_lr_frac over this last share of the run
    min_lr_frac: float = 0.02
    total_steps: int = 100000
    time_budget_s: float = 7200.0          # training seconds (over resumes) after which the run ends
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema_decay: float = 0.999               # 0: no EMA (eval and export the raw weights)
    seed: int = 0
    threads: int = 1                       # torch intra-op threads (the CLI's --threads overrides)
    # bookkeeping
    log_every: int = 50
    checkpoint_every_s: float = 180.0
    eval_every: int = 1000                 # steps; 0: only at the end
    eval_images: int = 64                  # held-out stills in each eval
    eval_clips: int = 16                   # held-out clips in each eval (4 frames each)
    scale_samples: int = 512               # world images + frames the latent statistics are read on
    shift_latents: bool = False            # also store shift_factor = latent mean
    # fine-tuning a trained autoencoder's decoder (the latent space stays the one the DiTs learnt)
    init_from: str | None = None           # a saved autoencoder folder (its vae/) to start from
    train_encoder: bool = True             # False: encoder and quant_conv frozen; export keeps the
                                           # init's scaling_factor / shift_factor exactly
    latent_noise: float = 0.0              # decode latents with Gaussian noise of std U(0, this) added,
                                           # in units of the *scaled* latents (what a DiT draws), so the
                                           # decoder learns to draw near-miss latents as clean shapes

    @classmethod
    def from_dict(cls, data: dict, source: str = "<dict>") -> "AutoencoderConfig":
        """Checked construction: unknown or missing keys and bad values raise an error naming them."""
        if not isinstance(data, dict):
            raise AutoencoderConfigError(f"{source}: expected a JSON object, got {type(data).__name__}")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise AutoencoderConfigError(f"{source}: unknown key(s) {unknown}; known keys are {sorted(fields)}")
        if "model_kwargs" not in data:
            raise AutoencoderConfigError(f"{source}: missing required key 'model_kwargs'")
        cfg = cls(**data)
        cfg.validate(source)
        return cfg

    def validate(self, source: str = "<config>") -> None:
        """Range checks, and that the model class builds from `model_kwargs`."""
        problems = []
        for name in ("resolution", "num_frames", "batch_size", "frames_per_clip", "total_steps", "log_every",
                     "eval_images", "eval_clips", "scale_samples", "threads"):
            value = getattr(self, name)
            if not (isinstance(value, int) and not isinstance(value, bool) and value > 0):
                problems.append(f"{name} must be a positive integer, got {value!r}")
        for name in ("warmup_steps", "eval_every", "seed"):
            value = getattr(self, name)
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
                problems.append(f"{name} must be a non-negative integer, got {value!r}")
        for name in ("video_frac", "decay_frac", "min_lr_frac", "ema_decay"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0 <= value <= 1):
                problems.append(f"{name} must be in [0, 1], got {value!r}")
        for name in ("l1_weight", "mse_weight", "edge_weight", "kl_weight", "weight_decay"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value >= 0):
                problems.append(f"{name} must be >= 0, got {value!r}")
        if not (isinstance(self.latent_noise, (int, float)) and self.latent_noise >= 0):
            problems.append(f"latent_noise must be >= 0, got {self.latent_noise!r}")
        if self.init_from is not None and not (Path(self.init_from) / "config.json").is_file():
            problems.append(f"init_from {self.init_from!r} is not a saved autoencoder folder (no config.json)")
        if self.latent_noise and self.init_from is None:
            problems.append("latent_noise needs init_from: its unit is the trained autoencoder's scaled latent")
        if not self.train_encoder and self.init_from is None:
            problems.append("train_encoder false needs init_from: a frozen encoder must be a trained one")
        for name in ("lr", "time_budget_s", "grad_clip", "checkpoint_every_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value > 0):
                problems.append(f"{name} must be positive, got {value!r}")
        if not problems:
            try:
                model = self.build_model()
            except (TypeError, ValueError, AttributeError) as err:
                problems.append(f"model_kwargs do not build {self.model}: {err}")
            else:
                factor = self.downsampling(model)
                if self.resolution % factor:
                    problems.append(f"resolution {self.resolution} is not a multiple of the model's "
                                    f"downsampling factor {factor}")
        if problems:
            raise AutoencoderConfigError(f"{source}: " + "; ".join(problems))

    def build_model(self):
        """A freshly initialised autoencoder (seeded by `seed`)."""
        import diffusers

        cls = getattr(diffusers, str(self.model), None)
        if cls is None:
            raise ValueError(f"diffusers has no class {self.model!r}")
        torch.manual_seed(self.seed)
        model = cls(**self.model_kwargs)
        if self.init_from is not None:
            trained = cls.from_pretrained(self.init_from)
            model.load_state_dict(trained.state_dict())
            model.register_to_config(scaling_factor=trained.config.scaling_factor,
                                     shift_factor=trained.config.shift_factor)
        return model

    @staticmethod
    def downsampling(model) -> int:
        """Pixels per latent cell along a side: 2 ** (number of down blocks - 1)."""
        return 2 ** (len(model.config.block_out_channels) - 1)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def load_autoencoder_config(path: str | Path) -> AutoencoderConfig:
    """Read and check a JSON recipe; a missing file or bad JSON raises an error naming it."""
    path = Path(path)
    if not path.is_file():
        raise AutoencoderConfigError(f"config file {str(path)!r} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise AutoencoderConfigError(f"{path}: not valid JSON ({err})") from err
    return AutoencoderConfig.from_dict(data, source=str(path))


# ---------------------------------------------------------------------------------- data


def world_frames(rng: np.random.Generator, n_images: int, n_clips: int, frames_per_clip: int, split: str,
                 resolution: int, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Still images and clip frames of `split`: uint8 (N, H, W, 3) and whether each is upright
    (not a spinning frame), N = n_images + n_clips * frames_per_clip."""
    frames, upright = [], []
    for _ in range(n_images):
        frames.append(world.render_image(world.sample_spec(rng, split), resolution, rng))
        upright.append(True)
    for _ in range(n_clips):
        spec = world.sample_video_spec(rng, split)
        clip = world.render_video(spec, num_frames=num_frames, resolution=resolution, rng=rng)
        for t in rng.choice(num_frames, size=min(frames_per_clip, num_frames), replace=False):
            frames.append(clip[t])
            upright.append(spec.motion != "spinning")
    return np.stack(frames), np.array(upright)


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float (N, 3, H, W) in [-1, 1]."""
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """float (N, 3, H, W) in [-1, 1] -> uint8 (N, H, W, 3), as a viewer would see it."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def batch_for_step(cfg: AutoencoderConfig, step: int) -> torch.Tensor:
    """The training batch of `step` (1-based): (B, 3, H, W) in [-1, 1], a function of (seed, step)."""
    rng = np.random.default_rng([cfg.seed, step])
    n_clips = math.ceil(cfg.batch_size * cfg.video_frac / cfg.frames_per_clip)
    n_images = max(cfg.batch_size - n_clips * cfg.frames_per_clip, 0)
    frames, _ = world_frames(rng, n_images, n_clips, cfg.frames_per_clip, "train", cfg.resolution, cfg.num_frames)
    return to_tensor(frames[:cfg.batch_size])


def eval_set(cfg: AutoencoderConfig) -> tuple[np.ndarray, np.ndarray]:
    """The fixed held-out eval frames: `eval_images` stills and 4 frames of each of `eval_clips` clips."""
    rng = np.random.default_rng([cfg.seed, 10 ** 9])
    return world_frames(rng, cfg.eval_images, cfg.eval_clips, 4, "heldout", cfg.resolution, cfg.num_frames)


# ---------------------------------------------------------------------------------- objective


def autoencoder_loss(vae, x: torch.Tensor, cfg: AutoencoderConfig, generator=None) -> tuple[torch.Tensor, dict]:
    """Reconstruction of a sampled latent; returns the loss and its parts (floats).

    L1 and MSE are means over pixels; KL (diffusers' `DiagonalGaussianDistribution.kl`, summed
    over latent elements) is divided by the number of pixel values, so `kl_weight` means what
    SD's 1e-6 means against its pixel-summed reconstruction loss.
    """
    with torch.set_grad_enabled(cfg.train_encoder and torch.is_grad_enabled()):
        posterior = vae.encode(x).latent_dist
    z = posterior.sample(generator=generator)                        # (B, C, h, w)
    if cfg.latent_noise > 0:                                         # std U(0, latent_noise) per sample, scaled units
        sigma = torch.rand(z.shape[0], 1, 1, 1, generator=generator) * cfg.latent_noise
        z = z + sigma / vae.config.scaling_factor * torch.randn(z.shape, generator=generator)
    x_hat = vae.decode(z).sample                                     # (B, 3, H, W)
    parts = {"l1": (x_hat - x).abs().mean(), "mse": F.mse_loss(x_hat, x),
             "kl": posterior.kl().mean() / x[0].numel()}
    loss = cfg.l1_weight * parts["l1"] + cfg.mse_weight * parts["mse"] + cfg.kl_weight * parts["kl"]
    if cfg.edge_weight:
        parts["edge"] = ((x_hat.diff(dim=-1) - x.diff(dim=-1)).abs().mean()
                         + (x_hat.diff(dim=-2) - x.diff(dim=-2)).abs().mean())
        loss = loss + cfg.edge_weight * parts["edge"]
    return loss, {k: float(v.detach()) for k, v in parts.items()}


def lr_at(cfg: AutoencoderConfig, step: int, elapsed: float) -> float:
    """Warm-up, constant, then linear decay to `min_lr_frac` over the last `decay_frac` of the
    run; progress is the larger of the step and the clock fractions."""
    if step <= cfg.warmup_steps:
        return cfg.lr * step / max(cfg.warmup_steps, 1)
    progress = max(step / cfg.total_steps, elapsed / cfg.time_budget_s)
    if cfg.decay_frac <= 0 or progress < 1 - cfg.decay_frac:
        return cfg.lr
    left = max(1 - progress, 0.0) / cfg.decay_frac                    # 1 -> 0 over the decay
    return cfg.lr * (cfg.min_lr_frac + (1 - cfg.min_lr_frac) * left)


# ---------------------------------------------------------------------------------- eval, latents


@torch.no_grad()
def reconstruct(vae, frames: np.ndarray, batch: int = 32) -> np.ndarray:
    """Encode (posterior mode) and decode uint8 frames (N, H, W, 3) -> uint8 (N, H, W, 3)."""
    out = []
    for i in range(0, len(frames), batch):
        x = to_tensor(frames[i:i + batch])
        out.append(to_uint8(vae.decode(vae.encode(x).latent_dist.mode()).sample))
    return np.concatenate(out)


def evaluate(vae, cfg: AutoencoderConfig, frames=None) -> dict:
    """Fidelity on the held-out stills and frames, separately: {"image": {...}, "frame": {...}}."""
    frames, upright = eval_set(cfg) if frames is None else frames
    was_training = vae.training
    vae.eval()
    recon = reconstruct(vae, frames)
    vae.train(was_training)
    k = cfg.eval_images
    return {"image": reconstruction_report(frames[:k], recon[:k], upright[:k]),
            "frame": reconstruction_report(frames[k:], recon[k:], upright[k:])}


@torch.no_grad()
def latent_statistics(vae, cfg: AutoencoderConfig) -> dict:
    """Mean and std of sampled latents of `scale_samples` world images and frames (any split, fixed seed)."""
    rng = np.random.default_rng([cfg.seed, 2 * 10 ** 9])
    n_clips = cfg.scale_samples // 8
    frames, _ = world_frames(rng, cfg.scale_samples - 4 * n_clips, n_clips, 4, "any", cfg.resolution,
                             cfg.num_frames)
    gen = torch.Generator().manual_seed(cfg.seed)
    was_training = vae.training
    vae.eval()
    z = torch.cat([vae.encode(to_tensor(frames[i:i + 64])).latent_dist.sample(generator=gen)
                   for i in range(0, len(frames), 64)])                # (N, C, h, w)
    vae.train(was_training)
    return {"mean": float(z.mean()), "std": float(z.std()),
            "channel_mean": z.mean(dim=(0, 2, 3)).tolist(), "channel_std": z.std(dim=(0, 2, 3)).tolist()}


def export_vae(vae, cfg: AutoencoderConfig, out_dir: Path) -> dict:
    """Write `out_dir/vae/` (diffusers folder, safetensors) with the latent scaling in its config,
    atomically (a temp folder renamed into place); returns the latent statistics."""
    stats = latent_statistics(vae, cfg)
    vae = copy.deepcopy(vae).eval()
    if cfg.train_encoder:
        vae.register_to_config(scaling_factor=1.0 / stats["std"],
                               shift_factor=stats["mean"] if cfg.shift_latents else None,
                               sample_size=cfg.resolution)
    else:  # the latent space is the init's: keep its map exactly (models trained on it stay valid)
        vae.register_to_config(sample_size=cfg.resolution)
    stats["scaling_factor"] = float(vae.config.scaling_factor)
    final = out_dir / EXPORT
    tmp = out_dir / (EXPORT + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    vae.save_pretrained(tmp, safe_serialization=True)
    old = out_dir / (EXPORT + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
    return stats


# ---------------------------------------------------------------------------------- checkpoints, log


def save_checkpoint(out_dir: Path, state: dict) -> None:
    """`OUT/checkpoint.pt`, written to a temp file and swapped in (a kill leaves the old or the new)."""
    tmp = out_dir / (CHECKPOINT + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, out_dir / CHECKPOINT)


def log_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short by a kill
            continue
    return rows


def truncate_log(path: Path, step: int) -> None:
    """Drop rows a killed run wrote after its last checkpoint (those steps are trained again)."""
    if path.is_file():
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in log_rows(path) if r.get("step", 0) <= step),
                       encoding="utf-8")
        os.replace(tmp, path)


def write_log(path: Path, row: dict) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")


# ---------------------------------------------------------------------------------- the loop


def build(cfg: AutoencoderConfig):
    """Model, EMA copy and optimiser of a recipe."""
    vae = cfg.build_model().train()
    if not cfg.train_encoder:
        vae.encoder.requires_grad_(False)
        if getattr(vae, "quant_conv", None) is not None:
            vae.quant_conv.requires_grad_(False)
    ema = copy.deepcopy(vae).eval().requires_grad_(False) if cfg.ema_decay > 0 else None
    optimizer = torch.optim.AdamW([p for p in vae.parameters() if p.requires_grad], lr=cfg.lr,
                                  weight_decay=cfg.weight_decay)
    return vae, ema, optimizer


def train(cfg: AutoencoderConfig, out_dir: str | Path, max_steps: int | None = None, echo=print) -> dict:
    """Train (or resume) into `out_dir` until the step/time budget (or `max_steps` more steps in
    this call, for tests); export at the budget's end. Returns {"step", "elapsed", "losses", "eval"}."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1), encoding="utf-8")
    vae, ema, optimizer = build(cfg)
    step, elapsed, log_path = 0, 0.0, out_dir / LOG
    if (out_dir / CHECKPOINT).is_file():
        state = torch.load(out_dir / CHECKPOINT, weights_only=True)
        if state["config"]["model_kwargs"] != cfg.model_kwargs or state["config"]["model"] != cfg.model:
            raise AutoencoderConfigError(f"{out_dir} holds a checkpoint of a different model; "
                                         "use another --out or delete that folder")
        vae.load_state_dict(state["model"])
        if ema is not None:
            ema.load_state_dict(state["ema"] if state.get("ema") is not None else state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        step, elapsed = state["step"], state["elapsed"]
        truncate_log(log_path, step)
        write_log(log_path, {"kind": "resume", "step": step, "elapsed": elapsed})
        echo(f"resumed from step {step} ({elapsed:.0f} s trained)")
    n_params = sum(p.numel() for p in vae.parameters())
    echo(f"{cfg.model}: {n_params / 1e6:.2f}M parameters, downsampling {cfg.downsampling(vae)}x, "
         f"{cfg.model_kwargs.get('latent_channels')} latent channels; {torch.get_num_threads()} thread(s)")
    eval_frames = eval_set(cfg)

    def checkpoint():
        save_checkpoint(out_dir, {"model": vae.state_dict(), "ema": None if ema is None else ema.state_dict(),
                                  "optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state(),
                                  "step": step, "elapsed": elapsed, "config": cfg.to_dict()})

    def run_eval() -> dict:
        t0 = time.perf_counter()
        result = evaluate(ema if ema is not None else vae, cfg, eval_frames)
        write_log(log_path, {"kind": "eval", "step": step, "elapsed": round(elapsed, 1), **result})
        echo(f"eval step {step}: " + "  ".join(
            f"{k}: psnr {r['psnr']:.2f} iou {r['iou']:.3f} (ref {r['ref_iou']:.3f}) noise {r['noise']:.2f} "
            f"(max {r['noise_max']:.2f}) shape {r['shape_kept']:.2f}" for k, r in result.items())
            + f"  [{time.perf_counter() - t0:.1f} s]")
        return result

    losses, last_eval, window = [], None, []
    done = lambda: step >= cfg.total_steps or elapsed >= cfg.time_budget_s  # noqa: E731
    stop_at = None if max_steps is None else step + max_steps
    last_ckpt = time.perf_counter()
    while not done() and (stop_at is None or step < stop_at):
        t0 = time.perf_counter()
        step += 1
        lr = lr_at(cfg, step, elapsed)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss, parts = autoencoder_loss(vae, batch_for_step(cfg, step), cfg)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = float(torch.nn.utils.clip_grad_norm_(vae.parameters(), cfg.grad_clip))
        optimizer.step()
        if ema is not None:
            decay = min(cfg.ema_decay, (1 + step) / (10 + step))
            with torch.no_grad():
                for e, p in zip(ema.parameters(), vae.parameters()):
                    e.lerp_(p, 1 - decay)
        elapsed += time.perf_counter() - t0
        losses.append(loss.item())
        window.append({"loss": losses[-1], "grad_norm": grad_norm, **parts})
        if step % cfg.log_every == 0 or done():
            mean = {k: float(np.mean([w[k] for w in window])) for k in window[0]}
            write_log(log_path, {"kind": "train", "step": step, "elapsed": round(elapsed, 1), "lr": lr, **mean})
            echo(f"step {step}  loss {mean['loss']:.5f}  l1 {mean['l1']:.5f}  mse {mean['mse']:.6f}  "
                 f"kl {mean['kl']:.4f}  lr {lr:.2e}  {step / max(elapsed, 1e-9):.2f} steps/s")
            window = []
        if (cfg.eval_every and step % cfg.eval_every == 0) and not done():
            last_eval = run_eval()
        if time.perf_counter() - last_ckpt >= cfg.checkpoint_every_s:
            checkpoint()
            last_ckpt = time.perf_counter()
    checkpoint()
    if done():
        last_eval = run_eval()
        stats = export_vae(ema if ema is not None else vae, cfg, out_dir)
        (out_dir / "export.json").write_text(json.dumps({"step": step, "latents": stats, "eval": last_eval},
                                                        indent=1), encoding="utf-8")
        echo(f"exported {out_dir / EXPORT} at step {step}: latent mean {stats['mean']:.4f} std {stats['std']:.4f} "
             f"-> scaling_factor {stats['scaling_factor']:.4f}")
    return {"step": step, "elapsed": elapsed, "losses": losses, "eval": last_eval}


def export_only(cfg: AutoencoderConfig, out_dir: str | Path, echo=print) -> dict:
    """`--export`: the checkpoint's EMA weights to OUT/vae/ now, without training."""
    out_dir = Path(out_dir)
    if not (out_dir / CHECKPOINT).is_file():
        raise FileNotFoundError(f"no checkpoint at {out_dir / CHECKPOINT}")
    state = torch.load(out_dir / CHECKPOINT, weights_only=True)
    vae = cfg.build_model()
    vae.load_state_dict(state["ema"] if state.get("ema") is not None else state["model"])
    result = evaluate(vae, cfg)
    stats = export_vae(vae, cfg, out_dir)
    (out_dir / "export.json").write_text(json.dumps({"step": state["step"], "latents": stats, "eval": result},
                                                    indent=1), encoding="utf-8")
    echo(f"exported {out_dir / EXPORT} from step {state['step']}: {json.dumps(result)}; "
         f"scaling_factor {stats['scaling_factor']:.4f}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="JSON recipe, e.g. configs/vae_shapes.json")
    parser.add_argument("--out", required=True, help="run folder: checkpoint.pt, log.jsonl, vae/")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: the config's)")
    parser.add_argument("--export", action="store_true", help="export the checkpoint to OUT/vae/ and exit")
    parser.add_argument("--time-budget", type=float, default=None,
                        help="override the config's time_budget_s (short measurements)")
    args = parser.parse_args(argv)
    try:
        cfg = load_autoencoder_config(args.config)
        if args.threads is not None:
            cfg = dataclasses.replace(cfg, threads=args.threads)
        if args.time_budget is not None:
            cfg = dataclasses.replace(cfg, time_budget_s=args.time_budget)
        cfg.validate(args.config)
    except AutoencoderConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    os.environ["OMP_NUM_THREADS"] = str(cfg.threads)
    torch.set_num_threads(cfg.threads)
    if args.export:
        export_only(cfg, args.out, echo=lambda m: print(m, flush=True))
    else:
        train(cfg, args.out, echo=lambda m: print(m, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
