"""The 4D oracle: read a moving set of points (a 4D Gaussian asset's opaque centres) back into colour,
shape and motion, without a learned model.

Input: the centres of N Gaussians at T time steps (T, N, 3), their colours and opacities: what a
`.ply` sequence holds, one file per time step, the same Gaussians in the same order in each.
Only the opaque ones (opacity ≥ 0.5) count, and far strays are trimmed (beyond 3 × the median
distance from the median centre), so that floaters a fit leaves behind do not move the reading.

- Colour: the WORLD.md colour whose RGB direction is nearest (cosine) to the median colour of the
  brighter half of the points: shading scales a colour, it does not turn it.
- Shape: the nearest of the six rest-pose solids (`reader3d`'s unstretched templates) under the
  Chamfer distance, on the cloud of the first time step (the rest pose). A fit fills a solid with
  Gaussians where a template is a surface, and its extremes are loose (orbit views at 20° elevation
  see the bottom face edge-on), so both sides are prepared alike: centred on their 1–99 % percentile
  box and scaled by its horizontal half-width (every world solid is as wide as it is deep); the
  cloud is reduced to its visible shell (the front-most points of a coarse depth buffer from 64
  directions); then, per template, aligned in scale and offset by a few ICP steps (and for cubes
  and pyramids, turned about +y in 10° steps, the best turn kept) before the Chamfer distance.
- Motion: the cloud's track from the first to the last step: the centre (mean of the points), the
  size (median distance from the centre) and the turn about +y (the yaw that best aligns each
  step's centred, size-normalised cloud with the first one's under the Chamfer distance, followed
  step by step so that a cube's 90° symmetry cannot fold it back). Each motion gets a score, its
  signal over what `world.objects4d` draws: |Δx| / 1.2 for moving (sign: left or right), the
  smaller of the fall and the rise of y over 0.4 for bouncing, |log of the size ratio| / log 1.6
  for growing or shrinking (sign), |turn| / 90° for spinning (read on cubes and pyramids only: a solid
  of revolution looks the same turned, and WORLD.md spins no other). The largest score wins when it
  reaches 0.5; otherwise the object is still.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree

from .objects4d import BOUNCE_DEPTH, GROWTH, SPIN_DEGREES, SPINNING_SHAPES, TRAVEL, Object4DSpec, yaw_matrix
from .reader3d import templates
from .vocab import COLOURS

OPACITY_THRESHOLD = 0.5
MIN_POINTS = 32
TRIM = 3.0  # points farther than TRIM × the median distance from the median centre are strays
MOTION_THRESHOLD = 0.5
YAW_STEP_DEG, YAW_WINDOW_DEG = 2.0, 16.0  # yaw search: this fine, this far either side of the last step's
YAW_POINTS = 256  # points per cloud in the yaw search
PERCENTILE = 1.0  # normalisation box: the 1st to 99th percentile
SHELL_DIRECTIONS, SHELL_BINS = 64, 20
ALIGN_STEPS = 4
TURN_STEP_DEG = 10.0
TEMPLATE_POINTS = 2048
SHELL_POINTS = 1024  # the shell is subsampled to at most this many points (fixed seed)
YAW_TIE = 1.02  # yaws whose Chamfer is within 2 % of the best are a tie: the one nearest the last step's wins


@functools.lru_cache(maxsize=None)
def rest_templates() -> tuple[tuple[str, np.ndarray, cKDTree], ...]:
    """(shape, points, tree) of the six unstretched solids (4D objects have no proportion), normalised
    as clouds are (`normalise_robust`)."""
    out = []
    for shape, proportion, pts, _ in templates():
        if proportion is None:
            pts = normalise_robust(pts[:TEMPLATE_POINTS])
            out.append((shape, pts, cKDTree(pts)))
    return tuple(out)


def normalise_robust(points: np.ndarray) -> np.ndarray:
    """Centre a cloud on its 1–99 % percentile box and scale by the box's horizontal half-width (x, z);
    points then farther than 1.2 from the centre along an axis are dropped."""
    lo, hi = np.percentile(points, PERCENTILE, axis=0), np.percentile(points, 100 - PERCENTILE, axis=0)
    x = (points - (lo + hi) / 2) / max(float((hi - lo)[[0, 2]].max()) / 2, 1e-9)
    return x[(np.abs(x) <= 1.2).all(1)]


def fibonacci_directions(n: int) -> np.ndarray:
    """n unit vectors spread evenly over the sphere (n, 3)."""
    i = np.arange(n) + 0.5
    polar, azimuth = np.arccos(1 - 2 * i / n), np.pi * (1 + 5 ** 0.5) * i
    return np.stack([np.cos(azimuth) * np.sin(polar), np.cos(polar), np.sin(azimuth) * np.sin(polar)], axis=1)


def visible_shell(points: np.ndarray, directions: int = SHELL_DIRECTIONS, bins: int = SHELL_BINS) -> np.ndarray:
    """The points of a normalised cloud that some direction sees first: for each of `directions` views, a
    bins × bins depth buffer over [-1.3, 1.3]², keeping points within one bin of the nearest depth."""
    width = 2.6 / bins
    visible = np.zeros(len(points), dtype=bool)
    for d in fibonacci_directions(directions):
        a = np.cross(d, [0.31, 0.95, 0.07])
        a /= np.linalg.norm(a)
        b = np.cross(d, a)
        u = np.clip(((points @ a + 1.3) / width).astype(int), 0, bins - 1)
        v = np.clip(((points @ b + 1.3) / width).astype(int), 0, bins - 1)
        depth, key = points @ d, u * bins + v
        nearest = np.full(bins * bins, np.inf)
        np.minimum.at(nearest, key, depth)
        visible |= depth <= nearest[key] + width
    return points[visible]


def align_to(cloud: np.ndarray, template: np.ndarray, tree: cKDTree, steps: int = ALIGN_STEPS) -> np.ndarray:
    """The cloud scaled and shifted onto the template: least squares over both directions' nearest
    neighbours, `steps` times (ICP without rotation)."""
    for _ in range(steps):
        src = np.concatenate([cloud, cloud[cKDTree(cloud).query(template)[1]]])
        dst = np.concatenate([template[tree.query(cloud)[1]], template])
        ms, md = src.mean(0), dst.mean(0)
        scale = float(np.sum((src - ms) * (dst - md)) / max(np.sum((src - ms) ** 2), 1e-12))
        cloud = (cloud - ms) * scale + md
    return cloud


def shape_distances(points: np.ndarray) -> dict[str, float]:
    """Chamfer distance of a rest-pose cloud (N, 3) to each solid, prepared as the module docstring says."""
    shell = visible_shell(normalise_robust(points))
    if len(shell) > SHELL_POINTS:
        shell = shell[np.random.default_rng(0).permutation(len(shell))[:SHELL_POINTS]]
    out = {}
    for shape, template, tree in rest_templates():
        turns = np.arange(0, 90, TURN_STEP_DEG) if shape in SPINNING_SHAPES else [0.0]
        for turn in turns:
            cloud = align_to(shell @ yaw_matrix(turn).T, template, tree)
            d = float(np.mean(cKDTree(cloud).query(template)[0] ** 2) + np.mean(tree.query(cloud)[0] ** 2))
            out[shape] = min(out.get(shape, math.inf), d)
    return out


@dataclass(frozen=True)
class Object4DReading:
    """What a moving cloud shows: colour, shape and motion; the motion scores, the Chamfer distance
    to the nearest template and its margin to the next; the track (centre [T, 3], size [T], yaw [T]
    in degrees) the motion was read from."""

    colour: str | None
    shape: str
    motion: str
    scores: dict[str, float]
    chamfer: float
    margin: float
    centres: np.ndarray = field(repr=False)
    sizes: np.ndarray = field(repr=False)
    yaws: np.ndarray = field(repr=False)

    def matches(self, spec: Object4DSpec) -> bool:
        """Colour (when read), shape and motion equal the spec's."""
        return (self.colour is None or self.colour == spec.colour) and self.shape == spec.shape \
            and self.motion == spec.motion


