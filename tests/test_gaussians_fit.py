"""Fitting Gaussians: SSIM against a plain twin, the static fit (quality on held-out views, seeds,
densification through gsplat's DefaultStrategy), the 4D model's motion (exact for the world's moves),
the silhouette track, a small 4D fit read back from its .ply sequence, and the sequence files."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import gaussians
from gaussians import (Cameras, Fit4DConfig, FitConfig, Gaussians, Gaussians4D, fit, fit4d, held_out_views,
                       read_ply_sequence, sequence_arrays, ssim, world_clip, write_ply_sequence)
from gaussians.fitting import psnr
from gaussians.projection import quat_to_rotmat
from gaussians.silhouette import masks_from_background, silhouette_track
from gaussians.ssim import C1, C2, gaussian_window
from gaussians.world_render import object_gaussians
from world.objects4d import apply_pose, parse_caption4d, pose_at, sample_object4d
from world.reader4d import read_object4d

pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------------------------------------- SSIM

def ssim_plain(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The textbook SSIM map with one 2D 11×11 window per pixel (no separable filtering), averaged."""
    w1 = gaussian_window(dtype=torch.float64)
    w2 = torch.outer(w1, w1)
    a, b = a.double().permute(2, 0, 1)[:, None], b.double().permute(2, 0, 1)[:, None]  # [C, 1, H, W]

    def blur(x):
        return F.conv2d(x, w2[None, None], padding=5)

    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b, cov = blur(a * a) - mu_a ** 2, blur(b * b) - mu_b ** 2, blur(a * b) - mu_a * mu_b
    return (((2 * mu_a * mu_b + C1) * (2 * cov + C2)) / ((mu_a ** 2 + mu_b ** 2 + C1) * (var_a + var_b + C2))).mean()


def test_ssim_matches_the_plain_twin_and_its_definition():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(24, 20, 3, generator=g)
    b = (a + 0.1 * torch.randn(24, 20, 3, generator=g)).clamp(0, 1)
    torch.testing.assert_close(ssim(a, b).double(), ssim_plain(a, b), atol=1e-6, rtol=0)
    assert ssim(a, a).item() == pytest.approx(1.0, abs=1e-6)
    assert ssim(a, b).item() == pytest.approx(ssim(b, a).item(), abs=1e-7)
    noisier = (a + 0.3 * torch.randn(24, 20, 3, generator=g)).clamp(0, 1)
    assert ssim(a, noisier) < ssim(a, b) < 1
    x = b.clone().requires_grad_()
    (1 - ssim(x, a)).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="shape"):
        ssim(a, b[:-1])


# ---------------------------------------------------------------------------------------------- static fit

@pytest.fixture(scope="module")
def cube_views():
    train = world_clip("a red cube still", n_frames=12, size=40)
    test = held_out_views("a red cube still", n_frames=12, size=40)
    return train, test


def test_static_fit_reproduces_held_out_views(cube_views):
    train, test = cube_views
    seen = []
    g, log = fit(train.frames, train.cameras, steps=250, num_points=800, refine_start=50, refine_every=25,
                 progress=False, callback=lambda step, gs: seen.append((step, len(gs))))
    assert isinstance(g, Gaussians) and not g.means.requires_grad
    with torch.no_grad():
        held_out = [psnr(g.render(test.cameras[i])[0][0], test.frames[i]) for i in range(0, len(test.cameras), 2)]
    assert np.mean(held_out) > 28, held_out
    assert log.steps[0] == 0 and log.steps[-1] == 249 and set(log.stages) == {"static"} and log.seconds > 0
    assert log.psnrs[-1] > log.psnrs[0] + 10
    assert max(log.num_gaussians) > 800  # DefaultStrategy cloned and split
    assert [step for step, _ in seen] == list(range(250)) and seen[0][1] == 800
    assert gaussians.fit is fit  # the package attribute is the function (the CLI module is never imported)


