"""PointFlow-convention set metrics: Chamfer by hand, exact EMD against brute force, and what
MMD / COV / 1-NNA say on sets whose relation is known."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from world.metrics3d import (chamfer_matrix, compare_by_class, compare_sets, coverage, emd_exact, emd_matrix, mmd,
                             one_nna, set_metrics, subsample)
from world.shapes3d import sample_shape3d


def test_chamfer_is_the_sum_of_the_two_mean_squared_nearest_distances():
    a = np.array([[0.0, 0, 0], [1, 0, 0]])
    b = np.array([[0.0, 0, 0], [0, 2, 0], [3, 0, 0]])
    # a→b: 0 and 1 (nearest to (1,0,0) is the origin) → mean 0.5; b→a: 0, 4 (to origin), 4 (to (1,0,0)) → 8/3
    m = chamfer_matrix([a], [b])
    assert m.shape == (1, 1) and m[0, 0] == pytest.approx(0.5 + 8 / 3)
    sym = chamfer_matrix([a, b])
    assert sym[0, 1] == sym[1, 0] == pytest.approx(0.5 + 8 / 3) and sym[0, 0] == 0


def test_exact_emd_equals_brute_force_over_every_matching():
    rng = np.random.default_rng(3)
    for _ in range(5):
        a, b = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
        brute = min(np.mean(np.linalg.norm(a - b[list(p)], axis=1)) for p in itertools.permutations(range(5)))
        assert emd_exact(a, b) == pytest.approx(brute, rel=1e-12)
    assert emd_exact(a, a[::-1]) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="equal size"):
        emd_exact(a, b[:4])


def test_metrics_from_matrices_follow_their_definitions():
    m_sr = np.array([[0.1, 0.9, 0.8], [0.2, 0.7, 0.3]])  # 2 generated × 3 references
    assert mmd(m_sr) == pytest.approx((0.1 + 0.7 + 0.3) / 3)
    assert coverage(m_sr) == pytest.approx(1 / 3)  # both generated clouds pick reference 0
    # S = {0, 1} near each other, R = {a, b, c} near each other, far between: 1-NNA 100 %
    m_ss = np.array([[0, 0.01], [0.01, 0]])
    m_rr = np.full((3, 3), 0.02)
    assert one_nna(m_ss, m_sr + 5, m_rr) == 1.0
    # every cloud's nearest is in the other set: 0 %
    assert one_nna(np.full((2, 2), 9.0), np.full((2, 3), 0.1), np.full((3, 3), 9.0)) == 0.0


def _world(spec: str, seeds) -> list[np.ndarray]:
    return [sample_shape3d(spec, seed, num_points=512).points for seed in seeds]


def test_two_draws_of_one_distribution_score_near_fifty_percent_and_full_coverage_on_copies():
    gen, ref = _world("a cone", range(0, 24)) + _world("a tall cone", range(24, 48)), \
        _world("a cone", range(100, 124)) + _world("a tall cone", range(124, 148))
    cd = compare_sets(gen, ref)["CD"]
    assert 0.3 <= cd.nna <= 0.7  # indistinguishable up to sampling noise
    assert cd.cov >= 0.4 and cd.num_generated == cd.num_reference == 48
    copies = compare_sets(ref, ref)["CD"]
    assert copies.cov == 1.0 and copies.mmd == 0.0 and copies.nna == 0.0  # memorised: every nearest is a twin


def test_disjoint_sets_score_one_hundred_percent_and_emd_agrees():
    spheres, cubes = _world("a sphere", range(12)), _world("a cube", range(12))
    out = compare_sets(spheres, cubes, emd_points=64)
    assert out["CD"].nna == 1.0 and out["EMD"].nna == 1.0
    assert out["EMD"].as_dict()["1-NNA-EMD"] == 1.0
    same = compare_sets(spheres[:6], _world("a sphere", range(50, 56)), emd_points=64)
    assert same["CD"].mmd < out["CD"].mmd and same["EMD"].mmd < out["EMD"].mmd


def test_emd_matrix_subsets_and_per_class_comparison():
    clouds = _world("a torus", range(3))
    assert [len(c) for c in subsample(clouds, 100)] == [100] * 3
    m = emd_matrix(clouds, points=32)
    assert m.shape == (3, 3) and np.allclose(m, m.T) and np.all(np.diag(m) == 0)
    by_class = compare_by_class({"torus": clouds}, {"torus": _world("a torus", range(5, 9)), "cube": []})
    assert set(by_class) == {"torus"} and by_class["torus"]["CD"].num_reference == 4
    with pytest.raises(ValueError, match="no reference"):
        compare_by_class({"cube": clouds}, {"torus": clouds})
    with pytest.raises(ValueError, match="shape"):
        chamfer_matrix([np.zeros((4, 2))])


def test_each_cloud_keeps_one_emd_subset_across_the_three_matrices():
    gen, ref = _world("a cube", range(5)), _world("a cube", range(10, 14))
    sub_gen, sub_ref = subsample(gen, 24, 0), subsample(ref, 24, 1)
    expected = set_metrics(emd_matrix(sub_gen, points=24), emd_matrix(sub_gen, sub_ref, 24),
                           emd_matrix(sub_ref, points=24), "EMD")
    assert compare_sets(gen, ref, emd_points=24)["EMD"] == expected


def test_emd_subsets_share_one_size_when_a_cloud_is_smaller_than_emd_points():
    gen = [c[:20] for c in _world("a cube", range(3))]  # 20 points each, the reference whole
    ref = _world("a cube", range(10, 13))
    out = compare_sets(gen, ref, emd_points=64)["EMD"]  # equal 20-point subsets, not 20 against 64
    expected = set_metrics(emd_matrix(gen, points=20), emd_matrix(gen, subsample(ref, 20, 1), 20),
                           emd_matrix(subsample(ref, 20, 1), points=20), "EMD")
    assert out == expected