def read_colour_hue(colours: np.ndarray) -> str:
    """The WORLD.md colour nearest in RGB direction (cosine) to the median of the brighter half of
    colours (N, 3) in [0, 1]."""
    colours = np.asarray(colours, dtype=np.float64)
    brightness = colours.sum(1)
    median = np.median(colours[brightness >= np.median(brightness)], axis=0)
    words = list(COLOURS)
    table = np.asarray([COLOURS[w] for w in words], dtype=np.float64)
    table /= np.linalg.norm(table, axis=1, keepdims=True)
    return words[int(np.argmax(table @ (median / max(np.linalg.norm(median), 1e-12))))]


def opaque_subset(centres: np.ndarray, opacities: np.ndarray | None) -> np.ndarray:
    """Indices of the Gaussians that count: opaque (the MIN_POINTS most opaque when fewer are), then
    without strays far from the first step's median centre."""
    n = centres.shape[1]
    if opacities is None:
        keep = np.arange(n)
    else:
        opacities = np.asarray(opacities, dtype=np.float64)
        mean_opacity = opacities.mean(0) if opacities.ndim == 2 else opacities
        keep = np.flatnonzero(mean_opacity >= OPACITY_THRESHOLD)
        if len(keep) < MIN_POINTS:
            keep = np.argsort(-mean_opacity, kind="stable")[:MIN_POINTS]
    first = centres[0, keep]
    dist = np.linalg.norm(first - np.median(first, axis=0), axis=1)
    inliers = dist <= TRIM * max(float(np.median(dist)), 1e-9)
    return keep[inliers] if inliers.sum() >= MIN_POINTS else keep


