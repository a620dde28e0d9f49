"""gsplat's CUDA kernels against ditkit's CPU rasteriser: the same scenes, compared and timed.

    python -m bench.gaussians_gpu          # on a machine with a CUDA device and gsplat (pip install 'ditkit[gpu]')

Each scene is rendered by `gaussians.rasterize` twice: on CPU tensors (ditkit's compositor) and
on CUDA copies (gsplat's `rasterization`). Checks: images and alphas within 1e-3 mean absolute
difference, and the gradients of one fixed random linear loss with respect to every input
within 1e-3 relative (‖g_gsplat − g_ditkit‖ / ‖g_ditkit‖). The first gsplat call compiles its
CUDA extension if no prebuilt one is installed (minutes); that call is not timed. Exit status:
0 when every check passes, 1 when one fails, 2 when this machine cannot run it.
`tests/test_gaussians_gpu.py` runs the same checks under pytest (skipped without CUDA).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from dataclasses import dataclass

import torch

from bench.gaussians import object_scene
from gaussians import Cameras, rasterize
from gaussians.cameras import look_at

PARAMS = ("means", "quats", "scales", "opacities", "colors", "backgrounds")
IMAGE_TOL = 1e-3  # mean absolute difference
GRAD_TOL = 1e-3  # relative, normwise


def awkward_scene(n: int = 500, cameras: int = 3, width: int = 64, height: int = 48, seed: int = 0) -> dict:
    """Random Gaussians plus the awkward ones: behind a camera, off-screen, huge, tiny, an opaque stack."""
    g = torch.Generator().manual_seed(seed)
    means = (torch.rand(n, 3, generator=g) * 2 - 1) * 1.2
    log_scales = torch.randn(n, 3, generator=g) * 0.6 - 2.6
    opacities = torch.rand(n, generator=g) * 0.98 + 0.01
    means[:8] = torch.tensor([0.0, 0.4, 3.5]) + torch.randn(8, 3, generator=g) * 0.2  # behind camera 0
    means[8:16] += torch.tensor([12.0, 0.0, 0.0])  # off-screen
    log_scales[16:22] = math.log(2.0)  # huge
    log_scales[22:30] = math.log(1e-4)  # tiny
    means[30:42] = torch.stack([torch.zeros(12), torch.full((12,), 0.4), torch.linspace(-0.8, 0.8, 12)], -1)
    log_scales[30:42], opacities[30:42] = math.log(0.25), 0.97  # an opaque stack: pixels stop early
    azimuth = torch.arange(cameras) * 0.6
    eyes = torch.stack([3 * torch.sin(azimuth), torch.full_like(azimuth, 0.4), 3 * torch.cos(azimuth)], -1)
    viewmats = look_at(eyes, torch.tensor([0.0, 0.4, 0.0]).expand(cameras, 3))
    f = 0.9 * width
    Ks = torch.tensor([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]]).expand(cameras, 3, 3).contiguous()
    return dict(means=means, quats=torch.randn(n, 4, generator=g), scales=log_scales.exp(), opacities=opacities,
                colors=torch.rand(n, 3, generator=g), viewmats=viewmats, Ks=Ks, width=width, height=height,
                backgrounds=torch.rand(cameras, 3, generator=g))


def sh_scene(n: int = 2000, size: int = 128, seed: int = 1) -> dict:
    """An object with degree-3 SH colour seen by 4 orbit cameras, over a background."""
    scene = object_scene(n, seed)
    cams = Cameras.orbit(4, size, size)
    g = torch.Generator().manual_seed(seed)
    return dict(scene, colors=torch.randn(n, 16, 3, generator=g) * 0.3, sh_degree=3, viewmats=cams.viewmats,
                Ks=cams.Ks, width=size, height=size, backgrounds=torch.rand(4, 3, generator=g))


def scenes(quick: bool = False) -> dict[str, tuple[dict, dict]]:
    """name → (scene, extra rasterize arguments)."""
    out = {
        "awkward 500, 3 cams, 64×48": (awkward_scene(), {}),
        "awkward 500, RGB+D": (awkward_scene(seed=2), {"render_mode": "RGB+D"}),
        "SH deg 3, 2k, 4 cams, 128²": (sh_scene(), {}),
    }
    if not quick:
        out["object 10k, 1 cam, 256²"] = (object_scene(10_000), {})
        out["object 100k, 1 cam, 256²"] = (object_scene(100_000), {})
    return out


def render(scene: dict, extra: dict, backend: str, device: str):
    """(image, alpha, gradients, forward s, forward+backward s) on one backend."""
    inputs = {k: (v.detach().to(device).clone().requires_grad_() if k in PARAMS else
                  v.to(device) if torch.is_tensor(v) else v) for k, v in scene.items()}
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def forward():
        return rasterize(**inputs, **extra, backend=backend)

    def loss_of(image, alpha):
        g = torch.Generator().manual_seed(123)
        w_image = torch.randn(image.shape, generator=g).to(device)
        w_alpha = torch.randn(alpha.shape, generator=g).to(device)
        return (image * w_image).mean() + (alpha * w_alpha).mean()

    def forward_backward():
        image, alpha, _ = forward()
        names = [k for k in PARAMS if k in inputs]
        return torch.autograd.grad(loss_of(image, alpha), [inputs[k] for k in names], allow_unused=True), names

    def timed(fn, repeats=3):
        fn()
        sync()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    image, alpha, _ = forward()
    grads, names = forward_backward()
    grads = {k: g.detach().cpu() for k, g in zip(names, grads) if g is not None}
    return image.detach().cpu(), alpha.detach().cpu(), grads, timed(forward), timed(forward_backward)


@dataclass
class Row:
    name: str
    image_err: float
    alpha_err: float
    grad_err: dict
    ditkit_ms: tuple
    gsplat_ms: tuple

    @property
    def ok(self) -> bool:
        return self.image_err <= IMAGE_TOL and self.alpha_err <= IMAGE_TOL and \
            all(e <= GRAD_TOL for e in self.grad_err.values())


def compare(name: str, scene: dict, extra: dict) -> Row:
    img_c, a_c, g_c, f_c, b_c = render(scene, extra, "torch", "cpu")
    img_g, a_g, g_g, f_g, b_g = render(scene, extra, "gsplat", "cuda")
    grad_err = {k: ((g_g[k] - g_c[k]).norm() / g_c[k].norm().clamp_min(1e-30)).item() for k in g_c}
    return Row(name, (img_g - img_c).abs().mean().item(), (a_g - a_c).abs().mean().item(), grad_err,
               (f_c * 1e3, b_c * 1e3), (f_g * 1e3, b_g * 1e3))


def run_all(quick: bool = False) -> list[Row]:
    return [compare(name, scene, extra) for name, (scene, extra) in scenes(quick).items()]


def print_table(rows: list[Row]) -> None:
    print("| scene | image mean \\|Δ\\| | alpha mean \\|Δ\\| | worst gradient rel. error "
          "| ditkit CPU fwd / fwd+bwd ms | gsplat CUDA fwd / fwd+bwd ms | ok |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        worst = max(r.grad_err, key=r.grad_err.get)
        print(f"| {r.name} | {r.image_err:.1e} | {r.alpha_err:.1e} | {r.grad_err[worst]:.1e} ({worst}) | "
              f"{r.ditkit_ms[0]:.1f} / {r.ditkit_ms[1]:.1f} | {r.gsplat_ms[0]:.2f} / {r.gsplat_ms[1]:.2f} | "
              f"{'yes' if r.ok else '**NO**'} |")


def gsplat_unavailable() -> str | None:
    """Why gsplat's kernels cannot run here, or None. Loads (and the first time compiles) its CUDA extension."""
    if not torch.cuda.is_available():
        return "no CUDA device here; nothing to compare"
    try:
        from gsplat.cuda._backend import _C
    except ImportError:
        return "gsplat is not installed (pip install 'ditkit[gpu]')"
    if _C is None:
        return "gsplat's CUDA extension is unavailable (no prebuilt one and no CUDA toolkit to compile it)"
    return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the three small scenes only")
    args = parser.parse_args(argv)
    reason = gsplat_unavailable()
    if reason:
        print(f"bench.gaussians_gpu: {reason}")
        return 2
    import gsplat

    print(f"# gsplat {gsplat.__version__} on {torch.cuda.get_device_name()} against ditkit on "
          f"{torch.get_num_threads()} CPU threads; tolerances: images {IMAGE_TOL} mean abs, "
          f"gradients {GRAD_TOL} relative")
    print()
    rows = run_all(args.quick)
    print_table(rows)
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
