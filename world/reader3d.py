"""The 3D oracle: read a point cloud back into shape, proportion and colour, without a learned model.

Shape and proportion: the nearest of 18 templates (6 shapes × {unstretched, tall, wide}, each a
dense, fixed-seed world sample) under the Chamfer distance of the PointFlow convention (mean
squared nearest-neighbour distance from A to B plus from B to A), after centring the cloud on
its bounding box and scaling its largest coordinate magnitude to 1 as the world does. Colour:
the WORLD.md colour nearest to the median point colour, when the points carry colour.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree  # scipy comes with sentence-transformers (the text encoder)

from .shapes3d import PROPORTION_CHOICES, SHAPES3D, Shape3DSpec, normalise_points, surface_points
from .vocab import COLOURS

# Templates hold 4096 points, so a sample point finds a template point as close as its own
# spacing; the way back queries the first 2048 of them (an unbiased subset: the mean stays the
# same, the read takes half the time). World samples: the nearest template wins by >= 3x its distance.
TEMPLATE_POINTS, TEMPLATE_QUERY_POINTS = 4096, 2048
TEMPLATE_SEED = 20240  # the world's samples in tests use other seeds

# A cloud is "clean" when its Chamfer distance to the nearest template is no more than this. World
# samples (2048 points, other seeds) read 0.0027 median and 0.0052 at most over the 18 templates;
# jittered by Gaussian noise of std 0.02 / 0.03 / 0.05 (normalised units, the object spans 2) they
# read 0.0054 / 0.0075 / 0.0128 median — at 0.03 a person sees a fuzzy surface, at 0.05 a cloud
# whose shape is read wrong in a quarter of the cases (measured 2026-12-03). So: clean = within
# σ 0.03's median, the fuzz at which a person still sees a crisp surface but no more.
CLEAN_CHAMFER = 0.0075


def chamfer_distance(a: np.ndarray, b: np.ndarray, tree_a: cKDTree | None = None,
                     tree_b: cKDTree | None = None) -> float:
    """PointFlow's Chamfer distance between clouds a (N, 3) and b (M, 3):
    mean_a min_b |a − b|² + mean_b min_a |a − b|². Pass prebuilt trees to skip building them."""
    tree_a = tree_a if tree_a is not None else cKDTree(a)
    tree_b = tree_b if tree_b is not None else cKDTree(b)
    d_ab, _ = tree_b.query(a)
    d_ba, _ = tree_a.query(b)
    return float(np.mean(d_ab ** 2) + np.mean(d_ba ** 2))


@functools.lru_cache(maxsize=None)
def templates() -> tuple[tuple[str, str | None, np.ndarray, cKDTree], ...]:
    """(shape, proportion, points (TEMPLATE_POINTS, 3), tree) for every shape × proportion."""
    out = []
    for i, (shape, proportion) in enumerate((s, p) for s in SHAPES3D for p in PROPORTION_CHOICES):
        pts = normalise_points(surface_points(shape, proportion, TEMPLATE_POINTS, TEMPLATE_SEED + i))
        out.append((shape, proportion, pts, cKDTree(pts)))
    return tuple(out)


@dataclass(frozen=True)
class Shape3DReading:
    """What a cloud shows: shape, proportion (None = unstretched), colour (None = no colour read),
    the Chamfer distance to the nearest template and the margin to the next-nearest one."""

    shape: str
    proportion: str | None
    colour: str | None
    chamfer: float
    margin: float
    colour_share: float | None = None  # share of points whose nearest WORLD.md colour is `colour`

    @property
    def clean(self) -> bool:
        """A crisp surface (Chamfer ≤ CLEAN_CHAMFER) and, when coloured, ≥ 95 % of points in the colour read."""
        return self.chamfer <= CLEAN_CHAMFER and (self.colour_share is None or self.colour_share >= 0.95)

    def matches(self, spec: Shape3DSpec) -> bool:
        """Shape and proportion equal; colour equal when the spec states one."""
        ok = self.shape == spec.shape and self.proportion == spec.proportion
        return ok and (spec.colour is None or self.colour == spec.colour)


def _nearest_colour(rgb: np.ndarray) -> np.ndarray:
    """Index into COLOURS of the WORLD.md colour nearest (RGB distance) to each row of rgb (M, 3) in [0, 255]."""
    table = np.asarray(list(COLOURS.values()), dtype=np.float64)
    return np.argmin(((rgb[:, None, :] - table[None]) ** 2).sum(-1), axis=1)


def read_colour(colours: np.ndarray) -> str:
    """The WORLD.md colour nearest (RGB distance) to the median of colours (N, 3) in [0, 1]."""
    median = np.median(np.asarray(colours, dtype=np.float64), axis=0) * 255
    return list(COLOURS)[int(_nearest_colour(median[None])[0])]


def colour_share(colours: np.ndarray, colour: str) -> float:
    """Share of the points (N, 3) in [0, 1] whose nearest WORLD.md colour is `colour`."""
    nearest = _nearest_colour(np.asarray(colours, dtype=np.float64) * 255)
    return float(np.mean(nearest == list(COLOURS).index(colour)))


def read_shape3d(points: np.ndarray, colours: np.ndarray | None = None) -> Shape3DReading:
    """Read a cloud: points (N, 3), or (N, 6) xyz + rgb in [0, 1]; colours (N, 3) may come apart."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] not in (3, 6) or len(points) < 2:
        raise ValueError(f"expected points of shape (N >= 2, 3) or (N, 6), got {points.shape}")
    if points.shape[1] == 6:
        points, colours = points[:, :3], points[:, 3:] if colours is None else colours
    if not np.isfinite(points).all():
        raise ValueError("the point cloud holds non-finite coordinates")
    cloud = normalise_points(points)
    tree = cKDTree(cloud)
    dists = np.array([np.mean(t.query(cloud)[0] ** 2) + np.mean(tree.query(pts[:TEMPLATE_QUERY_POINTS])[0] ** 2)
                      for _, _, pts, t in templates()])  # Chamfer, the way back on a subset
    order = np.argsort(dists)
    shape, proportion, _, _ = templates()[order[0]]
    colour = None if colours is None else read_colour(colours)
    share = None if colour is None else colour_share(colours, colour)
    return Shape3DReading(shape, proportion, colour, float(dists[order[0]]), float(dists[order[1]] - dists[order[0]]),
                          share)


def score3d(clouds, specs) -> float:
    """Fraction of clouds (each (N, 3) or (N, 6)) read back as their spec."""
    clouds, specs = list(clouds), list(specs)
    if len(clouds) != len(specs) or not clouds:
        raise ValueError(f"need as many specs as clouds (and at least one), got {len(clouds)} and {len(specs)}")
    return float(np.mean([read_shape3d(c).matches(s) for c, s in zip(clouds, specs)]))
