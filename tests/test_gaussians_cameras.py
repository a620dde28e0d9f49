"""Cameras (WORLD.md's orbit, OpenCV conventions) and the Gaussians representation."""

from __future__ import annotations

import json
import math

import pytest
import torch

from gaussians import Cameras, Gaussians, SH_C0, rasterize
from gaussians.cameras import ORBIT_DISTANCE, ORBIT_ELEVATION_DEG, intrinsics, look_at


def project(cams: Cameras, points: torch.Tensor) -> torch.Tensor:
    """Pixel coordinates [C, P, 2] and depths [C, P] of world points [P, 3]."""
    cam = torch.einsum("cij,pj->cpi", cams.viewmats[:, :3, :3], points) + cams.viewmats[:, None, :3, 3]
    uv = torch.einsum("cij,cpj->cpi", cams.Ks, cam)
    return uv[..., :2] / uv[..., 2:], cam[..., 2]


def test_orbit_starts_on_plus_z_at_distance_4_and_elevation_20():
    cams = Cameras.orbit(24, 64, 48)
    e = math.radians(20.0)
    torch.testing.assert_close(cams.positions[0], torch.tensor([0.0, 4 * math.sin(e), 4 * math.cos(e)]))
    torch.testing.assert_close(cams.positions.norm(dim=-1), torch.full((24,), ORBIT_DISTANCE))
    elevation = torch.rad2deg(torch.asin(cams.positions[:, 1] / cams.positions.norm(dim=-1)))
    torch.testing.assert_close(elevation, torch.full((24,), ORBIT_ELEVATION_DEG))
    # every camera looks at the origin: it projects to the image centre, in front of the camera
    uv, depth = project(cams, torch.zeros(1, 3))
    torch.testing.assert_close(uv[:, 0], torch.tensor([32.0, 24.0]).expand(24, 2), atol=1e-4, rtol=0)
    torch.testing.assert_close(depth[:, 0], torch.full((24,), 4.0))
    torch.testing.assert_close(cams.forwards, -cams.positions / 4)


