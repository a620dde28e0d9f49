"""`fit`: 3D Gaussians from posed images, the 3D Gaussian splatting recipe sized for a CPU.

The algorithm is 3DGS's (Kerbl et al. 2023), step for step:

    Gaussians ← random points in a sphere (or a given point cloud), isotropic, opacity 0.1
    for step in 1..steps:
        view ← the next of the training views (a fresh seeded shuffle each pass)
        image, alpha, info ← rasterize(Gaussians, camera[view], background)
        loss ← (1 − λ)·L1(image, target) + λ·(1 − SSIM(image, target)),  λ = 0.2
               [+ w·L1(alpha, mask) for an object on a flat background: `silhouette_weight`]
               [+ w·mean binary entropy of the opacities: `opacity_entropy`]
        backward; Adam step per parameter group (means' rate decays exponentially)
        densify / prune (gsplat's DefaultStrategy: clone small Gaussians and split large ones whose
        screen-space gradient is high, drop transparent or huge ones)

Learning rates are 3DGS's defaults, raised for a run of 600 steps instead of 30k (`FitConfig`):
means 1.6e-4 × scene scale → 1.6e-3, colour (SH DC) 2.5e-3 → 1e-2, scales 5e-3 → 1e-2,
opacities 5e-2 and rotations 1e-3 as they are. The densification schedule is 3DGS's compressed
the same way (from step 100 to 60 % of the run, every 50 steps, instead of 500..15k every 100).
Scene scale is 3DGS's `cameras_extent`: 1.1 × the largest distance of a camera from their mean.

Everything random draws from one seeded generator (initialisation, view order) or from a forked
global RNG seeded the same (gsplat's split), so a seed and the inputs give the same Gaussians.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
from gsplat.strategy import DefaultStrategy
from torch import Tensor
from tqdm.auto import tqdm

from .cameras import Cameras
from .gaussians import Gaussians
from .silhouette import masks_from_background
from .ssim import ssim

PARAM_NAMES = ("means", "scales", "quats", "opacities", "sh0", "shN")


@dataclass(frozen=True)
class FitConfig:
    """Settings of `fit` (3DGS's recipe; see the module docstring for how they relate to its defaults)."""

    steps: int = 600
    num_points: int = 3000  # random initialisation: points uniform in a ball …
    init_radius: float = 1.0  # … of this radius about the origin (world objects lie within ~1.2)
    init_opacity: float = 0.1
    sh_degree: int = 0
    # Adam learning rates; means' is × scene scale and decays exponentially to lr_means_final × scene scale
    lr_means: float = 1.6e-3
    lr_means_final: float = 1.6e-5
    lr_scales: float = 1e-2
    lr_quats: float = 1e-3
    lr_opacities: float = 5e-2
    lr_sh0: float = 1e-2
    lr_shN: float = 1e-2 / 20
    ssim_lambda: float = 0.2
    # weight of L1(rendered alpha, object mask), the masks being where the images differ from the flat
    # `background` (0: off, 3DGS's loss alone; on for an object on a plain background, it clears floaters)
    silhouette_weight: float = 0.0
    # weight of the opacities' mean binary entropy: pushes each Gaussian to opaque or gone, so that a
    # surface is made of opaque Gaussians (what readers of the geometry look at); 0: off, as 3DGS
    opacity_entropy: float = 0.0
    # densification and pruning (gsplat's DefaultStrategy)
    refine_start: int = 100
    refine_stop: float = 0.6  # a fraction of `steps`
    refine_every: int = 50
    grow_grad2d: float = 2e-4
    grow_scale3d: float = 0.01  # × scene scale: smaller Gaussians are cloned, larger ones split
    prune_opa: float = 0.005
    prune_scale3d: float = 0.1  # × scene scale
    max_gaussians: int = 30_000  # growth stops (pruning continues) above this many
    log_every: int = 10

    def __post_init__(self):
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.num_points < 1:
            raise ValueError(f"num_points must be >= 1, got {self.num_points}")
        if not 0 <= self.ssim_lambda <= 1:
            raise ValueError(f"ssim_lambda must be in [0, 1], got {self.ssim_lambda}")
        if not 0 <= self.sh_degree <= 4:
            raise ValueError(f"sh_degree must be in 0..4, got {self.sh_degree}")


@dataclass
class FitLog:
    """What a fit did: every `log_every` steps the step, loss, training-view PSNR (dB) and number of
    Gaussians; the stage of each entry (4D fits have two); total seconds."""

    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    psnrs: list[float] = field(default_factory=list)
    num_gaussians: list[int] = field(default_factory=list)
    stages: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, step: int, loss: float, psnr_db: float, n: int, stage: str) -> None:
        self.steps.append(step)
        self.losses.append(loss)
        self.psnrs.append(psnr_db)
        self.num_gaussians.append(n)
        self.stages.append(stage)

    def as_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------------------------- pieces

