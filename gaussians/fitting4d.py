"""`fit4d`: moving 3D Gaussians (`Gaussians4D`) from frames that each have their own camera and time.

An orbit clip gives one view per time step, so neither the shape nor the motion can be fitted
alone. The fit starts the object's track from its silhouettes and then grows a time window, so
that each new frame is a small step from what is known:

    track start    (`track_from_silhouettes`, for an object on a flat background): translation and
                   scale over time in closed form from the masks (`silhouette.py`); the random
                   initial points fill a ball about the object's first position
    static stage   (`static.steps`): `fit`'s loop (3DGS, plus the silhouette and opacity-entropy
                   terms of `static`) on the frames with t ≤ `static_until`, the track held and the
                   per-Gaussian motion at zero: the canonical Gaussians, i.e. the scene at t = 0
    motion stage   (`motion_steps`): every parameter trains; the window grows linearly to t = 1
                   over the first `window_growth` of the stage and frames are drawn from inside it;
                   the loss adds two regularisers:
        rigidity   · mean_i |μᵢ(t) − μᵢ|²  (each Gaussian's own displacement: motion goes to the
                     shared object track unless it cannot, as in Dynamic 3D Gaussians' rigidity term)
                   + 0.1 × the same on rotation and scale rates
        smoothness · mean |cubic coefficients|²  (per Gaussian and of the track: the smoothest path
                     that explains the frames; a bounce is quadratic and pays nothing)

What the defaults rest on (world orbit clips, 24 frames at 128²; docs/BENCHMARKS.md): a static stage
on every frame smears a spinning object into a round one whose turn the track then never finds,
hence the first third; a slow window leaves the last frames (the far side of the object) barely
fitted, hence 25 %; per-Gaussian paths trained as fast as the track let a growing object's growth
leak into them (a growing torus: the track ended at 1.2× instead of 1.6×, 39 dB against 46), hence
their rates are 10× smaller than the track's and the rigidity weight is high.

Densification (gsplat's DefaultStrategy) runs across both stages on every per-Gaussian tensor, the
motion ones included, so a split Gaussian's halves move alike. Seeded as `fit`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor
from tqdm.auto import tqdm

from .cameras import Cameras
from .fitting import (FitConfig, FitLog, as_images, background_tensor, initial_gaussians, make_optimizers,
                      make_strategy, fit_loss, psnr, random_points, refine, scene_scale)
from .motion import DEGREE, Gaussians4D
from .silhouette import masks_from_background, silhouette_track

MOTION_PARAMS = ("velocities", "rot_rates", "scale_rates")


@dataclass(frozen=True)
class Fit4DConfig:
    """Settings of `fit4d`: the static stage's `FitConfig` (its `steps`), then the motion stage's."""

    static: FitConfig = field(default_factory=lambda: FitConfig(steps=300, refine_stop=1.0, silhouette_weight=0.1,
                                                                opacity_entropy=0.01))
    static_until: float = 0.34  # the static stage fits the frames with t ≤ this
    track_from_silhouettes: bool = True  # start the object track from the frames' masks (flat background)
    init_radius_factor: float = 1.5  # random initial points: a ball this many times the silhouettes' radius
    motion_steps: int = 900
    window_growth: float = 0.25  # the window reaches t = 1 after this fraction of the motion stage
    lr_velocities: float = 2e-4  # × scene scale / 4 (our orbits' scale is 4.4)
    lr_rot_rates: float = 1e-4
    lr_scale_rates: float = 1e-4
    lr_track_rotation: float = 3e-3
    lr_track_log_scale: float = 3e-3
    lr_track_translation: float = 3e-3
    rigidity: float = 10.0
    smoothness: float = 0.01
    refine_until: float = 0.7  # densify until this fraction of the whole run

    def __post_init__(self):
        if not 0 <= self.static_until <= 1:
            raise ValueError(f"static_until must be in [0, 1], got {self.static_until}")
        if self.motion_steps < 0:
            raise ValueError(f"motion_steps must be >= 0, got {self.motion_steps}")
        if not 0 < self.window_growth <= 1:
            raise ValueError(f"window_growth must be in (0, 1], got {self.window_growth}")

    @property
    def steps(self) -> int:
        return self.static.steps + self.motion_steps


def as_times(times, n: int) -> Tensor:
    """Times [n] in [0, 1] as float32."""
    times = torch.as_tensor(times, dtype=torch.float32).flatten()
    if len(times) != n:
        raise ValueError(f"one time per frame: {len(times)} times for {n} frames")
    if not torch.isfinite(times).all() or (times < 0).any() or (times > 1).any():
        raise ValueError("times must be normalised to [0, 1]")
    return times


def fit4d(frames, cameras: Cameras, times, config: Fit4DConfig | None = None, *, points: Tensor | None = None,
          colors: Tensor | None = None, background=(0.0, 0.0, 0.0), seed: int = 0, progress: bool = True,
          callback: Callable[[int, Gaussians4D], None] | None = None, **overrides) -> tuple[Gaussians4D, FitLog]:
    """Fits moving Gaussians to frames with their own cameras and times (see the module docstring).

    Args:
        frames: [F, H, W, 3], float in [0, 1] or uint8; frame i was seen by camera i at time i.
        cameras: F cameras (`Cameras`).
        times: F normalised times in [0, 1] (an orbit clip: i / (F − 1)).
        config: a `Fit4DConfig`; keyword `overrides` replace its fields.
        points, colors, background, seed, progress, callback: as in `fit` (the callback gets the
            `Gaussians4D` being fitted).

    Returns:
        (Gaussians4D, FitLog): the fitted model (`.at(t)` gives the Gaussians at t) and the log.
    """
    config = replace(config or Fit4DConfig(), **overrides)
    frames = as_images(frames)
    if len(cameras) != frames.shape[0] or (cameras.height, cameras.width) != tuple(frames.shape[1:3]):
        raise ValueError(f"one camera of the frames' size per frame: {len(cameras)} cameras of "
                         f"{cameras.width}×{cameras.height} for {frames.shape[0]} frames of "
                         f"{frames.shape[2]}×{frames.shape[1]}")
    times = as_times(times, frames.shape[0])
    static = config.static
    generator = torch.Generator().manual_seed(seed)
    bg = background_tensor(background)
    scale = scene_scale(cameras)
    total = config.steps
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        start = time.perf_counter()
        masks = masks_from_background(frames, bg[0]).float()
        start_track = silhouette_track(masks > 0, cameras, times) \
            if config.track_from_silhouettes else None
        if points is None and start_track is not None:  # random points about the object's first position
            points = start_track.centre + random_points(static.num_points, config.init_radius_factor *
                                                        start_track.radius, generator)
        model = Gaussians4D.still(initial_gaussians(static, generator, points, colors))
        if start_track is not None:
            model.pivot = start_track.centre.clone()
            model.track_translation = start_track.translation.clone()
            model.track_log_scale = start_track.log_scale.clone()
        params = {k: torch.nn.Parameter(v.clone()) for k, v in model.params().items()}
        track = {k: torch.nn.Parameter(v.clone()) for k, v in model.track_params().items()}
        pivot = model.pivot.clone()
        lrs = dict(means=static.lr_means * scale, scales=static.lr_scales, quats=static.lr_quats,
                   opacities=static.lr_opacities, sh0=static.lr_sh0, shN=static.lr_shN,
                   velocities=config.lr_velocities * scale / 4, rot_rates=config.lr_rot_rates,
                   scale_rates=config.lr_scale_rates)
        optimizers = make_optimizers(params, lrs)
        track_optimizers = make_optimizers(track, dict(track_rotation=config.lr_track_rotation,
                                                       track_log_scale=config.lr_track_log_scale,
                                                       track_translation=config.lr_track_translation))
        decay = torch.optim.lr_scheduler.ExponentialLR(
            optimizers["means"], gamma=(static.lr_means_final / static.lr_means) ** (1 / total))
        strategy = make_strategy(replace(static, refine_stop=config.refine_until), total)
        strategy.check_sanity(params, optimizers)
        state = strategy.initialize_state(scene_scale=scale)
        log = FitLog()
        bar = tqdm(range(total), desc="fit4d", disable=not progress, leave=False)
        for step in bar:
            moving = step >= static.steps
            if step == static.steps and start_track is None:  # turn and scale about the centre at t = 0
                with torch.no_grad():
                    weights = torch.sigmoid(params["opacities"])
                    pivot = (params["means"] * weights[:, None]).sum(0) / weights.sum().clamp_min(1e-8)
            view = frame_in_window(times, config, step, generator)
            t = times[view]
            current = Gaussians4D.from_params(params, track, pivot)
            image, alpha, info = current.at(t).render(cameras[view], backgrounds=bg)
            strategy.step_pre_backward(params, optimizers, state, step, info)
            loss = fit_loss(image[0], alpha[0, ..., 0], frames[view], masks[view], params["opacities"], static)
            if moving:
                loss = loss + config.rigidity * rigidity(current, t) + config.smoothness * smoothness(current)
            loss.backward()
            for name, opt in optimizers.items():
                if moving or name not in MOTION_PARAMS:
                    opt.step()
                opt.zero_grad(set_to_none=True)
            for opt in track_optimizers.values():
                if moving:
                    opt.step()
                opt.zero_grad(set_to_none=True)
            decay.step()
            refine(strategy, params, optimizers, state, step, info, static.max_gaussians)
            if step % static.log_every == 0 or step == total - 1:
                value = psnr(image[0], frames[view])
                log.add(step, loss.item(), value, len(params["means"]), "motion" if moving else "static")
                bar.set_postfix(loss=f"{loss.item():.4f}", psnr=f"{value:.1f}", n=len(params["means"]))
            if callback is not None:
                callback(step, current)
        log.seconds = time.perf_counter() - start
    model = Gaussians4D.from_params({k: v.detach() for k, v in params.items()},
                                    {k: v.detach() for k, v in track.items()}, pivot.detach())
    return model, log


def frame_in_window(times: Tensor, config: Fit4DConfig, step: int, generator: torch.Generator) -> int:
    """A frame drawn uniformly among those inside the time window of `step` (the window: t ≤
    `static_until` in the static stage, then growing linearly to 1; never empty)."""
    if step < config.static.steps:
        end = config.static_until
    else:
        grow = max(1, round(config.window_growth * config.motion_steps))
        end = config.static_until + (1 - config.static_until) * min(1.0, (step - config.static.steps + 1) / grow)
    inside = torch.nonzero(times <= end + 1e-6).flatten()
    if len(inside) == 0:
        inside = torch.argmin(times).view(1)
    return int(inside[torch.randint(len(inside), (1,), generator=generator)].item())


def rigidity(model: Gaussians4D, t: Tensor) -> Tensor:
    """Each Gaussian's own motion at t (apart from the shared track): mean squared displacement, plus
    the rotation and log-scale rates' squares."""
    p = torch.stack([t ** k for k in range(1, DEGREE + 1)])
    displacement = torch.einsum("k,nkd->nd", p, model.velocities)
    return (displacement.pow(2).sum(-1).mean() + 0.1 * model.rot_rates.pow(2).sum(-1).mean()
            + 0.1 * model.scale_rates.pow(2).sum(-1).mean())


def smoothness(model: Gaussians4D) -> Tensor:
    """The squared cubic coefficients, per Gaussian (mean) and of the track."""
    return (model.velocities[:, 2].pow(2).sum(-1).mean() + model.track_rotation[2].pow(2).sum()
            + model.track_log_scale[2].pow(2) + model.track_translation[2].pow(2).sum())
