"""Shapes World in 3D: six solids as point clouds and voxel occupancy, their captions and specs.

WORLD.md fixes the geometry. Before stretching: sphere of radius 1; cube of side 2; cylinder of
radius 1 and height 2 with caps; cone of base radius 1 and height 2, apex up, with its base;
torus with ring radius 0.7 and tube radius 0.3 lying flat (axis = y); square pyramid of base
side 2 and height 2, apex up, with its base. `tall` stretches 1.6× along +y, `wide` 1.6× across
it (x and z). Then the solid is centred on its bounding box and scaled so its largest coordinate
magnitude is 1 (the bounding box is the solid's own, computed exactly, so every sample of a
spec shares one frame and no point lies outside [-1, 1]³).

A sample is 2048 points drawn uniformly by area on the final (stretched) surface, optionally
carrying the colour's RGB in [0, 1], and the solid's occupancy on a 32³ grid (a voxel is
occupied when its centre lies inside the solid). Uniform by area after stretching: points are
drawn uniformly on the unstretched surface with their normals, then kept with probability
proportional to the area factor of the stretch at their normal, |det A|·|A⁻ᵀ n| (rejection).

Captions: `a [proportion] [colour] <shape3d>`, e.g. `a tall red cylinder`; a left-out
proportion means unstretched, a left-out colour means uncoloured points.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import re
from dataclasses import dataclass

import numpy as np

from .scene import as_rng
from .vocab import COLOURS

SHAPES3D: tuple[str, ...] = ("sphere", "cube", "cylinder", "cone", "torus", "pyramid")
# proportion word -> stretch of (x, y, z); None is the unstretched solid
PROPORTIONS: dict[str, tuple[float, float, float]] = {"tall": (1.0, 1.6, 1.0), "wide": (1.6, 1.0, 1.6)}
PROPORTION_CHOICES: tuple[str | None, ...] = (None, *PROPORTIONS)
NUM_POINTS = 2048
GRID = 32
TORUS_RING, TORUS_TUBE = 0.7, 0.3
SPLITS = ("train", "heldout", "any")
HELDOUT_MODULUS = 16  # one combination in ~16 is held out


#################################################################################
#                                    Specs                                      #
#################################################################################

@dataclass(frozen=True)
class Shape3DSpec:
    """One 3D shape: what a caption can state. `proportion` / `colour` None: unstretched / uncoloured."""

    shape: str
    proportion: str | None = None
    colour: str | None = None

    def __post_init__(self):
        if self.shape not in SHAPES3D:
            raise ValueError(f"unknown shape3d {self.shape!r}; expected one of {list(SHAPES3D)}")
        if self.proportion is not None and self.proportion not in PROPORTIONS:
            raise ValueError(f"unknown proportion {self.proportion!r}; expected one of {list(PROPORTIONS)} or None")
        if self.colour is not None and self.colour not in COLOURS:
            raise ValueError(f"unknown colour {self.colour!r}; expected one of {list(COLOURS)} or None")

    def as_dict(self) -> dict[str, str | None]:
        return {"shape": self.shape, "proportion": self.proportion, "colour": self.colour}


def combination_key(spec: Shape3DSpec) -> str:
    return "3d|" + "|".join(v or "-" for v in (spec.proportion, spec.colour, spec.shape))


def is_held_out(spec: Shape3DSpec) -> bool:
    """True for the fixed ~1/16 of combinations training never shows (stable sha256, as in `scene`)."""
    digest = hashlib.sha256(combination_key(spec).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % HELDOUT_MODULUS == 0


@functools.lru_cache(maxsize=None)
def all_specs3d() -> tuple[Shape3DSpec, ...]:
    """Every combination in vocabulary order: 6 shapes × 3 proportions × 7 colours (incl. none) = 126."""
    return tuple(Shape3DSpec(s, p, c) for p, c, s in
                 itertools.product(PROPORTION_CHOICES, (None, *COLOURS), SHAPES3D))


@functools.lru_cache(maxsize=None)
def split_specs3d(split: str) -> tuple[Shape3DSpec, ...]:
    """The combinations of one split: 'train', 'heldout' or 'any'."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    if split == "any":
        return all_specs3d()
    return tuple(s for s in all_specs3d() if is_held_out(s) == (split == "heldout"))


