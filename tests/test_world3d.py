"""Shapes World in 3D: captions, specs and split, geometry (uniform by area, normalised, on the
surface), occupancy, and the nearest-template reader on fresh world samples."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from world.reader3d import TEMPLATE_SEED, chamfer_distance, read_shape3d, score3d
from world.shapes3d import (PROPORTION_CHOICES, SHAPES3D, Shape3DSpec, all_specs3d, caption3d, colour_rgb, occupancy,
                            parse_caption3d, points_to_occupancy, sample_shape3d, sample_spec3d, split_specs3d,
                            surface_points)
from world.vocab import COLOURS

COMBOS = list(itertools.product(SHAPES3D, PROPORTION_CHOICES))
# unstretched volumes from WORLD.md's geometry
VOLUMES = {"sphere": 4 * np.pi / 3, "cube": 8.0, "cylinder": 2 * np.pi, "cone": 2 * np.pi / 3,
           "torus": 2 * np.pi ** 2 * 0.7 * 0.3 ** 2, "pyramid": 8 / 3}


# ---------------------------------------------------------------------------- words

def test_every_caption_parses_back_to_its_spec():
    assert len(all_specs3d()) == 6 * 3 * 7
    for spec in all_specs3d():
        assert parse_caption3d(caption3d(spec)) == spec
    assert caption3d(Shape3DSpec("cylinder", "tall", "red")) == "a tall red cylinder"
    assert caption3d(Shape3DSpec("torus")) == "a torus"
    assert parse_caption3d("  A Wide  Cyan Pyramid. ") == Shape3DSpec("pyramid", "wide", "cyan")
    for bad in ("a red tall cone", "a small sphere", "a tall red", "a purple cube", "tall cone"):
        with pytest.raises(ValueError, match="caption"):
            parse_caption3d(bad)
    with pytest.raises(ValueError, match="proportion"):
        Shape3DSpec("cube", "short")


def test_the_split_is_fixed_disjoint_and_covers_every_shape_and_proportion():
    train, held = split_specs3d("train"), split_specs3d("heldout")
    assert held and set(train).isdisjoint(held) and len(train) + len(held) == len(all_specs3d())
    assert {(s.shape, s.proportion) for s in train} == set(COMBOS)
    rng = np.random.default_rng(0)
    drawn = [sample_spec3d(rng, "heldout", coloured=True) for _ in range(50)]
    assert all(s in held and s.colour for s in drawn)
    assert all(sample_spec3d(rng, coloured=False).colour is None for _ in range(20))


# ---------------------------------------------------------------------------- geometry

@pytest.mark.parametrize("shape,proportion", COMBOS)
def test_points_are_normalised_and_lie_on_the_surface_of_the_occupied_solid(shape, proportion):
    pts = surface_points(shape, proportion, 2048, 1)
    assert pts.shape == (2048, 3) and pts.dtype == np.float32
    assert np.abs(pts).max() <= 1 + 1e-6 and np.abs(pts).max() > 0.98  # largest magnitude 1
    lo, hi = pts.min(0), pts.max(0)
    assert np.abs((lo + hi) / 2).max() < 0.03  # centred on the bounding box
    occ = occupancy(shape, proportion)
    stretch = {None: (1, 1, 1), "tall": (1, 1.6, 1), "wide": (1.6, 1, 1.6)}[proportion]
    half = np.array([1, 0.3 if shape == "torus" else 1, 1]) * stretch
    expected = VOLUMES[shape] * np.prod(stretch) / half.max() ** 3
    assert abs(occ.sum() * (2 / 32) ** 3 / expected - 1) < 0.03
    # every point's voxel is on the solid's boundary: an empty voxel within 1, an occupied one within
    # 2 (near a sharp apex no voxel centre is inside within 1)
    padded = np.pad(occ, 2)
    for i, j, k in np.argwhere(points_to_occupancy(pts)):
        assert padded[i:i + 5, j:j + 5, k:k + 5].any() and not padded[i + 1:i + 4, j + 1:j + 4, k + 1:k + 4].all()


def fraction(mask) -> float:
    return float(np.mean(mask))


def test_points_are_uniform_by_area_after_stretching():
    n = 40000
    on_caps = lambda p: np.abs(np.abs(p[:, 1]) - np.abs(p[:, 1]).max()) < 1e-5  # noqa: E731
    # cylinder: caps 2π of 6π; tall (height 3.2): 2π of 8.4π; wide (radius 1.6): 5.12π of 11.52π
    for proportion, caps in ((None, 1 / 3), ("tall", 2 / 8.4), ("wide", 5.12 / 11.52)):
        assert abs(fraction(on_caps(surface_points("cylinder", proportion, n, 3))) - caps) < 0.01
    # cube tall: top and bottom 8 of 33.6; cone / pyramid bases: π of π(1+√5), 4 of 4(1+√5)
    assert abs(fraction(on_caps(surface_points("cube", "tall", n, 4))) - 8 / 33.6) < 0.01
    base = lambda p: p[:, 1] < p[:, 1].min() + 1e-5  # noqa: E731
    assert abs(fraction(base(surface_points("cone", None, n, 5))) - 1 / (1 + np.sqrt(5))) < 0.01
    assert abs(fraction(base(surface_points("pyramid", None, n, 6))) - 1 / (1 + np.sqrt(5))) < 0.01
    # torus: the outer half (r > R) holds 1/2 + r/(πR) of the area
    p = surface_points("torus", None, n, 7)
    assert abs(fraction(np.hypot(p[:, 0], p[:, 2]) > 0.7) - (0.5 + 0.3 / (0.7 * np.pi))) < 0.01
    # wide sphere (oblate spheroid, a = 1.6, c = 1 before scaling): dA ∝ √(1 + (a² − 1) y²) dy, so the
    # band |y| < c/2 holds F(1/2) / F(1) of the area, F(z) = z √(1 + k z²) + asinh(√k z) / √k, k = a² − 1
    p = surface_points("sphere", "wide", n, 8)
    k = 1.6 ** 2 - 1
    area = lambda z: z * np.sqrt(1 + k * z ** 2) + np.arcsinh(np.sqrt(k) * z) / np.sqrt(k)  # noqa: E731
    assert abs(fraction(np.abs(p[:, 1]) < 0.625 / 2) - area(0.5) / area(1.0)) < 0.01


def test_samples_are_seeded_and_carry_colour_when_asked():
    a, b = sample_shape3d("a tall red cone", 3), sample_shape3d("a tall red cone", 3)
    assert np.array_equal(a.points, b.points) and a.caption == "a tall red cone"
    assert not np.array_equal(a.points, sample_shape3d("a tall red cone", 4).points)
    assert a.features().shape == (2048, 6) and np.allclose(a.features()[:, 3:], np.array(COLOURS["red"]) / 255)
    plain = sample_shape3d(Shape3DSpec("cube"), 0)
    assert plain.colours is None and plain.features().shape == (2048, 3)
    assert np.allclose(plain.features(default_colour=(0.5, 0.5, 0.5))[:, 3:], 0.5)
    assert plain.occupancy.shape == (32, 32, 32) and plain.occupancy.all()
    assert np.allclose(colour_rgb("blue") * 255, COLOURS["blue"])


# ---------------------------------------------------------------------------- the reader

def test_chamfer_distance_is_the_pointflow_convention():
    a, b = np.zeros((1, 3)), np.array([[1.0, 0, 0]])
    assert chamfer_distance(a, b) == 2.0  # 1² one way plus 1² the other
    c = np.array([[0.0, 0, 0], [0, 2, 0]])
    assert chamfer_distance(a, c) == pytest.approx(0 + (0 + 4) / 2)
    pts = surface_points("cone", None, 500, 0)
    assert chamfer_distance(pts, pts) == 0 and chamfer_distance(pts, c) == chamfer_distance(c, pts)


def test_the_reader_reads_fresh_world_samples_back():
    rng = np.random.default_rng(TEMPLATE_SEED + 1000)  # other seeds than the templates'
    colours = [None, *COLOURS]
    specs = [Shape3DSpec(s, p, colours[int(rng.integers(len(colours)))]) for s, p in COMBOS * 2]
    clouds = [sample_shape3d(spec, rng).features() for spec in specs]
    assert score3d(clouds, specs) >= 0.98
    readings = [read_shape3d(c) for c in clouds]
    assert all(r.colour == s.colour for r, s in zip(readings, specs) if s.colour)
    assert all(r.colour is None for r, s in zip(readings, specs) if s.colour is None)


def test_clean_means_a_crisp_surface_in_one_colour():
    """World samples read clean; the same samples with a fuzzy surface (Gaussian jitter of std 0.05
    of the half-extent) or with a fifth of their points in another colour do not, though their
    shape and colour are still read right."""
    from world.reader3d import CLEAN_CHAMFER

    rng = np.random.default_rng(7)
    specs = [Shape3DSpec(s, p, "red") for s, p in COMBOS]
    samples = [sample_shape3d(spec, rng) for spec in specs]
    readings = [read_shape3d(s.points, s.colours) for s in samples]
    assert all(r.clean and r.colour_share == 1.0 for r in readings)
    assert max(r.chamfer for r in readings) < CLEAN_CHAMFER
    fuzzy = [read_shape3d(s.points + rng.normal(size=s.points.shape) * 0.05, s.colours) for s in samples]
    assert np.mean([not r.clean for r in fuzzy]) >= 0.9
    speckled = []
    for s in samples:
        colours = s.colours.copy()
        colours[: len(colours) // 5] = [0.0, 0.0, 1.0]  # a fifth of the points blue
        speckled.append(read_shape3d(s.points, colours))
    assert all(r.colour == "red" and r.colour_share == pytest.approx(0.8, abs=0.01) and not r.clean for r in speckled)


def test_the_reader_ignores_placement_and_tells_proportions_apart():
    spec = Shape3DSpec("cone", "tall", "green")
    sample = sample_shape3d(spec, 99)
    moved = sample.points * 3.5 + np.array([2.0, -1.0, 0.5])
    reading = read_shape3d(moved, sample.colours)
    assert reading.matches(spec) and reading.margin > 0
    assert not reading.matches(Shape3DSpec("cone")) and not reading.matches(Shape3DSpec("cone", "tall", "red"))
    jittered = sample.points + np.random.default_rng(0).normal(0, 0.02, sample.points.shape)
    assert read_shape3d(jittered).matches(Shape3DSpec("cone", "tall"))
    with pytest.raises(ValueError, match="shape"):
        read_shape3d(np.zeros((10, 4)))
