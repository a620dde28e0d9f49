"""Set metrics for generated point clouds, in the PointFlow convention (Yang et al. 2019), over
full sets (not per batch, as DiT-3D's `test.py` does).

A generated set S (|S| clouds) is compared with a reference set R (|R| clouds) of the same class
through a distance D between two clouds:

- Chamfer (CD): mean_a min_b |a − b|² + mean_b min_a |a − b|² (squared distances, the sum of the
  two directions; `world.reader3d.chamfer_distance`).
- EMD: the mean Euclidean distance between matched points under the optimal one-to-one matching
  of two equal-size clouds, computed exactly (`scipy.optimize.linear_sum_assignment`) on random
  subsets of each cloud — PointFlow's CUDA kernel approximates this matching; ours is exact, so it
  is labelled "EMD (exact, N-point subsets)".

Then, with M[s, r] = D(S_s, R_r):

- MMD (minimum matching distance): mean over r of min_s M[s, r]: how close each reference comes
  to some generated cloud (fidelity).
- COV (coverage): the fraction of reference clouds that are the nearest reference of at least
  one generated cloud (diversity; identical sets give 1.0).
- 1-NNA: leave-one-out accuracy of the 1-nearest-neighbour classifier on S ∪ R labelled by set:
  ~50 % when S and R are indistinguishable samples of one distribution, 100 % when every cloud's
  nearest neighbour is from its own set (disjoint distributions). Exact copies of the reference
  score 0 % (each cloud's nearest neighbour is its twin): below 50 % means memorised.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree

from .reader3d import chamfer_distance

EMD_POINTS = 256  # points per cloud for EMD: an exact assignment is O(N³)


#################################################################################
#                           Distances between clouds                            #
#################################################################################

def _clouds(clouds) -> list[np.ndarray]:
    """Each cloud as (N, 3) float64 (extra columns such as colour are dropped)."""
    out = []
    for i, c in enumerate(clouds):
        c = np.asarray(c, dtype=np.float64)
        if c.ndim != 2 or c.shape[1] < 3 or len(c) < 1:
            raise ValueError(f"cloud {i}: expected points of shape (N, 3), got {c.shape}")
        if not np.isfinite(c[:, :3]).all():
            raise ValueError(f"cloud {i} holds non-finite coordinates")
        out.append(c[:, :3])
    if not out:
        raise ValueError("need at least one cloud")
    return out


def chamfer_matrix(xs, ys=None) -> np.ndarray:
    """Pairwise Chamfer distances (len(xs), len(ys)) of clouds (each (N, 3)); with ys None, the
    symmetric matrix of xs against itself (each pair computed once, zero diagonal)."""
    xs = _clouds(xs)
    trees_x = [cKDTree(c) for c in xs]
    if ys is None:
        out = np.zeros((len(xs), len(xs)))
        for i in range(len(xs)):
            for j in range(i + 1, len(xs)):
                out[i, j] = out[j, i] = chamfer_distance(xs[i], xs[j], trees_x[i], trees_x[j])
        return out
    ys = _clouds(ys)
    trees_y = [cKDTree(c) for c in ys]
    return np.array([[chamfer_distance(a, b, ta, tb) for b, tb in zip(ys, trees_y)] for a, ta in zip(xs, trees_x)])


def emd_exact(a: np.ndarray, b: np.ndarray) -> float:
    """EMD between two clouds of equal size (N, 3): the mean Euclidean distance between matched
    points under the optimal one-to-one matching (exact: Hungarian assignment)."""
    a, b = _clouds([a, b])
    if len(a) != len(b):
        raise ValueError(f"EMD needs clouds of equal size, got {len(a)} and {len(b)} points")
    cost = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1)  # (N, N)
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].mean())


def subsample(clouds, n: int, seed: int = 0) -> list[np.ndarray]:
    """n points of each cloud, without replacement, from a fixed seed (all of it when smaller)."""
    rng = np.random.default_rng(seed)
    return [c if len(c) <= n else c[rng.choice(len(c), n, replace=False)] for c in _clouds(clouds)]


def emd_matrix(xs, ys=None, points: int = EMD_POINTS, seed: int = 0) -> np.ndarray:
    """Pairwise exact EMD (len(xs), len(ys)) on `points`-point subsets of each cloud (ys None: xs
    against itself, symmetric). xs are subsampled from `seed`, ys from seed + 1; clouds already of
    at most `points` points are used whole."""
    xs = subsample(xs, points, seed)
    if ys is None:
        out = np.zeros((len(xs), len(xs)))
        for i in range(len(xs)):
            for j in range(i + 1, len(xs)):
                out[i, j] = out[j, i] = emd_exact(xs[i], xs[j])
        return out
    ys = subsample(ys, points, seed + 1)
    return np.array([[emd_exact(a, b) for b in ys] for a in xs])


#################################################################################
#                        Set metrics from distance matrices                     #
#################################################################################

def mmd(m_sr: np.ndarray) -> float:
    """Minimum matching distance: mean over references (columns) of the nearest generated (rows)."""
    return float(np.asarray(m_sr).min(axis=0).mean())


def coverage(m_sr: np.ndarray) -> float:
    """Fraction of references (columns) that are the nearest reference of some generated cloud (rows)."""
    m_sr = np.asarray(m_sr)
    return float(len(np.unique(m_sr.argmin(axis=1))) / m_sr.shape[1])


def one_nna(m_ss: np.ndarray, m_sr: np.ndarray, m_rr: np.ndarray) -> float:
    """Leave-one-out 1-NN accuracy over S ∪ R (each cloud classified by the set of its nearest other
    cloud); m_ss (|S|, |S|), m_sr (|S|, |R|), m_rr (|R|, |R|). Ties go to the first in S, then R."""
    m_ss, m_sr, m_rr = (np.asarray(m, dtype=np.float64) for m in (m_ss, m_sr, m_rr))
    n_s, n_r = m_sr.shape
    full = np.block([[m_ss, m_sr], [m_sr.T, m_rr]])  # (|S|+|R|, |S|+|R|)
    np.fill_diagonal(full, np.inf)
    labels = np.r_[np.ones(n_s, dtype=bool), np.zeros(n_r, dtype=bool)]
    return float(np.mean(labels[full.argmin(axis=1)] == labels))


@dataclass(frozen=True)
class SetMetrics:
    """MMD / COV / 1-NNA of one generated set against one reference set under one distance."""

    distance: str  # "CD" or "EMD"
    mmd: float
    cov: float
    nna: float
    num_generated: int
    num_reference: int

    def as_dict(self) -> dict:
        d = self.distance
        return {f"MMD-{d}": self.mmd, f"COV-{d}": self.cov, f"1-NNA-{d}": self.nna,
                "generated": self.num_generated, "reference": self.num_reference}


def set_metrics(m_ss: np.ndarray, m_sr: np.ndarray, m_rr: np.ndarray, distance: str) -> SetMetrics:
    """All three metrics from the three distance matrices of one comparison."""
    return SetMetrics(distance, mmd(m_sr), coverage(m_sr), one_nna(m_ss, m_sr, m_rr), *np.asarray(m_sr).shape)


def compare_sets(generated, reference, emd_points: int | None = None, seed: int = 0) -> dict[str, SetMetrics]:
    """{"CD": …} (and "EMD": … when `emd_points` is given) for two sets of clouds (each (N, 3))."""
    out = {"CD": set_metrics(chamfer_matrix(generated), chamfer_matrix(generated, reference),
                             chamfer_matrix(reference), "CD")}
    if emd_points:
        # one subset per cloud, the same in all three matrices, all of one size: a cloud with fewer
        # than emd_points points brings every subset down to its size (EMD needs equal sizes)
        n = min(emd_points, *(len(c) for c in _clouds(generated)), *(len(c) for c in _clouds(reference)))
        gen, ref = subsample(generated, n, seed), subsample(reference, n, seed + 1)
        out["EMD"] = set_metrics(emd_matrix(gen, points=n), emd_matrix(gen, ref, n), emd_matrix(ref, points=n), "EMD")
    return out


def compare_by_class(generated: dict[str, list], reference: dict[str, list], emd_points: int | None = None,
                     seed: int = 0) -> dict[str, dict[str, SetMetrics]]:
    """`compare_sets` per class: generated and reference map a class name (e.g. a shape) to its
    clouds; every generated class needs a reference set."""
    missing = sorted(set(generated) - set(reference))
    if missing:
        raise ValueError(f"no reference clouds for class(es) {missing}")
    return {name: compare_sets(clouds, reference[name], emd_points, seed) for name, clouds in generated.items()}
