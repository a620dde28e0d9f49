"""`rasterize`: gsplat's `rasterization` for the subset ditkit uses, on CPU and on CUDA.

The backend follows the tensors: CUDA tensors go to gsplat's fused kernels, anything else to
ditkit's own tiled PyTorch compositor. `backend=` forces one by name (from `BACKENDS`); the
brute-force "reference" and the per-tile "loop" are the twins tests and benchmarks compare
against. Every backend takes the same arguments and returns the same things.
"""

from __future__ import annotations

from typing import Callable

from torch import Tensor

from .projection import project_and_shade
from .raster_loop import composite_loop
from .raster_reference import composite_reference
from .raster_tiles import composite_tiles

RENDER_MODES = ("RGB", "D", "RGB+D")
# each backend's default tile side in pixels (the reference does not tile)
TILE_SIZES = {"torch": 4, "reference": 16, "loop": 16, "gsplat": 16}


def rasterize(
    means: Tensor,  # [N, 3]
    quats: Tensor,  # [N, 4]
    scales: Tensor,  # [N, 3]
    opacities: Tensor,  # [N]
    colors: Tensor,  # [(C,) N, D] or [(C,) N, K, 3]
    viewmats: Tensor,  # [C, 4, 4]
    Ks: Tensor,  # [C, 3, 3]
    width: int,
    height: int,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    eps2d: float = 0.3,
    sh_degree: int | None = None,
    packed: bool = False,
    tile_size: int | None = None,
    backgrounds: Tensor | None = None,  # [C, D]
    render_mode: str = "RGB",
    backend: str | None = None,
) -> tuple[Tensor, Tensor, dict]:
    """Renders N 3D Gaussians into C pinhole cameras, differentiably (gsplat's conventions).

    Args:
        means: centres in world space. [N, 3]
        quats: rotations as wxyz quaternions, not necessarily normalised. [N, 4]
        scales: standard deviations along the rotated axes (activated, i.e. exp of log-scales). [N, 3]
        opacities: activated opacities in [0, 1] (sigmoid of logits). [N]
        colors: post-activation features [N, D] or per camera [C, N, D]; with `sh_degree`, SH
            coefficients [N, K, 3] or [C, N, K, 3] with K ≥ (sh_degree + 1)², turned into
            colour as clamp_min(SH(direction from the camera) + 0.5, 0).
        viewmats: world-to-camera transforms, OpenCV axes (+x right, +y down, +z forward). [C, 4, 4]
        Ks: pinhole intrinsics [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]; pixel centres at +0.5. [C, 3, 3]
        width, height: image size in pixels.
        near_plane, far_plane: Gaussians whose camera-space z is outside are culled.
        eps2d: added to the projected covariance's diagonal (a ~1-pixel low-pass filter).
        sh_degree: None for plain colours, else the SH degree (0..4) to evaluate.
        packed: must be False (per-camera [C, N] layouts, as DefaultStrategy reads them).
        tile_size: tile side in pixels for binning; None takes the backend's own (`TILE_SIZES`:
            16 for gsplat's kernels, 4 for ditkit's CPU compositor, whose dense per-tile
            evaluation wastes less on small tiles: about 2.5× faster than 16 at 10k Gaussians, 256²).
        backgrounds: colour behind the Gaussians, per camera. [C, D]
        render_mode: "RGB" (D channels), "D" (accumulated z-depth Σ wᵢzᵢ, 1 channel) or "RGB+D"
            (both; depth last).
        backend: None picks by device (CUDA → "gsplat", otherwise "torch"); or a name in BACKENDS.

    Compositing is front to back per pixel with gsplat's rules: α = min(0.999, o·exp(−½dᵀΣ₂⁻¹d)),
    skipped below 1/255, and a pixel stops before the Gaussian that would bring its
    transmittance T to 1e-4 or below.

    Returns:
        colors: [C, H, W, X] with X = D, 1 or D + 1 by render_mode.
        alphas: [C, H, W, 1], 1 − T.
        info: dict with gsplat's keys: "width", "height", "n_cameras", "n_batches", "radii"
            [C, N, 2] int32 (0 where culled), "means2d" [C, N, 2] (call `.retain_grad()` before
            backward to read its gradient, as gsplat's DefaultStrategy does), "depths" [C, N],
            "conics" [C, N, 3], "opacities" [C, N], "gaussian_ids"/"camera_ids"/"batch_ids" None
            (not packed), tile fields where the backend tiles, and "backend".
    """
    _check_inputs(means, quats, scales, opacities, colors, viewmats, Ks, width, height, sh_degree, packed,
                  tile_size, backgrounds, render_mode)
    if backend is None:
        backend = "gsplat" if means.device.type == "cuda" else "torch"
    if backend not in BACKENDS:
        raise ValueError(f"unknown rasterize backend {backend!r}; choose one of {sorted(BACKENDS)}")
    if tile_size is None:
        tile_size = TILE_SIZES[backend]
    return BACKENDS[backend](means, quats, scales, opacities, colors, viewmats, Ks, int(width), int(height),
                             near_plane=near_plane, far_plane=far_plane, eps2d=eps2d, sh_degree=sh_degree,
                             tile_size=tile_size, backgrounds=backgrounds, render_mode=render_mode)


