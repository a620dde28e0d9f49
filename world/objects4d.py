"""Shapes World in 4D: a coloured solid with a motion over normalised time, as surface points per step.

WORLD.md fixes the words: `a <colour> <shape3d> <motion>`, six solids (`shapes3d`), seven motions.
This module gives what they mean, exactly:

- Rest pose: the unstretched solid of `shapes3d`, centred on its bounding box and scaled so that
  it fits a sphere of radius 0.6 (its farthest surface point is 0.6 from the centre), at the origin.
- Motion over t ∈ [0, 1], a similarity transform of the whole object,
  p(t) = R_y(θ(t)) · s(t) · p_rest + (x(t), y(t), 0):
  - `spinning` (cube and pyramid only): θ = 90° · t about +y, the orbit camera's sense (+z → +x);
  - `bouncing`: y = 0.2 − 0.4 · (1 − (2t − 1)²): a drop from 0.2 to −0.2 at t = ½ and back, the
    parabola of a ball bouncing once (amplitude 0.4);
  - `moving left` / `moving right`: x from +0.6 to −0.6 / from −0.6 to +0.6 at constant speed;
  - `growing` / `shrinking`: s from 1 to 1.6 / to 1/1.6, linearly;
  - `still`: nothing moves.
- Colour: WORLD.md's RGB times a fixed Lambertian shading computed at rest (light from the front,
  above and to the right) and then carried by the surface as paint. Faces of a solid differ in brightness,
  so a turn shows even on a cube seen from a symmetric angle, and every frame is exactly a set of
  moving points of constant colour (what a 4D Gaussian model represents); hue stays the colour's.
- Ground truth: the same N surface points (uniform by area at rest) moved to every time step,
  so point i is the same surface point in every frame.

Orbit clips (one view per time step, `gaussians.Cameras.orbit`) are rendered from these points in
`gaussians/world_render.py`: `world/` is a bottom layer and never imports `gaussians/`.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from dataclasses import dataclass

import numpy as np

from .scene import as_rng
from .shapes3d import SHAPES3D, SURFACES
from .vocab import COLOURS

MOTIONS4D: tuple[str, ...] = ("spinning", "bouncing", "moving left", "moving right", "growing", "shrinking", "still")
SPINNING_SHAPES: tuple[str, ...] = ("cube", "pyramid")  # solids of revolution look the same when spun
REST_RADIUS = 0.6
SPIN_DEGREES = 90.0
BOUNCE_TOP, BOUNCE_DEPTH = 0.2, 0.4
TRAVEL = 0.6  # moving: x from ±TRAVEL to ∓TRAVEL
GROWTH = 1.6
NUM_POINTS = 4096
NUM_FRAMES = 24
LIGHT = (0.2, 0.6, 1.0)  # direction towards the light (normalised below): mostly from the front, above right
AMBIENT = 0.55  # brightness of a face turned away from the light; a face towards it gets 1
# distance from the bounding-box centre to the farthest surface point of each unstretched solid
BOUNDING_RADIUS = {"sphere": 1.0, "cube": math.sqrt(3), "cylinder": math.sqrt(2), "cone": math.sqrt(2),
                   "torus": 1.0, "pyramid": math.sqrt(3)}
# surface area of each unstretched solid (WORLD.md's geometry, caps and bases included)
UNIT_AREA = {"sphere": 4 * math.pi, "cube": 24.0, "cylinder": 6 * math.pi, "cone": math.pi * (math.sqrt(5) + 1),
             "torus": 4 * math.pi ** 2 * 0.7 * 0.3, "pyramid": 4 * math.sqrt(5) + 4}


@dataclass(frozen=True)
class Object4DSpec:
    """One 4D object: a colour, a solid and a motion (`spinning` only for cubes and pyramids)."""

    colour: str
    shape: str
    motion: str

    def __post_init__(self):
        for field, allowed in (("colour", tuple(COLOURS)), ("shape", SHAPES3D), ("motion", MOTIONS4D)):
            if getattr(self, field) not in allowed:
                raise ValueError(f"unknown {field} {getattr(self, field)!r}; expected one of {list(allowed)}")
        if self.motion == "spinning" and self.shape not in SPINNING_SHAPES:
            raise ValueError(f"a {self.shape} does not spin visibly; spinning is for {' and '.join(SPINNING_SHAPES)}")

    def as_dict(self) -> dict[str, str]:
        return {"colour": self.colour, "shape": self.shape, "motion": self.motion}


@functools.lru_cache(maxsize=None)
def all_specs4d() -> tuple[Object4DSpec, ...]:
    """Every valid combination, in vocabulary order: 6 colours × (6 solids × 6 motions + 2 spinning) = 228."""
    return tuple(Object4DSpec(c, s, m) for c, s, m in itertools.product(COLOURS, SHAPES3D, MOTIONS4D)
                 if m != "spinning" or s in SPINNING_SHAPES)


def spread_specs4d(n: int, seed: int = 4) -> list[Object4DSpec]:
    """n distinct specs covering every motion as evenly as n allows (motions take turns; within a
    motion, solids and colours in a fixed shuffled order): for benchmarks and tests that fit a few clips."""
    if not 0 < n <= len(all_specs4d()):
        raise ValueError(f"n must be in 1..{len(all_specs4d())}, got {n}")
    order = np.random.default_rng(seed).permutation(len(all_specs4d()))
    queues = {m: [all_specs4d()[i] for i in order if all_specs4d()[i].motion == m] for m in MOTIONS4D}
    out: list[Object4DSpec] = []
    while len(out) < n:
        for motion in MOTIONS4D:
            if queues[motion] and len(out) < n:
                out.append(queues[motion].pop(0))
    return out


#################################################################################
#                                   Captions                                    #
#################################################################################

def _choice(words) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


_GRAMMAR4D = re.compile(rf"a (?P<colour>{_choice(COLOURS)}) (?P<shape>{_choice(SHAPES3D)}) "
                        rf"(?P<motion>{_choice(MOTIONS4D)})")


def caption4d(spec: Object4DSpec) -> str:
    """The caption: `a <colour> <shape3d> <motion>`, e.g. `a yellow torus bouncing`."""
    return f"a {spec.colour} {spec.shape} {spec.motion}"


def parse_caption4d(text: str) -> Object4DSpec:
    """The spec a caption states; surrounding spaces, case and a final full stop are forgiven."""
    cleaned = " ".join(text.strip().lower().rstrip(".").split())
    match = _GRAMMAR4D.fullmatch(cleaned)
    if match is None:
        raise ValueError(f"not a 4D Shapes World caption: {text!r}; expected 'a <colour> <{'|'.join(SHAPES3D)}> "
                         f"<{'|'.join(MOTIONS4D)}>', e.g. 'a yellow torus bouncing'")
    return Object4DSpec(match["colour"], match["shape"], match["motion"])


#################################################################################
#                                    Motion                                     #
#################################################################################

@dataclass(frozen=True)
class Pose4D:
    """The object's similarity transform at one time: p = R_y(yaw) · scale · p_rest + offset."""

    offset: tuple[float, float, float]
    yaw_deg: float
    scale: float


