"""gaussians.rasterize: the tiled CPU compositor against the brute-force reference and the sequential rule.

Invariant: tiling, chunking and the hand-written backward change nothing. On random scenes
(with Gaussians behind the camera, off-screen, huge and tiny, and opaque stacks that make pixels
stop early) the fast backend's images match the reference's to 1e-5 and its gradients to 1e-4
(relative to each gradient's largest entry); the reference matches a literal per-pixel loop of
gsplat's kernel; gradcheck passes in float64.
"""

from __future__ import annotations

import math

import pytest
import torch

from gaussians import Cameras, Gaussians, rasterize
from gaussians.cameras import look_at
from gaussians.rasterization import BACKENDS

PARAMS = ("means", "quats", "scales", "opacities", "colors", "backgrounds")


def random_scene(seed: int, n: int = 240, cameras: int = 2, width: int = 37, height: int = 29,
                 dtype=torch.float32) -> dict:
    """Gaussians around the origin seen by cameras at distance ~3, plus the awkward cases.

    Of the n Gaussians: most are ordinary (random rotation, anisotropic scales, opacity spread
    over (0, 1)); 8 sit behind the first camera, 8 far off-screen, 6 are huge (cover the image),
    8 are tiny (their footprint is eps2d's), and 12 opaque ones stacked on the view axis make
    pixels stop early.
    """
    g = torch.Generator().manual_seed(seed)
    rand = lambda *s: torch.rand(*s, generator=g, dtype=torch.float64)
    randn = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)
    eye0 = torch.tensor([0.0, 0.4, 3.0], dtype=torch.float64)
    means = (rand(n, 3) * 2 - 1) * 1.2
    log_scales = randn(n, 3) * 0.6 - 2.6
    opacity = rand(n) * 0.98 + 0.01
    i = 0
    means[i:i + 8] = eye0 + torch.tensor([0.0, 0.0, 0.5]) + randn(8, 3) * 0.2  # behind camera 0
    i += 8
    means[i:i + 8] = (rand(8, 3) * 2 - 1) + torch.tensor([12.0, 0.0, 0.0])  # off-screen for every camera
    i += 8
    log_scales[i:i + 6] = math.log(2.0) + randn(6, 3) * 0.3  # huge
    i += 6
    log_scales[i:i + 8] = math.log(1e-4)  # tiny
    i += 8
    means[i:i + 12] = torch.stack([randn(12) * 0.05, 0.4 + randn(12) * 0.05, torch.linspace(-0.8, 0.8, 12)], -1)
    log_scales[i:i + 12] = math.log(0.25)
    opacity[i:i + 12] = 0.97  # an opaque stack in front of camera 0: T falls below 1e-4 along these rays
    azimuth = torch.arange(cameras, dtype=torch.float64) * 0.6
    eyes = torch.stack([3 * torch.sin(azimuth), torch.full_like(azimuth, 0.4), 3 * torch.cos(azimuth)], -1)
    viewmats = look_at(eyes, torch.zeros_like(eyes) + torch.tensor([0.0, 0.4, 0.0], dtype=torch.float64))
    f = 0.9 * width
    Ks = torch.tensor([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]], dtype=torch.float64).expand(cameras, 3, 3)
    scene = dict(means=means, quats=randn(n, 4), scales=log_scales.exp(), opacities=opacity, colors=rand(n, 3),
                 viewmats=viewmats, Ks=Ks, backgrounds=rand(cameras, 3))
    scene = {k: v.to(dtype).contiguous() for k, v in scene.items()}
    scene.update(width=width, height=height)
    return scene


def render(scene: dict, backend: str, grads: bool = True, **kwargs):
    """Renders `scene`; with grads, returns the gradients of a fixed random linear loss too."""
    inputs = {k: (v.detach().clone().requires_grad_(grads) if k in PARAMS else v) for k, v in scene.items()}
    image, alpha, info = rasterize(**inputs, backend=backend, **kwargs)
    if not grads:
        return image.detach(), alpha.detach(), None
    g = torch.Generator().manual_seed(123)
    w_img = torch.randn(image.shape, generator=g, dtype=image.dtype)
    w_alpha = torch.randn(alpha.shape, generator=g, dtype=alpha.dtype)
    loss = (image * w_img).mean() + (alpha * w_alpha).mean()
    names = [k for k in PARAMS if inputs.get(k) is not None]
    grads = torch.autograd.grad(loss, [inputs[k] for k in names], allow_unused=True)
    return image.detach(), alpha.detach(), {k: g for k, g in zip(names, grads) if g is not None}