def track_yaw(clouds: list[np.ndarray]) -> np.ndarray:
    """Yaw in degrees of each centred, size-normalised cloud relative to the first one, followed step
    by step (search ±YAW_WINDOW_DEG around the previous step's yaw; ties go to the nearest)."""
    reference = clouds[0]
    tree_ref = cKDTree(reference)
    yaws = [0.0]
    for cloud in clouds[1:]:
        tree = cKDTree(cloud)
        candidates = yaws[-1] + np.arange(-YAW_WINDOW_DEG, YAW_WINDOW_DEG + 1e-9, YAW_STEP_DEG)
        # Chamfer between the cloud turned back by a and the reference (= the cloud and the reference turned by a)
        costs = np.array([np.mean(tree_ref.query(cloud @ yaw_matrix(-a).T)[0] ** 2)
                          + np.mean(tree.query(reference @ yaw_matrix(a).T)[0] ** 2) for a in candidates])
        tied = np.flatnonzero(costs <= costs.min() * YAW_TIE + 1e-12)
        yaws.append(float(candidates[tied[np.argmin(np.abs(candidates[tied] - yaws[-1]))]]))
    return np.array(yaws)


def read_object4d(centres: np.ndarray, colours: np.ndarray | None = None,
                  opacities: np.ndarray | None = None) -> Object4DReading:
    """Read a 4D asset: centres (T, N, 3) of the same N Gaussians at T ≥ 2 time steps, colours (N, 3) or
    (T, N, 3) in [0, 1] (None: no colour read), opacities (N,) or (T, N) (None: all opaque)."""
    centres = np.asarray(centres, dtype=np.float64)
    if centres.ndim != 3 or centres.shape[2] != 3 or centres.shape[0] < 2 or centres.shape[1] < 2:
        raise ValueError(f"expected centres of shape (T >= 2, N >= 2, 3), got {centres.shape}")
    if not np.isfinite(centres).all():
        raise ValueError("the centres hold non-finite coordinates")
    keep = opaque_subset(centres, opacities)
    pts = centres[:, keep]  # (T, M, 3)
    colour = None
    if colours is not None:
        colours = np.asarray(colours, dtype=np.float64)
        colour = read_colour_hue((colours[0] if colours.ndim == 3 else colours)[keep])

    # shape: the first (rest) step against the rest-pose templates
    distances = shape_distances(pts[0])
    ranked = sorted(distances, key=distances.get)
    shape = ranked[0]

    # motion: centre, size and yaw track
    track = pts.mean(axis=1)  # (T, 3)
    sizes = np.median(np.linalg.norm(pts - track[:, None], axis=2), axis=1)  # (T,)
    sub = np.random.default_rng(0).permutation(pts.shape[1])[:YAW_POINTS]
    normalised = [(p[sub] - c) / max(s, 1e-9) for p, c, s in zip(pts, track, sizes)]
    yaws = track_yaw(normalised) if shape in SPINNING_SHAPES else np.zeros(len(pts))
    dx = track[-1, 0] - track[0, 0]
    fall, rise = track[0, 1] - track[:, 1].min(), track[-1, 1] - track[:, 1].min()
    log_growth = math.log(max(sizes[-1], 1e-9) / max(sizes[0], 1e-9))
    scores = {"moving left" if dx < 0 else "moving right": abs(dx) / (2 * TRAVEL),
              "bouncing": min(fall, rise) / BOUNCE_DEPTH,
              "growing" if log_growth > 0 else "shrinking": abs(log_growth) / math.log(GROWTH),
              # a solid of revolution looks the same turned: its turn is not a motion anyone sees (nor a caption)
              "spinning": abs(yaws[-1]) / SPIN_DEGREES if shape in SPINNING_SHAPES else 0.0}
    best = max(scores, key=scores.get)
    motion = best if scores[best] >= MOTION_THRESHOLD else "still"
    return Object4DReading(colour, shape, motion, {k: float(v) for k, v in scores.items()}, distances[shape],
                           distances[ranked[1]] - distances[shape], track, sizes, yaws)


def score4d(readings, specs) -> float:
    """Fraction of readings (`Object4DReading`s) that match their specs."""
    readings, specs = list(readings), list(specs)
    if len(readings) != len(specs) or not readings:
        raise ValueError(f"need as many specs as readings (and at least one), got {len(readings)} and {len(specs)}")
    return float(np.mean([r.matches(s) for r, s in zip(readings, specs)]))