def frame_times(n_frames: int = NUM_FRAMES) -> np.ndarray:
    """Normalised times of a clip's frames: i / (n − 1), so the first frame is t = 0 and the last t = 1."""
    if n_frames < 2:
        raise ValueError(f"a clip needs at least 2 frames, got {n_frames}")
    return np.arange(n_frames, dtype=np.float64) / (n_frames - 1)


def pose_at(motion: str, t: float) -> Pose4D:
    """Where a `motion` puts the object at time t ∈ [0, 1] (see the module docstring)."""
    if motion not in MOTIONS4D:
        raise ValueError(f"unknown motion {motion!r}; expected one of {list(MOTIONS4D)}")
    t = float(t)
    x = {"moving left": TRAVEL - 2 * TRAVEL * t, "moving right": -TRAVEL + 2 * TRAVEL * t}.get(motion, 0.0)
    y = BOUNCE_TOP - BOUNCE_DEPTH * (1 - (2 * t - 1) ** 2) if motion == "bouncing" else 0.0
    scale = {"growing": 1 + (GROWTH - 1) * t, "shrinking": 1 - (1 - 1 / GROWTH) * t}.get(motion, 1.0)
    yaw = SPIN_DEGREES * t if motion == "spinning" else 0.0
    return Pose4D((x, y, 0.0), yaw, scale)


