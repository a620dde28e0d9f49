"""Shapes World: vocabulary, geometry, captions, held-out split, videos, oracle, batches."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
import torch

import world
from world.layout import cell_of
from world.scene import all_specs, split_specs
from world.video_scene import DEFAULT_START

ORACLE_SAMPLES = 600
# Area of each shape over its e x e bbox, from WORLD.md's geometry.
SHAPE_FILL = {"circle": math.pi / 4, "square": 1.0, "triangle": 0.5, "cross": 5 / 9}


# ---------------------------------------------------------------------------- helpers

def object_alpha(pixels: np.ndarray, colour: str, background: str) -> np.ndarray:
    """Exact coverage from known colours: (..., H, W, 3) uint8 -> (..., H, W) float."""
    bg = np.array(world.BACKGROUNDS[background], dtype=np.float64)
    d = np.array(world.COLOURS[colour], dtype=np.float64) - bg
    return (pixels.astype(np.float64) - bg) @ d / (d @ d)


def centroid(alpha: np.ndarray) -> tuple[float, float]:
    ys, xs = np.indices(alpha.shape) + 0.5
    return float((alpha * xs).sum() / alpha.sum()), float((alpha * ys).sum() / alpha.sum())


def bbox(alpha: np.ndarray) -> tuple[int, int, int, int]:
    """(y0, x0, y1, x1), end-exclusive, of pixels at least half covered."""
    mask = alpha > 0.5
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return rows[0], cols[0], rows[-1] + 1, cols[-1] + 1


def sample_world(n: int, resolution: int, seed: int, split: str = "any"):
    rng = np.random.default_rng(seed)
    specs = [world.sample_spec(rng, split) for _ in range(n)]
    return specs, [world.render_image(s, resolution, rng) for s in specs]


def degrade(img: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """3x3 box blur plus Gaussian noise: a stand-in for an imperfect generated sample."""
    f = np.pad(img.astype(np.float32), ((1, 1), (1, 1), (0, 0)), mode="edge")
    h, w = img.shape[:2]
    f = sum(f[i:i + h, j:j + w] for i in range(3) for j in range(3)) / 9
    return np.clip(np.rint(f + rng.normal(0, sigma, f.shape)), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------- vocabulary

def test_vocabulary_matches_world_md():
    assert world.COLOURS == {"red": (220, 30, 30), "green": (30, 180, 40), "blue": (30, 70, 230),
                             "yellow": (240, 220, 30), "cyan": (30, 210, 220),
                             "magenta": (220, 40, 210)}
    assert world.BACKGROUNDS == {"black": (0, 0, 0), "white": (255, 255, 255), "gray": (128, 128, 128)}
    assert world.SHAPES == ("circle", "square", "triangle", "cross")
    assert world.SIZES == {"small": 1 / 3, "large": 1 / 2}
    assert set(world.POSITIONS) == {"top left", "top", "top right", "left", "center", "right",
                                    "bottom left", "bottom", "bottom right"}
    assert sorted(world.POSITIONS.values()) == list(itertools.product(range(3), range(3)))
    assert world.MOTIONS == ("moving left", "moving right", "moving up", "moving down", "growing",
                             "shrinking", "spinning", "still")


def test_spec_rejects_unknown_words():
    with pytest.raises(ValueError, match="purple"):
        world.ImageSpec("purple", "circle", "small", "center", "black")
    with pytest.raises(ValueError, match="circles do not spin"):
        world.VideoSpec("red", "circle", "small", "center", "black", "spinning")


# ---------------------------------------------------------------------------- geometry

@pytest.mark.parametrize("resolution", [32, 64])
def test_image_geometry(resolution):
    """Extent, area, centre cell and jitter bound, object fully inside, for every combination."""
    rng = np.random.default_rng(0)
    side = resolution
    for spec in all_specs():
        if spec.background != "black":
            continue  # geometry does not depend on the background
        img = world.render_image(spec, resolution, rng)
        alpha = object_alpha(img, spec.colour, spec.background)
        extent = world.SIZES[spec.size] * side
        # full area present: nothing is cut off by the border (supersampling error < 3%)
        assert alpha.sum() == pytest.approx(SHAPE_FILL[spec.shape] * extent ** 2, rel=0.03)
        # pixels touched: the extent plus at most one partial pixel on each side
        touched_cols, touched_rows = (alpha > 1e-3).any(0).sum(), (alpha > 1e-3).any(1).sum()
        assert extent - 0.01 <= touched_cols <= extent + 2
        apex_slack = 1 if spec.shape == "triangle" else 0.01  # the apex may hide below 1/16 px
        assert extent - apex_slack <= touched_rows <= extent + 2
        cx, cy = centroid(alpha)
        if spec.shape == "triangle":
            cy -= extent / 6  # its centroid lies e/6 below its bbox centre
        assert cell_of(cx, cy, side) == world.POSITIONS[spec.position]
        row, col = world.POSITIONS[spec.position]
        home_x, home_y = (col + 0.5) * side / 3, (row + 0.5) * side / 3
        half = extent / 2
        # jitter at most side/20, except where clamping pulled the centre toward the middle
        for c, home in ((cx, home_x), (cy, home_y)):
            assert half - 0.3 <= c <= side - half + 0.3
            clamped = abs(c - half) < 0.3 or abs(c - (side - half)) < 0.3
            assert clamped or abs(c - home) <= side / 20 + 0.3


def test_large_top_left_sits_at_a_quarter():
    img = world.render_image(world.ImageSpec("red", "square", "large", "top left", "white"), 64)
    alpha = object_alpha(img, "red", "white")
    assert bbox(alpha) == (0, 0, 32, 32)
    assert centroid(alpha) == pytest.approx((16.0, 16.0), abs=0.05)


def test_shapes_have_their_exact_form():
    """Triangle apex on top with the base at the bottom; cross arms 1/3 wide; circle round."""
    side = 64
    extent = side / 2
    alphas = {s: object_alpha(world.render_image(world.ImageSpec("blue", s, "large", "center", "black"),
                                                 side), "blue", "black") for s in world.SHAPES}
    tri = alphas["triangle"]
    y0, x0, y1, x1 = bbox(tri)
    widths = tri.sum(1)[y0:y1]
    assert widths[0] < 2.5 and widths[-1] > extent - 1.5  # apex at the top, base at the bottom
    assert np.all(np.diff(widths) > 0)                     # widening downward
    assert centroid(tri)[0] == pytest.approx(side / 2, abs=0.1)
    cross = alphas["cross"]
    y0, x0, y1, x1 = bbox(cross)
    assert cross[y0 + 2].sum() == pytest.approx(extent / 3, abs=1.0)     # vertical arm
    assert cross[side // 2].sum() == pytest.approx(extent, abs=1.0)       # horizontal arm
    circle = alphas["circle"]
    assert circle.sum() == pytest.approx(math.pi / 4 * extent ** 2, rel=0.01)
    assert alphas["square"].sum() == pytest.approx(extent ** 2, rel=0.01)


def test_edges_are_anti_aliased():
    img = world.render_image(world.ImageSpec("red", "circle", "large", "center", "black"), 64)
    alpha = object_alpha(img, "red", "black")
    partial = (alpha > 0.05) & (alpha < 0.95)
    assert partial.sum() > 40  # a ring of partly covered pixels, not a hard 0/1 edge


# ---------------------------------------------------------------------------- determinism

def test_same_seed_same_batch():
    a_img, a_cap, a_spec = world.make_batch(16, 32, 7)
    b_img, b_cap, b_spec = world.make_batch(16, 32, 7)
    c_img, c_cap, _ = world.make_batch(16, 32, 8)
    assert torch.equal(a_img, b_img) and a_cap == b_cap and a_spec == b_spec
    assert not torch.equal(a_img, c_img)
    assert np.array_equal(world.render_image(a_spec[0], 64, 3), world.render_image(a_spec[0], 64, 3))
    v1, vc1, _ = world.make_video_batch(4, 32, 16, 5)
    v2, vc2, _ = world.make_video_batch(4, 32, 16, 5)
    assert torch.equal(v1, v2) and vc1 == vc2


def test_batch_format():
    images, captions, specs = world.make_batch(8, 64, 0)
    assert images.shape == (8, 3, 64, 64) and images.dtype == torch.float32
    assert images.min() >= -1 and images.max() <= 1
    assert len(captions) == len(specs) == 8
    pixels = world.tensor_to_images(images)
    assert pixels.shape == (8, 64, 64, 3) and pixels.dtype == np.uint8
    assert torch.equal(world.images_to_tensor(pixels), images)  # exact round trip
    assert all(world.read_image(p) == s.as_dict() for p, s in zip(pixels, specs))
    clips, _, _ = world.make_video_batch(2, 32, 16, 0)
    assert clips.shape == (2, 16, 3, 32, 32)


# ---------------------------------------------------------------------------- held-out split

def test_held_out_split_is_fixed_and_small():
    held = split_specs("heldout")
    assert len(all_specs()) == 1296
    assert len(held) + len(split_specs("train")) == 1296
    assert 0.03 < len(held) / 1296 < 0.08
    assert len(held) == 72  # pinned: changing the hash would silently change every benchmark
    assert world.is_held_out(held[0]) and not world.is_held_out(split_specs("train")[0])


def test_train_never_draws_held_out():
    rng = np.random.default_rng(0)
    drawn = [world.sample_spec(rng, "train") for _ in range(5000)]
    assert not any(world.is_held_out(s) for s in drawn)
    _, _, specs = world.make_batch(256, 32, 1)
    assert not any(world.is_held_out(s) for s in specs)
    clips = [world.sample_video_spec(rng, "train") for _ in range(2000)]
    assert not any(world.is_held_out(c.image_spec()) for c in clips)
    assert all(world.is_held_out(world.sample_spec(rng, "heldout")) for _ in range(200))


@pytest.mark.parametrize("attribute", ["shape", "colour", "position"])
def test_contrast_twins_differ_only_in_their_attribute(attribute):
    images, captions, specs = world.make_contrast_batch(64, 32, 3, paraphrase=True, attribute=attribute)
    assert images.shape == (64, 3, 32, 32) and not any(world.is_held_out(s) for s in specs)
    for k in range(0, 64, 2):
        a, b = specs[k].as_dict(), specs[k + 1].as_dict()
        assert a[attribute] != b[attribute]
        assert {n: v for n, v in a.items() if n != attribute} == {n: v for n, v in b.items() if n != attribute}
        # same wording: swapping the attribute's word back gives the first caption
        assert captions[k + 1].replace(b[attribute], a[attribute]) == captions[k]
    # same jitter: for shape, a circle and a square twin share their centre, so their masks overlap
    # in the circle; for colour, the object covers exactly the same pixels
    if attribute == "colour":
        changed = [((images[k] != images[k + 1]).any(0)).float().mean() for k in range(0, 64, 2)]
        assert all(0 < c < 0.5 for c in changed)
    # the pairs are not all the same pair
    assert len({specs[k] for k in range(0, 64, 2)}) > 16
    a, b = world.make_contrast_batch(8, 32, 5), world.make_contrast_batch(8, 32, 5)
    assert torch.equal(a[0], b[0]) and a[1] == b[1]
    with pytest.raises(ValueError, match="even size, got 7"):
        world.make_contrast_batch(7, 32, 0)
    with pytest.raises(ValueError, match="unknown contrast attribute 'texture'"):
        world.make_contrast_batch(8, 32, 0, attribute="texture")


@pytest.mark.parametrize("attribute", ["shape", "motion", "colour"])
def test_video_contrast_twins_differ_only_in_their_attribute(attribute):
    clips, captions, specs = world.make_video_contrast_batch(16, 32, 4, 3, attribute=attribute)
    assert clips.shape == (16, 4, 3, 32, 32) and not any(world.is_held_out(s.image_spec()) for s in specs)
    for k in range(0, 16, 2):
        a, b = specs[k], specs[k + 1]
        assert getattr(a, attribute) != getattr(b, attribute)
        assert {n: v for n, v in a.as_dict().items() if n != attribute} == \
            {n: v for n, v in b.as_dict().items() if n != attribute}
        assert world.is_valid_clip(b.size, b.shape, b.start_position, b.motion)  # drawable
        assert captions[k + 1].replace(getattr(b, attribute), getattr(a, attribute)) == captions[k]
        if attribute == "colour":  # same jitter and motion: only the object's pixels differ, in every frame
            differs = (clips[k] != clips[k + 1]).any(1).flatten(1).float().mean(1)  # (T,) share of pixels
            assert ((0 < differs) & (differs < 0.5)).all()
    # circles never spin: a spinning clip's shape twin is never a circle, a circle's motion twin never spins
    rng = np.random.default_rng(0)
    spinning = world.VideoSpec("red", "square", "large", "center", "black", "spinning")
    assert all(world.dataset.twin_video_spec(spinning, "shape", rng).shape != "circle" for _ in range(30))
    circle = world.VideoSpec("red", "circle", "large", "center", "black", "still")
    assert all(world.dataset.twin_video_spec(circle, "motion", rng).motion != "spinning" for _ in range(30))
    with pytest.raises(ValueError, match="even size, got 5"):
        world.make_video_contrast_batch(5, 32, 4, 0)
    with pytest.raises(ValueError, match="unknown contrast attribute 'texture'"):
        world.make_video_contrast_batch(4, 32, 4, 0, attribute="texture")


def test_train_still_covers_every_word_and_pair():
    """Only whole combinations are held out: every value, and every pair of values of a
    held-out combination, is still seen in training."""
    train = split_specs("train")
    for field in ("colour", "shape", "size", "position", "background"):
        counts = Counter(getattr(s, field) for s in train)
        expected = 1296 / len(counts)
        assert all(c > 0.85 * expected for c in counts.values()), (field, counts)
    train_pairs = {(a, getattr(s, a), b, getattr(s, b)) for s in train
                   for a, b in itertools.combinations(s.as_dict(), 2)}
    for s in split_specs("heldout"):
        for a, b in itertools.combinations(s.as_dict(), 2):
            assert (a, getattr(s, a), b, getattr(s, b)) in train_pairs


# ---------------------------------------------------------------------------- captions

def test_every_canonical_caption_parses_back():
    for spec in all_specs():
        assert world.parse_caption(world.caption(spec)) == spec.as_dict()
        at = world.canonical_caption(spec.as_dict(), preposition="at")
        assert world.parse_caption(at) == spec.as_dict()


def test_caption_example_from_world_md():
    spec = world.ImageSpec("red", "circle", "large", "top left", "white")
    assert world.caption(spec) == "a large red circle in the top left on a white background"
    assert world.parse_caption("a red square") == {"colour": "red", "shape": "square"}


def test_training_captions_state_a_subset_of_the_truth():
    rng = np.random.default_rng(0)
    dropped = Counter()
    for _ in range(2000):
        spec = world.sample_spec(rng)
        stated = world.parse_caption(world.caption(spec, rng))
        assert stated.items() <= spec.as_dict().items()
        assert {"colour", "shape"} <= stated.keys()
        dropped.update({"size", "position", "background"} - stated.keys())
    assert all(300 < dropped[k] < 900 for k in ("size", "position", "background"))


def test_paraphrases_mean_the_same():
    spec = world.ImageSpec("red", "circle", "large", "top left", "white")
    options = world.paraphrases(spec.as_dict())
    assert options[0] == world.caption(spec)
    assert "a red circle, large, top left, white background" in options
    assert len(set(options)) == len(options) >= 3
    for text in options:
        for word in ("red", "circle", "large", "top left", "white"):
            assert word in text
    rng = np.random.default_rng(0)
    drawn = {world.caption(spec, rng, paraphrase=True, drop_prob=0.0) for _ in range(200)}
    assert drawn > {world.caption(spec)}  # the canonical form and others


@pytest.mark.parametrize("bad", ["a purple circle", "a red circle in the middle", "",
                                 "red circle", "a red circle, large, top left, white background",
                                 "a red circle on a white", "a red circle moving left"])
def test_parse_rejects_captions_outside_the_grammar(bad):
    with pytest.raises(ValueError) as err:
        world.parse_caption(bad)
    assert repr(bad) in str(err.value)


def test_video_captions_parse_back():
    spec = world.VideoSpec("red", "square", "small", None, "black", "moving left")
    assert world.video_caption(spec) == "a small red square moving left on a black background"
    rng = np.random.default_rng(0)
    for _ in range(500):
        clip = world.sample_video_spec(rng, "any")
        assert world.parse_video_caption(world.video_caption(clip)) == clip.as_dict()
        stated = world.parse_video_caption(world.video_caption(clip, rng))
        assert stated.items() <= clip.as_dict().items()
    with pytest.raises(ValueError):
        world.parse_video_caption("a red square at the top moving left")


# ---------------------------------------------------------------------------- videos

def clip_alpha(spec: world.VideoSpec, seed=None, resolution=32) -> np.ndarray:
    frames = world.render_video(spec, num_frames=16, resolution=resolution, rng=seed)
    assert frames.shape == (16, resolution, resolution, 3) and frames.dtype == np.uint8
    return object_alpha(frames, spec.colour, spec.background)


def test_video_motions_meet_world_md():
    rng = np.random.default_rng(0)
    side = 32
    checked = Counter()
    for _ in range(300):
        spec = world.sample_video_spec(rng, "any")
        alpha = clip_alpha(spec, rng)
        area = alpha.sum((1, 2))
        first, last = centroid(alpha[0]), centroid(alpha[-1])
        assert cell_of(first[0], first[1] - (world.SIZES[spec.size] * side / 6 if spec.shape == "triangle"
                                              else 0), side) == world.POSITIONS[spec.position]
        if spec.motion.startswith("moving"):
            dx, dy = last[0] - first[0], last[1] - first[1]
            travel = {"moving left": -dx, "moving right": dx, "moving up": -dy, "moving down": dy}
            assert travel[spec.motion] >= side / 3
            assert np.allclose(area, area[0], rtol=0.04)  # stays fully inside
        elif spec.motion == "growing":
            assert area[-1] / area[0] >= 2
        elif spec.motion == "shrinking":
            assert area[0] / area[-1] >= 2
        elif spec.motion in ("spinning", "still"):
            assert spec.shape != "circle" or spec.motion == "still"
            assert np.allclose(area, area[0], rtol=0.04)
        checked[spec.motion] += 1
    assert set(checked) == set(world.MOTIONS)


def test_spinning_turns_a_quarter_turn():
    tri = world.VideoSpec("green", "triangle", "small", "center", "gray", "spinning")
    alpha = clip_alpha(tri)
    # the triangle's centroid sits below its centre; its direction turns with the shape
    (x0, y0), (x1, y1) = centroid(alpha[0]), centroid(alpha[-1])
    angle0, angle1 = math.atan2(y0 - 16, x0 - 16), math.atan2(y1 - 16, x1 - 16)
    assert abs(math.degrees(angle1 - angle0)) >= 89
    square = clip_alpha(world.VideoSpec("green", "square", "small", "center", "gray", "spinning"))
    y0, x0, y1, x1 = bbox(square[8])  # near 45 degrees its bbox is ~sqrt(2) wider
    assert (x1 - x0) > 1.3 * 32 / 3
    with pytest.raises(ValueError):
        world.render_video(world.ImageSpec("red", "circle", "small", "center", "black"), "spinning")


def test_clip_without_position_starts_where_its_motion_has_room():
    for motion, start in DEFAULT_START.items():
        spec = world.VideoSpec("red", "cross", "large", None, "white", motion)
        alpha = clip_alpha(spec)
        assert cell_of(*centroid(alpha[0]), 32) == world.POSITIONS[start]
        assert world.is_valid_clip("large", "cross", start, motion)


def test_sampler_never_draws_impossible_clips():
    rng = np.random.default_rng(1)
    for _ in range(2000):
        clip = world.sample_video_spec(rng)
        assert not (clip.shape == "circle" and clip.motion == "spinning")
        assert world.is_valid_clip(clip.size, clip.shape, clip.position, clip.motion)
    # a large square spinning in a corner cannot stay inside while staying in its cell
    assert not world.is_valid_clip("large", "square", "top left", "spinning")
    assert not world.is_valid_clip("small", "square", "right", "moving right")


# ---------------------------------------------------------------------------- oracle

@pytest.mark.parametrize("resolution", [64, 32])
def test_oracle_reads_world_samples_back(resolution):
    specs, images = sample_world(ORACLE_SAMPLES, resolution, seed=resolution)
    result = world.score(specs, images)
    assert result["n"] == ORACLE_SAMPLES
    for key in ("background", "colour", "shape", "size", "position", "joint"):
        assert result[key] >= 0.98, (resolution, result)


@pytest.mark.parametrize("resolution", [64, 32])
def test_oracle_survives_blur_and_noise(resolution):
    """The tolerant reader shrugs off grain (sigma 20) and blur; the strict default rightly does
    not (tests/test_world_strict.py)."""
    specs, images = sample_world(300, resolution, seed=100 + resolution)
    rng = np.random.default_rng(0)
    result = world.score_tolerant(specs, [degrade(img, rng, sigma=20) for img in images])
    assert result["joint"] >= 0.97, (resolution, result)


@pytest.mark.parametrize("attribute", ["background", "colour", "shape", "size", "position"])
def test_oracle_rejects_a_different_spec(attribute):
    """Render a spec that differs in one attribute: the prompt's attribute must read wrong."""
    rng = np.random.default_rng(3)
    values = {"background": world.BACKGROUNDS, "colour": world.COLOURS, "shape": world.SHAPES,
              "size": world.SIZES, "position": world.POSITIONS}[attribute]
    prompts, images = [], []
    for _ in range(100):
        spec = world.sample_spec(rng, "any")
        others = [v for v in values if v != getattr(spec, attribute)]
        other = replace(spec, **{attribute: others[int(rng.integers(len(others)))]})
        prompts.append(world.caption(spec))
        images.append(world.render_image(other, 32, rng))
    result = world.score(prompts, images)
    assert result[attribute] <= 0.02 and result["joint"] <= 0.02, result


