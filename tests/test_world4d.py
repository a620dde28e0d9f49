"""Shapes World in 4D: captions and specs, what each motion does to the points (WORLD.md's bounds),
and the 4D reader on ground truth (>= 0.98 over every motion, shape and colour) and on damaged input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from world.objects4d import (MOTIONS4D, REST_RADIUS, SPINNING_SHAPES, Object4DSpec, all_specs4d, caption4d,
                             frame_times, parse_caption4d, pose_at, sample_object4d, shaded_colours, spread_specs4d)
from world.reader4d import read_colour_hue, read_object4d, score4d
from world.shapes3d import SHAPES3D
from world.vocab import COLOURS


def test_captions_and_specs():
    assert len(all_specs4d()) == 6 * (6 * 6 + 2)
    for spec in all_specs4d():
        assert parse_caption4d(caption4d(spec)) == spec
    assert caption4d(Object4DSpec("yellow", "torus", "bouncing")) == "a yellow torus bouncing"
    assert parse_caption4d(" A Red Cube  Moving Left. ") == Object4DSpec("red", "cube", "moving left")
    for bad in ("a red cube", "a cube spinning", "a red circle spinning", "red cube still"):
        with pytest.raises(ValueError, match="caption"):
            parse_caption4d(bad)
    with pytest.raises(ValueError, match="spinning is for"):
        Object4DSpec("red", "sphere", "spinning")
    spread = spread_specs4d(30)
    assert len(set(spread)) == 30 and {s.motion for s in spread} == set(MOTIONS4D)


@pytest.mark.parametrize("shape", SHAPES3D)
def test_rest_pose_fits_a_sphere_of_radius_0_6(shape):
    s = sample_object4d(Object4DSpec("red", shape, "still"), n_frames=2, rng=0)
    radius = np.linalg.norm(s.points[0], axis=1)
    assert radius.max() <= REST_RADIUS + 1e-5 and radius.max() > 0.95 * REST_RADIUS
    np.testing.assert_array_equal(s.points[0], s.points[1])


def test_each_motion_keeps_worlds_bounds():
    t = frame_times(16)
    assert t[0] == 0 and t[-1] == 1
    poses = {m: [pose_at(m, x) for x in t] for m in MOTIONS4D}
    x = {m: np.array([p.offset[0] for p in ps]) for m, ps in poses.items()}
    y = np.array([p.offset[1] for p in poses["bouncing"]])
    assert x["moving left"][0] == pytest.approx(0.6) and x["moving left"][-1] == pytest.approx(-0.6)
    assert x["moving right"][0] == pytest.approx(-0.6) and x["moving right"][-1] == pytest.approx(0.6)
    assert y[0] - y.min() >= 0.3 and y[-1] - y.min() >= 0.3 and np.argmin(y) not in (0, len(y) - 1)  # falls, rises
    assert poses["growing"][-1].scale / poses["growing"][0].scale >= 1.6
    assert poses["shrinking"][0].scale / poses["shrinking"][-1].scale >= 1.6
    assert abs(poses["spinning"][-1].yaw_deg - poses["spinning"][0].yaw_deg) >= 90
    assert all(p == poses["still"][0] for p in poses["still"])
    # a spin turns +z towards +x, as the orbit camera does
    s = sample_object4d("a red cube spinning", n_frames=2, num_points=64, rng=0)
    p0, p1 = s.points[0].astype(np.float64), s.points[1].astype(np.float64)
    np.testing.assert_allclose(p1[:, 0], p0[:, 2], atol=1e-5)
    np.testing.assert_allclose(p1[:, 2], -p0[:, 0], atol=1e-5)


def test_shading_keeps_the_hue():
    normals = np.random.default_rng(0).standard_normal((500, 3))
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    for colour in COLOURS:
        shaded = shaded_colours(colour, normals)
        assert shaded.max() <= 1 and shaded.min() >= 0 and shaded.std(0).max() > 0.02  # faces differ
        assert read_colour_hue(shaded) == colour
    assert SPINNING_SHAPES == ("cube", "pyramid")


def test_reader_reads_ground_truth():
    specs = spread_specs4d(18)
    readings = [read_object4d(s.points, s.colours) for s in
                (sample_object4d(spec, n_frames=16, num_points=2048, rng=500 + i) for i, spec in enumerate(specs))]
    assert score4d(readings, specs) >= 0.98


def test_reader_ignores_transparent_and_stray_gaussians():
    spec = Object4DSpec("cyan", "pyramid", "spinning")
    s = sample_object4d(spec, n_frames=16, num_points=2048, rng=7)
    rng = np.random.default_rng(0)
    # 2048 faint Gaussians anywhere and 20 opaque strays far away, the same at every time
    faint = np.broadcast_to(rng.uniform(-1.5, 1.5, (1, 2048, 3)), (16, 2048, 3))
    strays = np.broadcast_to(rng.uniform(3, 4, (1, 20, 3)), (16, 20, 3))
    centres = np.concatenate([s.points, faint, strays], axis=1)
    colours = np.concatenate([s.colours, rng.random((2048 + 20, 3))])
    opacities = np.concatenate([np.full(2048, 0.9), np.full(2048, 0.05), np.full(20, 0.9)])
    reading = read_object4d(centres, colours, opacities)
    assert reading.matches(spec), reading
    assert reading.yaws[-1] == pytest.approx(90, abs=4)
    with pytest.raises(ValueError, match="shape"):
        read_object4d(s.points[0])
    with pytest.raises(ValueError, match="non-finite"):
        read_object4d(np.full((2, 4, 3), math.nan))