def yaw_matrix(yaw_deg: float) -> np.ndarray:
    """R_y: rotation about +y by yaw (+z turns towards +x)."""
    a = math.radians(yaw_deg)
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def apply_pose(points: np.ndarray, pose: Pose4D) -> np.ndarray:
    """Rest-pose points (N, 3) moved by `pose`."""
    return (pose.scale * points) @ yaw_matrix(pose.yaw_deg).T + np.asarray(pose.offset)


#################################################################################
#                                   Samples                                     #
#################################################################################

def rest_surface(shape: str, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """n points uniform by area on the rest-pose solid and their outward normals, each (n, 3) float64."""
    if shape not in SHAPES3D:
        raise ValueError(f"unknown shape3d {shape!r}; expected one of {list(SHAPES3D)}")
    points, normals = SURFACES[shape](n, as_rng(rng))  # unstretched solids are centred on their box already
    return points * (REST_RADIUS / BOUNDING_RADIUS[shape]), normals


def shaded_colours(colour: str, normals: np.ndarray) -> np.ndarray:
    """WORLD.md's colour of each point (N, 3) in [0, 1] under the rest-pose shading."""
    light = np.asarray(LIGHT) / np.linalg.norm(LIGHT)
    brightness = AMBIENT + (1 - AMBIENT) * np.clip(normals @ light, 0.0, 1.0)
    return (np.asarray(COLOURS[colour], dtype=np.float64) / 255)[None, :] * brightness[:, None]


@dataclass(frozen=True)
class Object4DSample:
    """Ground truth of one 4D object: points (T, N, 3) float32 (point i is the same surface point at
    every time), colours (N, 3) float32 in [0, 1], the times (T,) in [0, 1], the per-point surface
    spacing `spacing` (for splatting), the spec and its caption."""

    spec: Object4DSpec
    times: np.ndarray
    points: np.ndarray
    colours: np.ndarray
    scales: np.ndarray  # (T,) the object's scale factor at each time
    spacing: float
    caption: str


def surface_area(shape: str) -> float:
    """Area of the rest-pose solid's surface (WORLD.md's geometry scaled by REST_RADIUS / bounding radius)."""
    return UNIT_AREA[shape] * (REST_RADIUS / BOUNDING_RADIUS[shape]) ** 2


def sample_object4d(spec: Object4DSpec | str, n_frames: int = NUM_FRAMES, num_points: int = NUM_POINTS,
                    rng=None, times=None) -> Object4DSample:
    """A world sample of `spec` (or of a caption) at `times` (default: `frame_times(n_frames)`).
    `rng` is a numpy Generator or a seed; the same spec and seed give the same points."""
    if isinstance(spec, str):
        spec = parse_caption4d(spec)
    times = frame_times(n_frames) if times is None else np.asarray(times, dtype=np.float64)
    if times.ndim != 1 or len(times) < 1 or (times < 0).any() or (times > 1).any():
        raise ValueError(f"times must be a non-empty 1-D array in [0, 1], got {times}")
    rest, normals = rest_surface(spec.shape, num_points, as_rng(rng))
    poses = [pose_at(spec.motion, t) for t in times]
    points = np.stack([apply_pose(rest, p) for p in poses]).astype(np.float32)
    spacing = math.sqrt(surface_area(spec.shape) / num_points)
    return Object4DSample(spec, times, points, shaded_colours(spec.colour, normals).astype(np.float32),
                          np.array([p.scale for p in poses]), spacing, caption4d(spec))