def test_static_fit_is_seed_deterministic(cube_views):
    train, _ = cube_views
    kwargs = dict(steps=40, num_points=300, refine_start=10, refine_every=10, progress=False)
    a, _ = fit(train.frames, train.cameras, seed=3, **kwargs)
    b, _ = fit(train.frames, train.cameras, seed=3, **kwargs)
    c, _ = fit(train.frames, train.cameras, seed=4, **kwargs)
    assert len(a) == len(b)
    for name in ("means", "log_scales", "quats", "opacity_logits", "sh_dc"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert len(a) != len(c) or not torch.equal(a.means, c.means)


def test_silhouette_and_entropy_terms_make_opaque_surfaces(cube_views):
    """On an object on a flat background, the mask term clears what lies outside every silhouette and the
    entropy term pushes each opacity to 0 or 1 (3DGS leaves most Gaussians half transparent)."""
    train, _ = cube_views
    kwargs = dict(steps=300, num_points=600, refine_start=50, refine_every=25, progress=False)
    plain, _ = fit(train.frames, train.cameras, **kwargs)
    sharp, _ = fit(train.frames, train.cameras, silhouette_weight=0.1, opacity_entropy=0.05, **kwargs)

    def undecided(g):  # share of Gaussians with opacity between 0.1 and 0.9
        return ((g.opacities > 0.1) & (g.opacities < 0.9)).float().mean().item()

    assert undecided(sharp) < 0.25 * undecided(plain)


def test_fit_rejects_bad_inputs(cube_views):
    train, _ = cube_views
    with pytest.raises(ValueError, match="one camera per image"):
        fit(train.frames[:5], train.cameras, progress=False)
    with pytest.raises(ValueError, match="steps"):
        fit(train.frames, train.cameras, steps=0, progress=False)
    with pytest.raises(ValueError, match="one time per frame"):
        fit4d(train.frames, train.cameras, train.times[:3], progress=False)


# ---------------------------------------------------------------------------------------------- 4D model

def test_the_track_moves_a_world_object_exactly():
    """The object track reproduces each world motion's similarity transform exactly (translation and bounce:
    polynomials; a quarter turn: a rotation vector linear in t), and growth within 0.1 %."""
    s = sample_object4d("a red cube still", n_frames=2, num_points=256, rng=0)
    rest = torch.from_numpy(s.points[0]).double()
    coefficients = {  # yaw rate of the rotation vector (rad per unit t), translation coefficients of t, t², t³
        "moving right": (0.0, [[1.2, 0, 0], [0, 0, 0], [0, 0, 0]]),
        "bouncing": (0.0, [[0, -1.6, 0], [0, 1.6, 0], [0, 0, 0]]),
        "spinning": (math.pi / 2, [[0, 0, 0]] * 3),
    }
    for motion, (yaw_rate, translation) in coefficients.items():
        start = torch.from_numpy(apply_pose(rest.numpy(), pose_at(motion, 0.0)))
        pivot = torch.tensor(pose_at(motion, 0.0).offset, dtype=torch.float64)  # the object's centre at t = 0
        m = Gaussians4D.still(Gaussians.from_points(start, scale=0.02), pivot=pivot)
        m.track_rotation = torch.tensor([[0, yaw_rate, 0], [0, 0, 0], [0, 0, 0]], dtype=torch.float64)
        m.track_translation = torch.tensor(translation, dtype=torch.float64)
        for t in (0.0, 0.3, 0.5, 1.0):
            expected = apply_pose(rest.numpy(), pose_at(motion, t))
            np.testing.assert_allclose(m.at(t).means.numpy(), expected, atol=1e-9)
    canonical = Gaussians.from_points(rest, scale=0.02)
    # growth is linear in scale, the track's log-scale a cubic: within 0.1 % over the clip
    m = Gaussians4D.still(canonical, pivot=torch.zeros(3, dtype=torch.float64))
    x = torch.linspace(0, 1, 200, dtype=torch.float64)
    basis = torch.stack([x, x ** 2, x ** 3], dim=-1)
    m.track_log_scale = torch.linalg.lstsq(basis, torch.log(1 + 0.6 * x)[:, None]).solution[:, 0]
    for t in (0.25, 0.7, 1.0):
        np.testing.assert_allclose(m.at(t).means.numpy(), apply_pose(rest.numpy(), pose_at("growing", t)), rtol=1e-3,
                                   atol=1e-4)
        assert torch.allclose(m.at(t).log_scales, canonical.log_scales + math.log(1 + 0.6 * t), atol=1e-3)


def test_gaussians4d_paths_and_rotations():
    g = torch.Generator().manual_seed(0)
    n = 20
    canonical = Gaussians(means=torch.randn(n, 3, generator=g), log_scales=torch.randn(n, 3, generator=g) - 3,
                          quats=torch.randn(n, 4, generator=g), opacity_logits=torch.randn(n, generator=g),
                          sh_dc=torch.randn(n, 3, generator=g))
    m = Gaussians4D.still(canonical)
    for name in ("means", "log_scales", "opacity_logits", "sh_dc"):
        torch.testing.assert_close(getattr(m.at(0.0), name), getattr(canonical, name), atol=1e-6, rtol=0)
    m.velocities = torch.randn(n, 3, 3, generator=g)
    t = 0.37
    expected = canonical.means + t * m.velocities[:, 0] + t ** 2 * m.velocities[:, 1] + t ** 3 * m.velocities[:, 2]
    torch.testing.assert_close(m.at(t).means, expected)
    # a turn of the track turns every Gaussian's orientation with its position
    m.track_rotation = torch.zeros(3, 3)
    m.track_rotation[0] = torch.tensor([0.3, -0.5, 0.8])
    R = quat_to_rotmat(m.track_at(1.0)[0])
    torch.testing.assert_close(quat_to_rotmat(m.at(1.0).quats), R @ quat_to_rotmat(canonical.quats), atol=1e-5, rtol=0)
    torch.testing.assert_close(R @ R.T, torch.eye(3), atol=1e-6, rtol=0)
    assert torch.linalg.det(R).item() == pytest.approx(1, abs=1e-5)
    sub = m[torch.arange(5)]
    assert len(sub) == 5 and sub.track_rotation is m.track_rotation


def test_silhouettes_give_the_track():
    moving = world_clip("a magenta sphere moving right", n_frames=16, size=64)
    track = silhouette_track(masks_from_background(moving.frames, torch.zeros(3)), moving.cameras, moving.times)
    np.testing.assert_allclose(track.centre.numpy(), [-0.6, 0, 0], atol=0.05)
    np.testing.assert_allclose(track.translation.sum(0).numpy(), [1.2, 0, 0], atol=0.1)
    growing = world_clip("a green cylinder growing", n_frames=16, size=64)
    track = silhouette_track(masks_from_background(growing.frames, torch.zeros(3)), growing.cameras, growing.times)
    assert track.log_scale[0].item() == pytest.approx(math.log(1.6), abs=0.1)
    empty = torch.zeros(4, 16, 16, dtype=torch.bool)
    assert silhouette_track(empty, Cameras.orbit(4, 16, 16), torch.linspace(0, 1, 4)) is None


# ---------------------------------------------------------------------------------------------- 4D fit and files

def test_fit4d_clip_reads_back_from_its_ply_sequence(tmp_path):
    caption = "a cyan cone moving left"
    clip = world_clip(caption, n_frames=12, size=32)
    config = Fit4DConfig(static=FitConfig(steps=80, refine_stop=1.0, silhouette_weight=0.1, num_points=1500,
                                          refine_start=50, refine_every=25, max_gaussians=1500), motion_steps=160)
    model, log = fit4d(clip.frames, clip.cameras, clip.times, config, progress=False)
    assert log.stages[0] == "static" and log.stages[-1] == "motion" and log.steps[-1] == 239
    write_ply_sequence(tmp_path, model, clip.times, clip.cameras)
    frames, times, cameras = read_ply_sequence(tmp_path)
    torch.testing.assert_close(times, clip.times.float())
    torch.testing.assert_close(cameras.viewmats, clip.cameras.viewmats)
    reading = read_object4d(*sequence_arrays(frames))
    assert reading.matches(parse_caption4d(caption)), reading


def test_ply_sequence_round_trip_and_ground_truth_reading(tmp_path):
    s = sample_object4d("a blue pyramid spinning", n_frames=16, num_points=2048, rng=3)
    truth = [object_gaussians(s, i) for i in range(16)]
    paths = write_ply_sequence(tmp_path, truth, s.times)
    assert [p.name for p in paths[:2]] == ["frame_0000.ply", "frame_0001.ply"] and paths[-1].name == "sequence.json"
    meta = json.loads((tmp_path / "sequence.json").read_text())
    assert meta["times"][-1] == 1.0 and meta["cameras"] is None and len(meta["frames"]) == 16
    frames, times, cameras = read_ply_sequence(tmp_path)
    assert cameras is None and len(frames) == 16
    torch.testing.assert_close(frames[5].means, truth[5].means)
    reading = read_object4d(*sequence_arrays(frames))
    assert reading.matches(parse_caption4d("a blue pyramid spinning")), reading
    # a Gaussians4D is written at the given times
    m = Gaussians4D.still(truth[0])
    m.track_translation = torch.tensor([[1.0, 0, 0], [0, 0, 0], [0, 0, 0]])
    (tmp_path / "m").mkdir()
    write_ply_sequence(tmp_path / "m", m, [0.0, 0.5], Cameras.orbit(2, 8, 8))
    frames, times, cameras = read_ply_sequence(tmp_path / "m")
    torch.testing.assert_close(frames[1].means, truth[0].means + torch.tensor([0.5, 0, 0]))
    assert len(cameras) == 2
    (tmp_path / "m" / "sequence.json").unlink()
    with pytest.raises(ValueError, match="sequence.json"):
        read_ply_sequence(tmp_path / "m")
