"""Benchmark VideoDiT presets: size, batch-2 forward latency, training steps/s and a short
training-loss comparison between attention layouts, all on Shapes World clips.

    python -m bench.video_dit [--preset shapes-pixel] [--layouts factorised,full] [--threads 2]
                              [--train-steps 30] [--batch 16]

Wall times are min and median over repeats; on a shared machine the median is the honest
number and the minimum approaches the unshared one. The loss comparison trains each layout
from the same seed on the same batches and masks, then scores a fixed held-out batch at fixed
noise levels.

On a machine another job keeps busy, run with OMP_WAIT_POLICY=PASSIVE: OpenMP's default
spin-waiting made a 2-thread forward ~5x slower there (0.52 s vs 0.11 s median).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from bench.common import timed
from dit import VIDEO_DIT_PRESETS, VideoDiT, video_dit_config
from dit.video_masks import masked_loss, sample_frame_masks
from pipelines.core.text_encoder import encode_text, load_minilm
from world.dataset import make_video_batch


def text_batch(captions: list[str], encoder) -> dict:
    hidden, mask, pooled = encode_text(*encoder, captions, 32)
    return {"encoder_hidden_states": hidden, "encoder_attention_mask": mask, "pooled_text": pooled}


def clip_batch(n: int, seed: int, cfg: dict, encoder):
    """World clips as model input (B, C, F, H, W) in [-1, 1] and their text kwargs."""
    clips, captions, _ = make_video_batch(n, cfg["sample_size"], cfg["num_frames"], seed)
    return clips.transpose(1, 2).contiguous(), text_batch(captions, encoder)


def video_loss(model, x0, cond, sigma, noise, given) -> torch.Tensor:
    """Rectified-flow loss on generated positions; given frames enter clean; branches learn pooled targets."""
    s = sigma.view(-1, 1, 1, 1, 1)
    keep = given[:, None, :, None, None]
    x_t = torch.where(keep, x0, (1 - s) * x0 + s * noise)
    out = model(x_t, sigma * 1000, **cond, given_mask=given)
    target = noise - x0
    loss = masked_loss(out.sample, target, given)
    for weight, pred in zip((0.25, 0.25, 0.5), out.branch_samples or []):  # the pixel recipe's weights (configs/t2v_shapes_fast.json)
        k = target.shape[-1] // pred.shape[-1]
        pooled = F.avg_pool3d(target, (1, k, k))
        loss = loss + weight * masked_loss(pred, pooled, given)
    return loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="shapes-pixel",
                        help="a pixel-space VideoDiT preset (dit.VIDEO_DIT_PRESETS; the clips are world RGB clips)")
    parser.add_argument("--layouts", default="factorised,full")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--train-steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    if args.preset not in VIDEO_DIT_PRESETS or VIDEO_DIT_PRESETS[args.preset]["in_channels"] != 3:
        pixel = [name for name, cfg in VIDEO_DIT_PRESETS.items() if cfg["in_channels"] == 3]
        parser.error(f"--preset {args.preset!r}: this bench trains on world RGB clips; use a pixel-space preset: {pixel}")
    torch.set_num_threads(args.threads)

    encoder = load_minilm()
    layouts = args.layouts.split(",")
    configs = {layout: video_dit_config(args.preset, attention_layout=layout) for layout in layouts}
    models = {}
    for layout, cfg in configs.items():
        torch.manual_seed(0)
        models[layout] = VideoDiT(**cfg).eval()
    x2, cond2 = clip_batch(2, 1, configs[layouts[0]], encoder)
    walls = {layout: [] for layout in layouts}
    with torch.no_grad():
        for model in models.values():
            model(x2, 500.0, **cond2)
        for _ in range(args.repeats):  # round robin, so contention hits every layout alike
            for layout, model in models.items():
                walls[layout] += timed(lambda: model(x2, 500.0, **cond2), 1)
    for layout, model in models.items():
        params, wall = sum(p.numel() for p in model.parameters()), walls[layout]
        print(f"[{layout}] params {params / 1e6:.2f}M = {params * 4 / 2**20:.1f} MiB fp32 | batch-2 forward "
              f"min {min(wall):.3f}s median {statistics.median(wall):.3f}s "
              f"→ 25 steps with CFG ≈ {25 * statistics.median(wall):.1f}s", flush=True)

    for layout, model in models.items():
        cfg = configs[layout]
        if not args.train_steps:
            continue
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
        g = torch.Generator().manual_seed(0)
        step_times, losses = [], []
        for step in range(args.train_steps):
            x0, cond = clip_batch(args.batch, 100 + step, cfg, encoder)
            given = sample_frame_masks(args.batch, cfg["num_frames"], g)
            sigma = torch.sigmoid(torch.randn(args.batch, generator=g))
            noise = torch.randn(x0.shape, generator=g)
            start = time.perf_counter()
            loss = video_loss(model, x0, cond, sigma, noise, given)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step_times.append(time.perf_counter() - start)
            losses.append(loss.item())
        model.eval()
        x0, cond = clip_batch(32, 999, cfg, encoder)
        gen = torch.Generator().manual_seed(999)
        sigma = torch.linspace(0.05, 0.95, 32)
        noise = torch.randn(x0.shape, generator=gen)
        with torch.no_grad():
            held_out = video_loss(model, x0, cond, sigma, noise, torch.zeros(32, cfg["num_frames"], dtype=torch.bool))
        rate = 1 / statistics.median(step_times[1:] or step_times)
        print(f"[{layout}] train batch {args.batch}: {rate:.2f} steps/s (median; best "
              f"{1 / min(step_times):.2f}) | loss first 5 {statistics.mean(losses[:5]):.4f} last 5 "
              f"{statistics.mean(losses[-5:]):.4f} | held-out loss {held_out.item():.4f}", flush=True)


if __name__ == "__main__":
    main()