def sample_spec3d(rng, split: str = "train", coloured: bool | None = None) -> Shape3DSpec:
    """One combination drawn uniformly from `split`; `coloured` True / False keeps only coloured /
    uncoloured ones (None: either). `rng` is a numpy Generator or a seed."""
    specs = [s for s in split_specs3d(split) if coloured is None or (s.colour is not None) == coloured]
    return specs[int(as_rng(rng).integers(len(specs)))]


#################################################################################
#                                   Captions                                    #
#################################################################################

def _choice(words) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


_GRAMMAR3D = re.compile(rf"a (?:(?P<proportion>{_choice(PROPORTIONS)}) )?(?:(?P<colour>{_choice(COLOURS)}) )?"
                        rf"(?P<shape>{_choice(SHAPES3D)})")


def caption3d(spec: Shape3DSpec) -> str:
    """The canonical caption: `a [proportion] [colour] <shape3d>`."""
    return " ".join(w for w in ("a", spec.proportion, spec.colour, spec.shape) if w)


def parse_caption3d(text: str) -> Shape3DSpec:
    """The spec a caption states; surrounding spaces, case and a final full stop are forgiven."""
    cleaned = " ".join(text.strip().lower().rstrip(".").split())
    match = _GRAMMAR3D.fullmatch(cleaned)
    if match is None:
        raise ValueError(f"not a 3D Shapes World caption: {text!r}; expected 'a [tall|wide] [colour] "
                         f"<{'|'.join(SHAPES3D)}>', e.g. 'a tall red cylinder'")
    return Shape3DSpec(match["shape"], match["proportion"], match["colour"])


#################################################################################
#                     Surfaces: uniform by area, with normals                   #
#################################################################################

def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _disk(n: int, rng: np.random.Generator, y: float, up: float) -> tuple[np.ndarray, np.ndarray]:
    """Uniform on the unit disk at height y, normal (0, up, 0)."""
    r, theta = np.sqrt(rng.random(n)), rng.random(n) * 2 * np.pi
    pts = np.stack([r * np.cos(theta), np.full(n, y), r * np.sin(theta)], axis=1)
    return pts, np.tile([0.0, up, 0.0], (n, 1))


def _sphere(n, rng):
    p = _unit(rng.standard_normal((n, 3)))
    return p, p.copy()


def _cube(n, rng):
    axis, sign = rng.integers(3, size=n), rng.choice([-1.0, 1.0], size=n)
    pts = rng.uniform(-1, 1, (n, 3))
    pts[np.arange(n), axis] = sign
    normals = np.zeros((n, 3))
    normals[np.arange(n), axis] = sign
    return pts, normals


def _cylinder(n, rng):
    # lateral 4π, each cap π
    part = rng.choice(3, size=n, p=[4 / 6, 1 / 6, 1 / 6])
    theta, y = rng.random(n) * 2 * np.pi, rng.uniform(-1, 1, n)
    pts = np.stack([np.cos(theta), y, np.sin(theta)], axis=1)
    normals = np.stack([np.cos(theta), np.zeros(n), np.sin(theta)], axis=1)
    for k, (height, up) in ((1, (1.0, 1.0)), (2, (-1.0, -1.0))):
        idx = part == k
        pts[idx], normals[idx] = _disk(int(idx.sum()), rng, height, up)
    return pts, normals


def _cone(n, rng):
    # apex (0, 1, 0), base radius 1 at y = -1; lateral π√5, base π
    lateral = rng.random(n) < np.sqrt(5) / (np.sqrt(5) + 1)
    s, theta = np.sqrt(rng.random(n)), rng.random(n) * 2 * np.pi  # s: fraction of the way apex → base
    pts = np.stack([s * np.cos(theta), 1 - 2 * s, s * np.sin(theta)], axis=1)
    normals = np.stack([2 * np.cos(theta), np.ones(n), 2 * np.sin(theta)], axis=1) / np.sqrt(5)
    base = ~lateral
    pts[base], normals[base] = _disk(int(base.sum()), rng, -1.0, -1.0)
    return pts, normals