def test_oracle_on_empty_and_stated_only():
    blank = np.full((32, 32, 3), 128, dtype=np.uint8)
    assert world.read_image(blank) == {"background": "gray", "colour": None, "shape": None,
                                       "size": None, "position": None}
    spec = world.ImageSpec("cyan", "cross", "small", "bottom right", "black")
    img = world.render_image(spec, 64)
    assert world.read_image(img) == spec.as_dict()
    result = world.score(["a cyan cross", "a small magenta cross"], [img, img])
    assert result["colour"] == 0.5 and result["shape"] == 1.0 and result["size"] == 1.0
    assert result["position"] is None and result["joint"] == 0.5 and result["n"] == 2


def test_video_oracle_reads_world_clips_back():
    rng = np.random.default_rng(11)
    specs = [world.sample_video_spec(rng, "any") for _ in range(240)]
    clips = [world.render_video(s, num_frames=16, resolution=32, rng=rng) for s in specs]
    result = world.score_video(specs, clips)
    for key in ("background", "colour", "shape", "size", "position", "motion", "joint"):
        assert result[key] >= 0.98, result
    captions = [world.video_caption(s) for s in specs[:40]]
    assert world.score_video(captions, clips[:40])["joint"] >= 0.98


def test_video_oracle_rejects_a_different_motion():
    rng = np.random.default_rng(12)
    prompts, clips = [], []
    for _ in range(80):
        spec = world.sample_video_spec(rng, "any")
        others = [m for m in world.MOTIONS if m != spec.motion
                  and world.is_valid_clip(spec.size, spec.shape, spec.position, m)]
        if not others:
            continue
        other = replace(spec, motion=others[int(rng.integers(len(others)))])
        prompts.append(spec)
        clips.append(world.render_video(other, resolution=32, rng=rng))
    result = world.score_video(prompts, clips)
    assert len(prompts) > 50 and result["motion"] <= 0.02, result


def test_eval_prompts_are_fixed_canonical_and_balanced():
    prompts = world.eval_prompts(200, "heldout", seed=0)
    assert prompts == world.eval_prompts(200, "heldout", seed=0)
    held = split_specs("heldout")
    parsed = [world.ImageSpec(**world.parse_caption(p)) for p in prompts]
    assert all(world.is_held_out(s) for s in parsed)
    assert set(parsed[:len(held)]) == set(held)  # every combination before any repeats
    assert len(world.eval_prompts(10, "any")) == 10