def assert_grads_close(got: dict, want: dict, rtol: float):
    assert got.keys() == want.keys()
    for name, ref in want.items():
        scale = ref.abs().max().item()
        err = (got[name] - ref).abs().max().item()
        assert err <= rtol * max(scale, 1e-12), f"{name}: max error {err:.3g} vs largest gradient {scale:.3g}"


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("backend", ["torch", "loop"])
def test_tiled_compositors_match_the_brute_force_reference(seed, backend):
    scene = random_scene(seed)
    ref_img, ref_alpha, ref_grads = render(scene, "reference")
    img, alpha, grads = render(scene, backend)
    assert (img - ref_img).abs().max() <= 1e-5
    assert (alpha - ref_alpha).abs().max() <= 1e-5
    assert_grads_close(grads, ref_grads, rtol=1e-4)
    # the scene does exercise what it claims: culled Gaussians, pixels that stopped early
    _, _, info = rasterize(**scene, backend="torch")
    assert (info["radii"] == 0).all(-1).sum() >= 16
    assert ref_alpha.max() > 0.999


@pytest.mark.parametrize("tile_size", [1, 4, 7, 16, 40])
def test_any_tile_size_gives_the_same_image(tile_size):
    scene = random_scene(2, dtype=torch.float64)
    ref_img, ref_alpha, ref_grads = render(scene, "reference")
    img, alpha, grads = render(scene, "torch", tile_size=tile_size)
    assert (img - ref_img).abs().max() <= 1e-10
    assert (alpha - ref_alpha).abs().max() <= 1e-10
    assert_grads_close(grads, ref_grads, rtol=1e-9)


@pytest.mark.parametrize("batch_elements", [1, 1 << 11])
def test_batches_of_tiles_of_any_size_give_the_same_image(monkeypatch, batch_elements):
    """Tiles are composited in batches (raster_tiles.BATCH_ELEMENTS, sized for speed); one tile a
    batch, or a few, changes nothing — forward or backward."""
    import gaussians.raster_tiles as raster_tiles

    scene = random_scene(3, dtype=torch.float64)
    want = render(scene, "torch")
    monkeypatch.setattr(raster_tiles, "BATCH_ELEMENTS", batch_elements)
    schedules = []
    schedule = raster_tiles._schedule
    monkeypatch.setattr(raster_tiles, "_schedule", lambda bins: schedules.append(schedule(bins)) or schedules[-1])
    got = render(scene, "torch")
    assert (got[0] - want[0]).abs().max() <= 1e-12 and (got[1] - want[1]).abs().max() <= 1e-12
    assert_grads_close(got[2], want[2], rtol=1e-12)
    # the patched size did split rounds into several batches
    rounds, per_batch = schedules[0]
    assert max(len(tiles) for tiles in rounds) > per_batch


@pytest.mark.parametrize("render_mode", ["RGB", "D", "RGB+D"])
def test_render_modes_sh_and_per_camera_colours(render_mode):
    scene = random_scene(3, n=120, cameras=3, dtype=torch.float64)
    g = torch.Generator().manual_seed(3)
    sh = torch.randn(120, 16, 3, generator=g, dtype=torch.float64) * 0.3
    for colors, sh_degree in [(sh, 3), (sh[:, :4], 1), (torch.rand(3, 120, 5, generator=g, dtype=torch.float64), None)]:
        s = dict(scene, colors=colors)
        if sh_degree is None and render_mode != "D":
            s["backgrounds"] = torch.rand(3, 5, generator=g, dtype=torch.float64)
        ref_img, ref_alpha, ref_grads = render(s, "reference", render_mode=render_mode, sh_degree=sh_degree)
        img, alpha, grads = render(s, "torch", render_mode=render_mode, sh_degree=sh_degree)
        channels = {"RGB": colors.shape[-1] if sh_degree is None else 3, "D": 1}.get(render_mode)
        channels = channels if channels is not None else (colors.shape[-1] if sh_degree is None else 3) + 1
        assert img.shape == (3, scene["height"], scene["width"], channels)
        assert (img - ref_img).abs().max() <= 1e-9 * max(1.0, ref_img.abs().max().item())
        assert_grads_close(grads, ref_grads, rtol=1e-8)