def _torus(n, rng):
    # area element ∝ (R + r cos φ): draw φ by rejection
    phi = np.empty(0)
    while phi.size < n:
        cand = rng.random(2 * n) * 2 * np.pi
        keep = rng.random(2 * n) * (TORUS_RING + TORUS_TUBE) < TORUS_RING + TORUS_TUBE * np.cos(cand)
        phi = np.concatenate([phi, cand[keep]])
    phi, theta = phi[:n], rng.random(n) * 2 * np.pi
    normals = np.stack([np.cos(phi) * np.cos(theta), np.sin(phi), np.cos(phi) * np.sin(theta)], axis=1)
    ring = np.stack([np.cos(theta), np.zeros(n), np.sin(theta)], axis=1) * TORUS_RING
    return ring + TORUS_TUBE * normals, normals


_PYRAMID_APEX = np.array([0.0, 1.0, 0.0])
# each side: its two base corners (counter-clockwise seen from outside) and outward normal
_PYRAMID_SIDES = [((-1, 1), (1, 1), (0, 1, 2)), ((1, 1), (1, -1), (2, 1, 0)),
                  ((1, -1), (-1, -1), (0, 1, -2)), ((-1, -1), (-1, 1), (-2, 1, 0))]


def _pyramid(n, rng):
    # four sides of area √5 each, base 4
    side_area = np.sqrt(5)
    part = rng.choice(5, size=n, p=np.array([side_area] * 4 + [4.0]) / (4 * side_area + 4))
    pts, normals = np.empty((n, 3)), np.empty((n, 3))
    for k, ((ax, az), (bx, bz), normal) in enumerate(_PYRAMID_SIDES):
        idx = np.flatnonzero(part == k)
        u, v = rng.random(idx.size), rng.random(idx.size)
        flip = u + v > 1  # fold the unit square onto the triangle
        u[flip], v[flip] = 1 - u[flip], 1 - v[flip]
        a, b = np.array([ax, -1.0, az]), np.array([bx, -1.0, bz])
        pts[idx] = a + u[:, None] * (b - a) + v[:, None] * (_PYRAMID_APEX - a)
        normals[idx] = np.array(normal) / np.sqrt(5)
    base = np.flatnonzero(part == 4)
    pts[base] = np.stack([rng.uniform(-1, 1, base.size), np.full(base.size, -1.0), rng.uniform(-1, 1, base.size)], 1)
    normals[base] = [0.0, -1.0, 0.0]
    return pts, normals


SURFACES = {"sphere": _sphere, "cube": _cube, "cylinder": _cylinder, "cone": _cone, "torus": _torus,
            "pyramid": _pyramid}
# half extents of each unstretched solid's bounding box (all are centred on it already)
HALF_EXTENTS = {s: np.array([1.0, TORUS_TUBE if s == "torus" else 1.0, 1.0]) for s in SHAPES3D}


def stretch_of(proportion: str | None) -> np.ndarray:
    return np.array(PROPORTIONS[proportion] if proportion else (1.0, 1.0, 1.0))


def normalising_scale(shape: str, proportion: str | None) -> float:
    """The factor that brings the stretched solid's largest coordinate magnitude to 1."""
    return 1.0 / float((HALF_EXTENTS[shape] * stretch_of(proportion)).max())


def surface_points(shape: str, proportion: str | None, n: int, rng) -> np.ndarray:
    """n points (n, 3) float32 uniform by area on the normalised, stretched surface."""
    if shape not in SHAPES3D:
        raise ValueError(f"unknown shape3d {shape!r}; expected one of {list(SHAPES3D)}")
    rng = as_rng(rng)
    stretch = stretch_of(proportion)
    # area factor of the map diag(stretch) at unit normal m: det·|A⁻ᵀ m| ≤ det·max(1/stretch)
    det, bound = float(np.prod(stretch)), float(np.prod(stretch) / stretch.min())
    kept: list[np.ndarray] = []
    count = 0
    while count < n:
        pts, normals = SURFACES[shape](max(2 * (n - count), 64), rng)
        factor = det * np.linalg.norm(normals / stretch, axis=1)
        pts = pts[rng.random(len(pts)) * bound < factor]
        kept.append(pts)
        count += len(pts)
    pts = np.concatenate(kept)[:n] * stretch * normalising_scale(shape, proportion)
    return pts.astype(np.float32)


#################################################################################
#                                  Occupancy                                    #
#################################################################################