def as_images(images) -> Tensor:
    """Images [C, H, W, 3] as float32 in [0, 1] (from float tensors / arrays, or uint8)."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(np.ascontiguousarray(images))
    if not isinstance(images, Tensor):
        raise TypeError(f"images must be a tensor or array [C, H, W, 3], got {type(images).__name__}")
    if images.dim() != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be [C, H, W, 3], got {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        return images.float() / 255
    return images.float().clamp(0, 1)


def check_views(images: Tensor, cameras: Cameras) -> None:
    if len(cameras) != images.shape[0]:
        raise ValueError(f"one camera per image: {len(cameras)} cameras for {images.shape[0]} images")
    if (cameras.height, cameras.width) != tuple(images.shape[1:3]):
        raise ValueError(f"cameras are {cameras.width}×{cameras.height} but the images are "
                         f"{images.shape[2]}×{images.shape[1]}")


def scene_scale(cameras: Cameras) -> float:
    """3DGS's `cameras_extent`: 1.1 × the largest distance of a camera centre from their mean (1.1 for one camera)."""
    centres = cameras.positions.double()
    radius = (centres - centres.mean(0)).norm(dim=-1).max().item()
    return 1.1 * (radius if radius > 0 else 1.0)


def psnr(a: Tensor, b: Tensor) -> float:
    """PSNR in dB of images in [0, 1]."""
    mse = torch.mean((a.detach().clamp(0, 1) - b.detach().clamp(0, 1)) ** 2).item()
    return 10 * math.log10(1 / max(mse, 1e-12))


def photometric_loss(image: Tensor, target: Tensor, ssim_lambda: float) -> Tensor:
    """3DGS's loss: (1 − λ)·L1 + λ·(1 − SSIM)."""
    l1 = (image - target).abs().mean()
    return (1 - ssim_lambda) * l1 + ssim_lambda * (1 - ssim(image, target))


def fit_loss(image: Tensor, alpha: Tensor, target: Tensor, mask: Tensor, opacity_logits: Tensor,
             config: FitConfig) -> Tensor:
    """The photometric loss plus the optional silhouette and opacity-entropy terms of `config`."""
    loss = photometric_loss(image, target, config.ssim_lambda)
    if config.silhouette_weight > 0:
        loss = loss + config.silhouette_weight * (alpha - mask).abs().mean()
    if config.opacity_entropy > 0:
        o = torch.sigmoid(opacity_logits).clamp(1e-6, 1 - 1e-6)
        loss = loss + config.opacity_entropy * (-(o * o.log() + (1 - o) * (1 - o).log())).mean()
    return loss


def random_points(n: int, radius: float, generator: torch.Generator) -> Tensor:
    """n points uniform in the ball of `radius` about the origin [n, 3]."""
    direction = torch.nn.functional.normalize(torch.randn(n, 3, generator=generator), dim=-1)
    return direction * radius * torch.rand(n, 1, generator=generator) ** (1 / 3)


def nearest_neighbour_scale(points: Tensor, k: int = 3) -> Tensor:
    """3DGS's initial scale: the root mean squared distance to the k nearest other points [N]."""
    n = points.shape[0]
    if n < 2:
        return torch.full((n,), 0.01, dtype=points.dtype)
    k = min(k, n - 1)
    out = []
    for chunk in points.split(4096):
        d2 = torch.cdist(chunk, points).pow(2)
        out.append(d2.topk(k + 1, largest=False).values[:, 1:].mean(-1))
    return torch.cat(out).clamp_min(1e-10).sqrt()


def initial_gaussians(config: FitConfig, generator: torch.Generator, points: Tensor | None = None,
                      colors: Tensor | None = None) -> Gaussians:
    """3DGS's initialisation: one isotropic Gaussian per point (random in the ball, or the given cloud),
    scaled by its neighbours' distance, opacity `init_opacity`, random (or the given) colours."""
    if points is None:
        points = random_points(config.num_points, config.init_radius, generator)
    points = torch.as_tensor(points, dtype=torch.float32)
    if points.dim() != 2 or points.shape[1] != 3 or len(points) == 0:
        raise ValueError(f"init points must be [N >= 1, 3], got {tuple(points.shape)}")
    if colors is None:
        colors = torch.rand(len(points), 3, generator=generator)
    colors = torch.as_tensor(colors, dtype=torch.float32)
    if tuple(colors.shape) != (len(points), 3):
        raise ValueError(f"init colors must be [{len(points)}, 3], got {tuple(colors.shape)}")
    g = Gaussians.from_points(points, colors.clamp(0, 1), scale=nearest_neighbour_scale(points),
                              opacity=config.init_opacity, sh_degree=config.sh_degree)
    return g


def make_optimizers(params: dict[str, torch.nn.Parameter], lrs: dict[str, float]) -> dict[str, torch.optim.Adam]:
    """One Adam per parameter (gsplat's layout, which its strategies edit in place), eps 1e-15 as 3DGS."""
    return {name: torch.optim.Adam([{"params": p, "lr": lrs[name], "name": name}], eps=1e-15)
            for name, p in params.items()}


def make_strategy(config: FitConfig, steps: int) -> DefaultStrategy:
    """gsplat's DefaultStrategy with `config`'s schedule (`refine_stop` is a fraction of `steps`)."""
    return DefaultStrategy(prune_opa=config.prune_opa, grow_grad2d=config.grow_grad2d,
                           grow_scale3d=config.grow_scale3d, prune_scale3d=config.prune_scale3d,
                           refine_start_iter=config.refine_start, refine_stop_iter=int(config.refine_stop * steps),
                           refine_every=config.refine_every, reset_every=10 ** 9)