def sequential_pixel(means2d, conics, opacities, colors, depths, visible, px, py, background):
    """gsplat's per-pixel kernel, literally: front to back, skip, stop, composite."""
    T, out = 1.0, torch.zeros(colors.shape[-1], dtype=torch.float64)
    for i in sorted(range(len(depths)), key=lambda i: (float(depths[i]), i)):
        if not visible[i]:
            continue
        dx, dy = float(means2d[i, 0]) - px, float(means2d[i, 1]) - py
        a, b, c = (float(v) for v in conics[i])
        sigma = 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy
        alpha = min(0.999, float(opacities[i]) * math.exp(-sigma))
        if sigma < 0 or alpha < 1 / 255:
            continue
        if T * (1 - alpha) <= 1e-4:
            break
        out += colors[i] * alpha * T
        T *= 1 - alpha
    return out + T * background, 1 - T


def test_reference_is_the_sequential_rule_including_the_early_stop():
    # a stack of 6 opaque Gaussians on the view axis: T = 0.05^k, so pixels near the axis stop
    # before the 4th (T would reach 1.25e-4 · 0.05); a faint wide one behind them is cut off there
    n = 8
    means = torch.tensor([[0.0, 0.0, 0.3 * i] for i in range(n)], dtype=torch.float64)
    means[6] = torch.tensor([0.2, -0.1, 0.1])
    scales = torch.full((n, 3), 0.15, dtype=torch.float64)
    scales[7] = 1.0
    opacities = torch.tensor([0.95] * 6 + [0.5, 0.02], dtype=torch.float64)
    colors = torch.rand(n, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    cams = Cameras.orbit(1, 16, 12, elevation_deg=0.0, dtype=torch.float64)  # on +z: the stack is on the view axis
    bg = torch.tensor([[0.2, 0.4, 0.6]], dtype=torch.float64)
    quats = torch.tensor([[1.0, 0, 0, 0]] * n, dtype=torch.float64)
    args = (means, quats, scales, opacities, colors, cams.viewmats, cams.Ks, 16, 12)
    img, alpha, info = rasterize(*args, backgrounds=bg, backend="reference")
    fast, fast_alpha, _ = rasterize(*args, backgrounds=bg, backend="torch")
    visible = (info["radii"][0] > 0).all(-1)
    stopped = 0
    for y in range(12):
        for x in range(16):
            want, want_alpha = sequential_pixel(info["means2d"][0], info["conics"][0], info["opacities"][0], colors,
                                                info["depths"][0], visible, x + 0.5, y + 0.5, bg[0])
            torch.testing.assert_close(img[0, y, x], want, rtol=0, atol=1e-12)
            torch.testing.assert_close(alpha[0, y, x, 0].item(), want_alpha, rtol=0, atol=1e-12)
            stopped += 1 - want_alpha < 1e-3
    assert stopped > 0, "the scene should make some pixels stop early"
    torch.testing.assert_close(fast, img, rtol=0, atol=1e-12)
    torch.testing.assert_close(fast_alpha, alpha, rtol=0, atol=1e-12)


def test_gradcheck_of_the_hand_written_backward_in_float64():
    torch.manual_seed(0)
    means = torch.tensor([[0.0, 0.0, 0.0], [0.3, 0.2, -0.3], [-0.25, -0.1, 0.2], [0.1, -0.3, 0.4]], dtype=torch.float64)
    quats = torch.randn(4, 4, dtype=torch.float64)
    scales = torch.tensor([[0.3, 0.2, 0.25], [0.2, 0.35, 0.2], [0.15, 0.2, 0.3], [0.25, 0.15, 0.2]],
                          dtype=torch.float64)
    opacities = torch.tensor([0.6, 0.5, 0.7, 0.4], dtype=torch.float64)
    colors = torch.rand(4, 3, dtype=torch.float64)
    bg = torch.rand(2, 3, dtype=torch.float64)
    cams = Cameras.orbit(2, 10, 8, distance=2.5, dtype=torch.float64)

    def f(means, quats, scales, opacities, colors, bg):
        img, alpha, _ = rasterize(means, quats, scales, opacities, colors, cams.viewmats, cams.Ks, 10, 8,
                                  backgrounds=bg, backend="torch", tile_size=4)
        return img, alpha

    inputs = tuple(t.requires_grad_() for t in (means, quats, scales, opacities, colors, bg))
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


def test_info_has_what_defaultstrategy_reads():
    scene = random_scene(4)
    inputs = {k: (v.clone().requires_grad_() if k in PARAMS else v) for k, v in scene.items()}
    C, N = scene["viewmats"].shape[0], scene["means"].shape[0]
    per_backend = {}
    for backend in ("torch", "reference"):
        image, alpha, info = rasterize(**inputs, backend=backend)
        for key in ("width", "height", "n_cameras", "radii", "means2d", "gaussian_ids"):
            assert key in info
        assert (info["width"], info["height"], info["n_cameras"], info["gaussian_ids"]) == (37, 29, C, None)
        assert info["radii"].shape == (C, N, 2) and info["radii"].dtype == torch.int32
        assert info["means2d"].shape == (C, N, 2)
        info["means2d"].retain_grad()
        (image.sum() + alpha.sum()).backward()
        grad = info["means2d"].grad
        culled = (info["radii"] == 0).all(-1)
        assert grad[culled].abs().max() == 0 and grad[~culled].abs().max() > 0
        per_backend[backend] = grad
    torch.testing.assert_close(per_backend["torch"], per_backend["reference"], rtol=1e-4, atol=1e-4)
    # behind camera 0 means culled there
    assert (info["radii"][0, :8] == 0).all()


def test_defaultstrategy_densifies_on_cpu_with_our_info():
    pytest.importorskip("gsplat", reason="gsplat is an optional dependency here (pip install 'ditkit[gpu]')")
    from gsplat.strategy import DefaultStrategy

    cams = Cameras.orbit(2, 24, 24)
    g = Gaussians.from_points(torch.randn(64, 3, generator=torch.Generator().manual_seed(0)) * 0.3,
                              scale=0.08, opacity=0.5)
    params = torch.nn.ParameterDict({k: torch.nn.Parameter(v) for k, v in g.params().items()})
    optimizers = {k: torch.optim.Adam([p], lr=1e-3) for k, p in params.items()}
    strategy = DefaultStrategy(refine_start_iter=0, refine_every=2, grow_grad2d=1e-9, reset_every=1000)
    strategy.check_sanity(params, optimizers)
    state = strategy.initialize_state(scene_scale=1.0)
    target = torch.full((2, 24, 24, 3), 0.8)
    for step in range(3):
        img, _, info = Gaussians.from_params(params).render(cams)
        strategy.step_pre_backward(params, optimizers, state, step, info)
        ((img - target) ** 2).mean().backward()
        strategy.step_post_backward(params, optimizers, state, step, info)
        for opt in optimizers.values():
            opt.step()
            opt.zero_grad()
    assert params["means"].shape[0] > 64  # duplicated / split at step 2


def test_backend_choice_and_errors():
    scene = random_scene(5, n=60)
    assert rasterize(**scene)[2]["backend"] == "torch"  # CPU tensors
    assert set(BACKENDS) >= {"torch", "reference", "loop", "gsplat"}
    with pytest.raises(ValueError, match="unknown rasterize backend 'cuda'"):
        rasterize(**scene, backend="cuda")
    with pytest.raises(ValueError, match="quats must be"):
        rasterize(**dict(scene, quats=scene["quats"][:5]))
    with pytest.raises(ValueError, match="colors must be"):
        rasterize(**dict(scene, colors=scene["colors"][:5]))
    with pytest.raises(ValueError, match="SH coefficients"):
        rasterize(**scene, sh_degree=1)
    with pytest.raises(ValueError, match="backgrounds must be"):
        rasterize(**dict(scene, backgrounds=scene["backgrounds"][:, :2]))
    with pytest.raises(ValueError, match="render_mode"):
        rasterize(**scene, render_mode="ED")
    with pytest.raises(ValueError, match="packed"):
        rasterize(**scene, packed=True)


def test_empty_and_fully_culled_scenes_render_the_background():
    scene = random_scene(6, n=60)
    behind = dict(scene, means=scene["means"] * 0 + torch.tensor([0.0, 0.0, 50.0]))  # behind both cameras
    for s in (behind, dict(scene, means=scene["means"][:0], quats=scene["quats"][:0], scales=scene["scales"][:0],
                           opacities=scene["opacities"][:0], colors=scene["colors"][:0])):
        img, alpha, _ = rasterize(**s)
        assert alpha.abs().max() == 0
        torch.testing.assert_close(img, scene["backgrounds"][:, None, None, :].expand_as(img))


def test_projection_and_sh_follow_gsplats_torch_twin():
    pytest.importorskip("gsplat", reason="gsplat is an optional dependency here (pip install 'ditkit[gpu]')")
    from gsplat.cuda._torch_impl import _eval_sh_bases_fast, _fully_fused_projection, _quat_scale_to_covar_preci

    from gaussians.projection import project
    from gaussians.sh import sh_bases

    scene = random_scene(7, dtype=torch.float64)
    covars, _ = _quat_scale_to_covar_preci(scene["quats"], scene["scales"], compute_preci=False)
    radii, means2d, depths, conics, _ = _fully_fused_projection(
        scene["means"], covars, scene["viewmats"], scene["Ks"], scene["width"], scene["height"])
    ours = project(scene["means"], scene["quats"], scene["scales"], scene["opacities"], scene["viewmats"],
                   scene["Ks"], scene["width"], scene["height"], 0.01, 1e10, 0.3)
    ok = (ours[3] > 0).all(-1)
    assert ok.sum() > 100
    assert ((radii > 0).all(-1) | ~ok).all()  # gsplat's twin keeps at least what we keep
    torch.testing.assert_close(ours[0][ok], means2d[ok])
    torch.testing.assert_close(ours[1][ok], conics[ok])
    torch.testing.assert_close(ours[2][ok], depths[ok])
    dirs = torch.nn.functional.normalize(torch.randn(50, 3, dtype=torch.float64), dim=-1)
    torch.testing.assert_close(sh_bases(4, dirs), _eval_sh_bases_fast(25, dirs))


@pytest.mark.parametrize("tile_size", [4, 16])
def test_ellipse_binning_keeps_every_useful_pair_and_drops_many_useless_ones(tile_size):
    from gaussians.binning import bin_tiles
    from gaussians.projection import project

    scene = random_scene(8, n=400, width=64, height=48)
    means2d, conics, depths, radii, opacities = project(scene["means"], scene["quats"], scene["scales"],
                                                        scene["opacities"], scene["viewmats"], scene["Ks"], 64, 48,
                                                        0.01, 1e10, 0.3)
    boxes = bin_tiles(means2d, radii, depths, 64, 48, tile_size)
    ellipses = bin_tiles(means2d, radii, depths, 64, 48, tile_size, conics, opacities)

    def pairs(bins):
        tiles = torch.repeat_interleave(torch.arange(bins.n_tiles), bins.tile_count)
        return set(zip(tiles.tolist(), bins.gaussian_ids.tolist()))

    # useful: some pixel centre of the tile has alpha ≥ 1/255 (evaluated densely)
    C, N = depths.shape
    ys, xs = torch.meshgrid(torch.arange(48) + 0.5, torch.arange(64) + 0.5, indexing="ij")
    dx = xs.reshape(1, -1, 1) - means2d[:, None, :, 0]  # [C, H·W, N]
    dy = ys.reshape(1, -1, 1) - means2d[:, None, :, 1]
    a, b, c = conics[:, None].unbind(-1)
    alpha = opacities[:, None] * torch.exp(-(0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy))
    hit = (alpha >= 1 / 255) & (radii > 0).all(-1)[:, None]
    tile_of_pixel = ((ys // tile_size) * boxes.tiles_x + xs // tile_size).long().reshape(-1)
    useful = set()
    for cam, p, n in torch.nonzero(hit).tolist():
        useful.add((cam * boxes.tiles_x * boxes.tiles_y + int(tile_of_pixel[p]), cam * N + n))
    assert useful <= pairs(ellipses) <= pairs(boxes)
    assert len(pairs(ellipses)) < {4: 0.75, 16: 0.9}[tile_size] * len(pairs(boxes))  # the point of it
    # each tile's list stays front to back
    for bins in (boxes, ellipses):
        d = depths.reshape(-1)[bins.gaussian_ids]
        for start, count in zip(bins.tile_start.tolist(), bins.tile_count.tolist()):
            assert (d[start:start + count].diff() >= 0).all()