def _torch_backend(compositor: Callable, tiled: bool, name: str):
    def render(means, quats, scales, opacities, colors, viewmats, Ks, width, height, *, near_plane, far_plane,
               eps2d, sh_degree, tile_size, backgrounds, render_mode):
        p = project_and_shade(means, quats, scales, opacities, colors, viewmats, Ks, width, height, near_plane,
                              far_plane, eps2d, sh_degree, backgrounds, render_mode)
        args = (p.means2d, p.conics, p.opacities, p.colors, p.radii, p.depths, p.backgrounds, width, height)
        info = dict(batch_ids=None, camera_ids=None, gaussian_ids=None, radii=p.radii, means2d=p.means2d,
                    depths=p.depths, conics=p.conics, opacities=p.opacities, width=width, height=height,
                    n_batches=1, n_cameras=viewmats.shape[0], backend=name)
        if tiled:
            image, alphas, bins = compositor(*args, tile_size=tile_size)
            info.update(tile_size=tile_size, tile_width=bins.tiles_x, tile_height=bins.tiles_y,
                        tiles_per_gauss=bins.tiles_per_gauss, flatten_ids=bins.gaussian_ids,
                        isect_offsets=bins.tile_start.view(-1, bins.tiles_y, bins.tiles_x))
        else:
            image, alphas = compositor(*args)
        return image, alphas, info

    render.__doc__ = f"`rasterize` with projection in PyTorch and the {name!r} compositor."
    return render


def _gsplat_backend(means, quats, scales, opacities, colors, viewmats, Ks, width, height, *, near_plane, far_plane,
                    eps2d, sh_degree, tile_size, backgrounds, render_mode):
    """`rasterize` through gsplat's CUDA kernels (install with `pip install 'ditkit[gpu]'`)."""
    try:
        from gsplat import rasterization
    except ImportError as err:
        raise ImportError("the 'gsplat' rasterize backend needs gsplat: pip install 'ditkit[gpu]'") from err
    image, alphas, info = rasterization(means, quats, scales, opacities, colors, viewmats, Ks, width, height,
                                        near_plane=near_plane, far_plane=far_plane, eps2d=eps2d,
                                        sh_degree=sh_degree, packed=False, tile_size=tile_size,
                                        backgrounds=backgrounds, render_mode=render_mode)
    info["backend"] = "gsplat"
    return image, alphas, info


BACKENDS: dict[str, Callable] = {
    "torch": _torch_backend(composite_tiles, tiled=True, name="torch"),
    "reference": _torch_backend(composite_reference, tiled=False, name="reference"),
    "loop": _torch_backend(composite_loop, tiled=True, name="loop"),
    "gsplat": _gsplat_backend,
}


def _check_inputs(means, quats, scales, opacities, colors, viewmats, Ks, width, height, sh_degree, packed, tile_size,
                  backgrounds, render_mode):
    if means.dim() != 2 or means.shape[-1] != 3:
        raise ValueError(f"means must be [N, 3], got {tuple(means.shape)}")
    N = means.shape[0]
    for name, t, shape in (("quats", quats, (N, 4)), ("scales", scales, (N, 3)), ("opacities", opacities, (N,))):
        if tuple(t.shape) != shape:
            raise ValueError(f"{name} must be {list(shape)} for {N} Gaussians, got {tuple(t.shape)}")
    if viewmats.dim() != 3 or viewmats.shape[1:] != (4, 4):
        raise ValueError(f"viewmats must be [C, 4, 4], got {tuple(viewmats.shape)}")
    C = viewmats.shape[0]
    if tuple(Ks.shape) != (C, 3, 3):
        raise ValueError(f"Ks must be [{C}, 3, 3] for {C} cameras, got {tuple(Ks.shape)}")
    if int(width) <= 0 or int(height) <= 0:
        raise ValueError(f"width and height must be positive, got {width}×{height}")
    if packed:
        raise ValueError("packed=True is not supported; rasterize returns per-camera [C, N] layouts (packed=False)")
    if tile_size is not None and int(tile_size) <= 0:
        raise ValueError(f"tile_size must be positive, got {tile_size}")
    if render_mode not in RENDER_MODES:
        raise ValueError(f"render_mode must be one of {RENDER_MODES}, got {render_mode!r}")
    if sh_degree is None:
        ok = (colors.dim() == 2 and colors.shape[0] == N) or (colors.dim() == 3 and colors.shape[:2] == (C, N))
        if not ok:
            raise ValueError(f"colors must be [N, D] or [C, N, D] with N={N}, C={C}, got {tuple(colors.shape)}")
    else:
        if not 0 <= sh_degree <= 4:
            raise ValueError(f"sh_degree must be in 0..4, got {sh_degree}")
        ok = (colors.dim() == 3 and colors.shape[0] == N) or (colors.dim() == 4 and colors.shape[:2] == (C, N))
        if not ok or colors.shape[-1] != 3 or colors.shape[-2] < (sh_degree + 1) ** 2:
            raise ValueError(f"with sh_degree={sh_degree}, colors must be SH coefficients [N, K, 3] or [C, N, K, 3] "
                             f"with K >= {(sh_degree + 1) ** 2}, got {tuple(colors.shape)}")
    if backgrounds is not None and render_mode != "D":  # "D" composites depth over a zero background
        D = 3 if sh_degree is not None else colors.shape[-1]
        if tuple(backgrounds.shape) != (C, D):
            raise ValueError(f"backgrounds must be [{C}, {D}], got {tuple(backgrounds.shape)}")