def refine(strategy: DefaultStrategy, params, optimizers, state, step: int, info: dict, max_gaussians: int) -> None:
    """`strategy.step_post_backward`, growing only while there are fewer than `max_gaussians`."""
    n = len(params["means"])
    if n >= max_gaussians and step > strategy.refine_start_iter and step % strategy.refine_every == 0:
        grow = strategy.grow_grad2d
        strategy.grow_grad2d = float("inf")  # prune only this time
        try:
            strategy.step_post_backward(params, optimizers, state, step, info, packed=False)
        finally:
            strategy.grow_grad2d = grow
        return
    strategy.step_post_backward(params, optimizers, state, step, info, packed=False)


def view_order(n_views: int, steps: int, generator: torch.Generator) -> list[int]:
    """The training view of each step: passes over all views, each pass a fresh seeded shuffle."""
    order: list[int] = []
    while len(order) < steps:
        order.extend(torch.randperm(n_views, generator=generator).tolist())
    return order[:steps]


def background_tensor(background, dtype=torch.float32) -> Tensor:
    bg = torch.as_tensor(background if background is not None else (0.0, 0.0, 0.0), dtype=dtype)
    if bg.shape != (3,):
        raise ValueError(f"background must be an RGB triple in [0, 1], got {tuple(bg.shape)}")
    return bg[None]


# ---------------------------------------------------------------------------------------------- fit

def fit(images, cameras: Cameras, config: FitConfig | None = None, *, points: Tensor | None = None,
        colors: Tensor | None = None, background=(0.0, 0.0, 0.0), seed: int = 0, progress: bool = True,
        callback: Callable[[int, Gaussians], None] | None = None, **overrides) -> tuple[Gaussians, FitLog]:
    """Fits 3D Gaussians to posed images (see the module docstring for the algorithm).

    Args:
        images: the training views [C, H, W, 3], float in [0, 1] or uint8 (tensor or array).
        cameras: one camera per image (`Cameras`, C of them, the images' size).
        config: a `FitConfig`; keyword `overrides` replace its fields (`fit(..., steps=300)`).
        points, colors: an initial point cloud [N, 3] and its colours [N, 3] in [0, 1] (random in a
            ball of `init_radius` when None; random colours when `colors` is None).
        background: RGB in [0, 1] behind the Gaussians, as in the images.
        seed: every random choice follows it; the same inputs and seed give the same Gaussians.
        progress: show a tqdm bar.
        callback: called as callback(step, gaussians) after each step (the Gaussians being fitted, as the
            step rendered them).

    Returns:
        (Gaussians, FitLog): the fitted Gaussians (detached, pre-activation parameters) and the log.
    """
    config = replace(config or FitConfig(), **overrides)
    images = as_images(images)
    check_views(images, cameras)
    generator = torch.Generator().manual_seed(seed)
    bg = background_tensor(background)
    masks = masks_from_background(images, bg[0]).float()
    scale = scene_scale(cameras)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        start = time.perf_counter()
        g = initial_gaussians(config, generator, points, colors)
        params = {k: torch.nn.Parameter(v.clone()) for k, v in g.params().items()}
        lrs = dict(means=config.lr_means * scale, scales=config.lr_scales, quats=config.lr_quats,
                   opacities=config.lr_opacities, sh0=config.lr_sh0, shN=config.lr_shN)
        optimizers = make_optimizers(params, lrs)
        decay = torch.optim.lr_scheduler.ExponentialLR(
            optimizers["means"], gamma=(config.lr_means_final / config.lr_means) ** (1 / config.steps))
        strategy = make_strategy(config, config.steps)
        strategy.check_sanity(params, optimizers)
        state = strategy.initialize_state(scene_scale=scale)
        log = FitLog()
        order = view_order(len(cameras), config.steps, generator)
        bar = tqdm(range(config.steps), desc="fit", disable=not progress, leave=False)
        for step in bar:
            view = order[step]
            current = Gaussians.from_params(params)
            image, alpha, info = current.render(cameras[view], backgrounds=bg)
            strategy.step_pre_backward(params, optimizers, state, step, info)
            loss = fit_loss(image[0], alpha[0, ..., 0], images[view], masks[view], params["opacities"], config)
            loss.backward()
            for opt in optimizers.values():
                opt.step()
                opt.zero_grad(set_to_none=True)
            decay.step()
            refine(strategy, params, optimizers, state, step, info, config.max_gaussians)
            if step % config.log_every == 0 or step == config.steps - 1:
                value = psnr(image[0], images[view])
                log.add(step, loss.item(), value, len(params["means"]), "static")
                bar.set_postfix(loss=f"{loss.item():.4f}", psnr=f"{value:.1f}", n=len(params["means"]))
            if callback is not None:
                callback(step, current)
        log.seconds = time.perf_counter() - start
    return Gaussians.from_params({k: v.detach() for k, v in params.items()}), log