def test_orbit_turns_once_counter_clockwise_seen_from_above():
    n = 24
    cams = Cameras.orbit(n, 32, 32)
    p = cams.positions
    azimuth = torch.atan2(p[:, 0], p[:, 2])  # 0 on +z, +90° on +x
    steps = torch.remainder(azimuth.roll(-1) - azimuth, 2 * math.pi)
    torch.testing.assert_close(steps, torch.full((n,), 2 * math.pi / n))  # one full turn, evenly, never backwards
    assert p[n // 4, 0] > 3.7 and abs(p[n // 4, 2]) < 1e-5  # a quarter turn later it is on +x
    # seen from above (looking down −y, +x to the right, +z towards the bottom of the view), x·dz − z·dx < 0 is
    # clockwise on paper; counter-clockwise from above is the right-hand turn about +y: the cross product's y is > 0
    cross_y = p[:, 2] * p.roll(-1, 0)[:, 0] - p[:, 0] * p.roll(-1, 0)[:, 2]
    assert (cross_y > 0).all()


def test_orbit_is_upright_with_a_40_degree_vertical_field_of_view():
    cams = Cameras.orbit(8, 80, 60)
    up = torch.tensor([[0.0, 0.5, 0.0], [0.0, -0.5, 0.0]])
    uv, _ = project(cams, up)
    assert (uv[:, 0, 1] < 30).all() and (uv[:, 1, 1] > 30).all()  # world +y is up in every image
    # the first camera's image right is world +x
    uv, _ = project(cams[0], torch.tensor([[0.5, 0.0, 0.0]]))
    assert uv[0, 0, 0] > 40
    # rays through the top and bottom edges of the image are 40° apart
    K = intrinsics(40.0, 80, 60)
    top = torch.linalg.solve(K, torch.tensor([40.0, 0.0, 1.0]))
    bottom = torch.linalg.solve(K, torch.tensor([40.0, 60.0, 1.0]))
    angle = torch.rad2deg(torch.acos(torch.dot(top, bottom) / (top.norm() * bottom.norm())))
    torch.testing.assert_close(angle, torch.tensor(40.0))


def test_orbit_renders_a_centred_object_in_every_frame():
    cams = Cameras.orbit(6, 32, 32)
    g = Gaussians.from_points(torch.zeros(1, 3), torch.tensor([[1.0, 0.0, 0.0]]), scale=0.2, opacity=0.9)
    img, alpha, _ = g.render(cams)
    assert alpha.shape == (6, 32, 32, 1)
    centre = alpha[:, 15:17, 15:17].min()
    assert centre > 0.8 and alpha[:, :3, :3].max() < 0.01


def test_cameras_round_trip_through_json_and_validate():
    cams = Cameras.orbit(3, 20, 10)
    back = Cameras.from_dict(json.loads(json.dumps(cams.to_dict())))
    torch.testing.assert_close(back.viewmats, cams.viewmats)
    torch.testing.assert_close(back.Ks, cams.Ks)
    assert (back.width, back.height, len(back)) == (20, 10, 3)
    assert len(cams[1]) == 1 and len(cams[0:2]) == 2
    with pytest.raises(ValueError, match="Ks must be"):
        Cameras(cams.viewmats, cams.Ks[:2], 20, 10)
    with pytest.raises(ValueError, match="up vector"):
        look_at(torch.tensor([[0.0, 3.0, 0.0]]), torch.zeros(1, 3))


def test_gaussians_activations_params_and_validation():
    g = Gaussians.from_points(torch.randn(10, 3), torch.rand(10, 3), scale=0.05, opacity=0.3, sh_degree=2)
    assert len(g) == 10 and g.sh_degree == 2 and g.sh.shape == (10, 9, 3)
    torch.testing.assert_close(g.scales, torch.full((10, 3), 0.05))
    torch.testing.assert_close(g.opacities, torch.full((10,), 0.3))
    torch.testing.assert_close(g.rotations.norm(dim=-1), torch.ones(10))
    torch.testing.assert_close(g.rgb, torch.clamp_min(g.sh_dc * SH_C0 + 0.5, 0))
    p = g.params()
    assert set(p) == {"means", "scales", "quats", "opacities", "sh0", "shN"} and p["sh0"].shape == (10, 1, 3)
    back = Gaussians.from_params(p)
    torch.testing.assert_close(back.sh, g.sh)
    assert len(g[g.means[:, 0] > 0]) == int((g.means[:, 0] > 0).sum()) and len(g[3]) == 1
    with pytest.raises(ValueError, match="quats"):
        Gaussians(g.means, g.log_scales, g.quats[:, :3], g.opacity_logits, g.sh_dc)
    with pytest.raises(ValueError, match="sh_rest"):
        Gaussians(g.means, g.log_scales, g.quats, g.opacity_logits, g.sh_dc, g.sh_rest[:, :5])


def test_render_uses_sh_and_matches_plain_colours_at_degree_0():
    cams = Cameras.orbit(2, 24, 24)
    g = Gaussians.from_points(torch.randn(30, 3, generator=torch.Generator().manual_seed(0)) * 0.4,
                              torch.rand(30, 3, generator=torch.Generator().manual_seed(1)), scale=0.1, opacity=0.7)
    img, _, _ = g.render(cams)
    plain, _, _ = rasterize(g.means, g.quats, g.scales, g.opacities, g.rgb, cams.viewmats, cams.Ks, 24, 24)
    torch.testing.assert_close(img, plain)
    # a degree-1 band changes the colour with the viewing direction
    g1 = Gaussians.from_points(g.means, g.rgb, scale=0.1, opacity=0.7, sh_degree=1)
    g1.sh_rest[:, 1] = 0.5  # basis 2, ∝ z: cameras on +z and −z see opposite shifts
    img1, _, _ = g1.render(cams)
    assert (img1 - img).abs().max() > 0.05


def test_any_integer_picks_one_camera():
    """numpy's and torch's integers index like Python's: one camera, its leading dimension kept."""
    import numpy as np

    cams = Cameras.orbit(6, 32, 32)
    for index in (2, np.int64(2), torch.tensor(2)):
        one = cams[index]
        assert one.viewmats.shape == (1, 4, 4) and torch.equal(one.viewmats[0], cams.viewmats[2])
    assert cams[-1].viewmats.shape == (1, 4, 4) and torch.equal(cams[-1].viewmats[0], cams.viewmats[5])
    assert len(cams[np.arange(3)]) == 3 and len(cams[1:4]) == 3