def inside(shape: str, p: np.ndarray) -> np.ndarray:
    """Whether each point (M, 3) of the unstretched frame lies inside the solid → (M,) bool."""
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    radial = np.hypot(x, z)
    in_slab = np.abs(y) <= 1
    if shape == "sphere":
        return (p ** 2).sum(1) <= 1
    if shape == "cube":
        return np.abs(p).max(1) <= 1
    if shape == "cylinder":
        return in_slab & (radial <= 1)
    if shape == "cone":
        return in_slab & (radial <= (1 - y) / 2)
    if shape == "torus":
        return (radial - TORUS_RING) ** 2 + y ** 2 <= TORUS_TUBE ** 2
    if shape == "pyramid":
        return in_slab & (np.maximum(np.abs(x), np.abs(z)) <= (1 - y) / 2)
    raise ValueError(f"unknown shape3d {shape!r}; expected one of {list(SHAPES3D)}")


def voxel_centres(grid: int = GRID) -> np.ndarray:
    """Centres (grid³, 3) of the voxels of [-1, 1]³, index order (i, j, k) ↔ (x, y, z)."""
    c = (np.arange(grid) + 0.5) / grid * 2 - 1
    return np.stack(np.meshgrid(c, c, c, indexing="ij"), axis=-1).reshape(-1, 3)


def occupancy(shape: str, proportion: str | None = None, grid: int = GRID) -> np.ndarray:
    """bool (grid, grid, grid), indexed [x, y, z]: voxels of [-1, 1]³ whose centre is inside the
    normalised solid. Deterministic: the occupancy depends on the spec only."""
    frame = voxel_centres(grid) / (stretch_of(proportion) * normalising_scale(shape, proportion))
    return inside(shape, frame).reshape(grid, grid, grid)


def points_to_occupancy(points: np.ndarray, grid: int = GRID) -> np.ndarray:
    """bool (grid, grid, grid), indexed [x, y, z]: voxels of [-1, 1]³ that hold at least one point
    (points outside are clamped to the border voxels)."""
    idx = np.clip(np.floor((np.asarray(points, dtype=np.float64) + 1) / 2 * grid), 0, grid - 1).astype(int)
    occ = np.zeros((grid, grid, grid), dtype=bool)
    occ[idx[:, 0], idx[:, 1], idx[:, 2]] = True
    return occ


#################################################################################
#                                   Samples                                     #
#################################################################################

@dataclass(frozen=True)
class Shape3DSample:
    """points (N, 3) float32 in [-1, 1]; colours (N, 3) float32 RGB in [0, 1] or None;
    occupancy (G, G, G) bool indexed [x, y, z]; the spec and its canonical caption."""

    spec: Shape3DSpec
    points: np.ndarray
    colours: np.ndarray | None
    occupancy: np.ndarray
    caption: str

    def features(self, default_colour: tuple[float, float, float] | None = None) -> np.ndarray:
        """(N, 3) xyz, or (N, 6) xyz + rgb when coloured (or when `default_colour` fills the
        colour of an uncoloured sample)."""
        colours = self.colours
        if colours is None and default_colour is not None:
            colours = np.tile(np.asarray(default_colour, dtype=np.float32), (len(self.points), 1))
        return self.points if colours is None else np.concatenate([self.points, colours], axis=1)


def colour_rgb(colour: str) -> np.ndarray:
    """WORLD.md's RGB of a colour word as float32 in [0, 1]."""
    return np.asarray(COLOURS[colour], dtype=np.float32) / 255


def sample_shape3d(spec: Shape3DSpec | str, rng=None, num_points: int = NUM_POINTS, grid: int = GRID) -> Shape3DSample:
    """A world sample of `spec` (or of a caption): points uniform by area, colours, occupancy.
    `rng` is a numpy Generator or a seed; the same spec and seed give the same points."""
    if isinstance(spec, str):
        spec = parse_caption3d(spec)
    points = surface_points(spec.shape, spec.proportion, num_points, as_rng(rng))
    colours = None if spec.colour is None else np.tile(colour_rgb(spec.colour), (num_points, 1))
    return Shape3DSample(spec, points, colours, occupancy(spec.shape, spec.proportion, grid), caption3d(spec))


def normalise_points(points: np.ndarray) -> np.ndarray:
    """Centre a cloud (N, 3) on its bounding box and scale its largest coordinate magnitude to 1."""
    points = np.asarray(points, dtype=np.float64)
    lo, hi = points.min(0), points.max(0)
    centred = points - (lo + hi) / 2
    return centred / max(float(np.abs(centred).max()), 1e-12)
