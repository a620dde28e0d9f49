"""The strict reader (issue 21): reads reference renders back, and rejects what a person would.

Each degradation test states both halves: the tolerant reader still accepts the degraded
samples (so the test cannot pass trivially) and the strict reader does not.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest

import world
from world.components import label_components
from world.strict_reader import CLEAN_IOU, look
from world.templates import templates, turned_boxes, turns

MOVES = ("moving left", "moving right", "moving up", "moving down")


# ---------------------------------------------------------------------------- helpers

def object_alpha(pixels: np.ndarray, colour: str, background: str) -> np.ndarray:
    """Exact coverage from known colours: (..., H, W, 3) uint8 -> (..., H, W) float."""
    bg = np.array(world.BACKGROUNDS[background], dtype=np.float64)
    d = np.array(world.COLOURS[colour], dtype=np.float64) - bg
    return (pixels.astype(np.float64) - bg) @ d / (d @ d)


def grow(mask: np.ndarray, radius: int) -> np.ndarray:
    """A (H, W) bool mask dilated by a (2 radius + 1)^2 square."""
    grown = mask.copy()
    for _ in range(radius):
        step = grown.copy()
        step[1:] |= grown[:-1]
        step[:-1] |= grown[1:]
        grown = step.copy()
        grown[:, 1:] |= step[:, :-1]
        grown[:, :-1] |= step[:, 1:]
    return grown


def sample_images(n: int, resolution: int, seed: int, keep=lambda spec: True):
    rng = np.random.default_rng(seed)
    specs = [s for s in (world.sample_spec(rng, "any") for _ in range(n)) if keep(s)]
    return specs, [world.render_image(s, resolution, rng) for s in specs]


def clips_per_motion(per_motion: int, resolution: int, seed: int):
    """`per_motion` valid clips of every motion (16 frames): specs and uint8 (16, H, W, 3) clips."""
    rng = np.random.default_rng(seed)
    specs = []
    for motion in world.MOTIONS:
        pool = world.video_split_specs("any", motion)
        specs += [pool[int(k)] for k in rng.integers(len(pool), size=per_motion)]
    return specs, [world.render_video(s, num_frames=16, resolution=resolution, rng=rng) for s in specs]


def speckle(img: np.ndarray, spec: world.ImageSpec, rng: np.random.Generator, count: int = 3) -> np.ndarray:
    """`count` single pixels of the object's colour, each at least side/8 away from the object."""
    side = img.shape[0]
    far = ~grow(object_alpha(img, spec.colour, spec.background) > 0.05, side // 8)
    ys, xs = np.nonzero(far)
    pick = rng.choice(len(ys), count, replace=False)
    out = img.copy()
    out[ys[pick], xs[pick]] = world.COLOURS[spec.colour]
    return out


def halo(img: np.ndarray, spec: world.ImageSpec, width: int, distance: float = 66.0) -> np.ndarray:
    """A ring `width` px wide around the object, of an intermediate colour `distance` (RGB) from
    the background toward the object's colour (66: just past the strict mask's 60)."""
    inside = object_alpha(img, spec.colour, spec.background) > 0.5
    ring = grow(inside, width) & ~inside
    bg = np.array(world.BACKGROUNDS[spec.background], dtype=np.float64)
    toward = np.array(world.COLOURS[spec.colour], dtype=np.float64) - bg
    out = img.copy()
    out[ring] = np.rint(bg + distance * toward / np.linalg.norm(toward)).astype(np.uint8)
    return out


def blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of an image (H, W, 3), separable, edges extended."""
    r = int(math.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    h, w = img.shape[:2]
    f = np.pad(img.astype(np.float64), ((r, r), (r, r), (0, 0)), mode="edge")
    f = sum(wk * f[i:i + h] for i, wk in enumerate(k))          # (H, W + 2r, 3)
    f = sum(wk * f[:, i:i + w] for i, wk in enumerate(k))       # (H, W, 3)
    return np.clip(np.rint(f), 0, 255).astype(np.uint8)


def share(flags) -> float:
    flags = list(flags)
    return sum(flags) / len(flags)


# ---------------------------------------------------------------------------- reference renders

@pytest.mark.parametrize("resolution", [64, 32])
def test_reads_reference_images_back(resolution):
    specs, images = sample_images(300, resolution, seed=resolution)
    result = world.score(specs, images)
    assert result["n"] == 300
    for key in ("background", "colour", "shape", "size", "position", "joint"):
        assert result[key] >= 0.98, (resolution, result)
    assert result["noise"] == 0.0 and result["strays"] == 0.0, result  # a render's background is flat
    # a 64x64 render is clean; at 32x32 a small triangle's apex is a pixel or two
    assert result["clean"] >= (0.98 if resolution == 64 else 0.9), result
    assert result["template_iou"] >= 0.95, result


@pytest.mark.parametrize("resolution", [32, 64])
def test_reads_reference_clips_back(resolution):
    per_motion = 10
    specs, clips = clips_per_motion(per_motion, resolution, seed=100 + resolution)
    results = [world.score_video(specs[k:k + per_motion], clips[k:k + per_motion])
               for k in range(0, len(specs), per_motion)]                       # one per motion
    for motion, result in zip(world.MOTIONS, results):
        assert result["motion"] >= 0.9 and result["joint"] >= 0.9, (motion, result)
    overall = {key: np.mean([r[key] for r in results]) for key in results[0]}  # equal counts: the overall means
    for key in ("background", "colour", "shape", "size", "position", "motion", "joint", "shape_frames"):
        assert overall[key] >= 0.98, (resolution, key, results)
    assert overall["noise"] == 0.0 and overall["strays"] == 0.0, overall
    assert overall["clean_frames"] >= 0.95, overall


def test_spinning_clips_show_their_shape_in_every_frame():
    """A spinning shape is matched against turned templates: every frame reads as the shape,
    turning either way, while a mid-spin frame read alone (upright templates) is no such shape."""
    for resolution in (32, 64):
        for shape in ("square", "triangle", "cross"):
            for size in world.SIZES:
                spec = world.VideoSpec("magenta", shape, size, "center", "white", "spinning")
                clip = world.render_video(spec, num_frames=16, resolution=resolution, rng=resolution)
                for frames in (clip, clip[::-1]):  # counter-clockwise, and clockwise played backwards
                    reading = world.read_video(frames)
                    assert reading.motion == "spinning" and reading.shape == shape, (spec, reading)
                    assert reading.shape_share(shape) == 1.0, (spec, reading.frame_shapes)
                    assert min(reading.frame_iou) >= 0.8, (spec, reading.frame_iou)
                if shape != "triangle":  # near 45 degrees a square or cross is no upright shape
                    assert world.read_image(clip[8]).shape != shape, spec


def test_turned_templates_match_the_renderer():
    """The template turned by a spinning frame's angle is (nearly) that frame's strict mask, and
    turned boxes grow as they should (a square at 45 degrees is sqrt(2) wide)."""
    assert turned_boxes("square", [math.pi / 4])[0] == pytest.approx([-math.sqrt(0.5)] * 2 + [math.sqrt(0.5)] * 2)
    assert turned_boxes("circle", [1.0])[0] == pytest.approx([-0.5, -0.5, 0.5, 0.5])
    assert len(turns("square")) == 18 and len(turns("triangle")) == 24 and turns("circle") == (0.0,)
    for shape in ("square", "triangle", "cross"):
        spec = world.VideoSpec("blue", shape, "large", "center", "black", "spinning")
        clip = world.render_video(spec, num_frames=16, resolution=64)
        angle = 6 / 15 * math.pi / 2                                  # frame 6 of 16 turns 36 degrees
        seen = look(clip[6], angles=lambda shape: (angle,))
        assert seen.ious[shape] >= 0.9 and seen.shape == shape, seen.ious
        x0, y0, x1, y1 = seen.box
        upright = templates(shape, x1 - x0, y1 - y0)[0]
        window = seen.mask[y0:y1, x0:x1]
        assert (upright & window).sum() / (upright | window).sum() < seen.ious[shape] - 0.1


# ---------------------------------------------------------------------------- fidelity figures

def test_fidelity_figures_measure_what_they_say():
    spec = world.ImageSpec("red", "square", "large", "center", "gray")
    img = world.render_image(spec, 64)
    clean = world.read_image(img)
    assert clean == spec.as_dict() and clean.clean and clean.noise == 0.0 and clean.strays == 0
    assert clean.template_iou > 0.99
    # grain of sigma 5 per channel on a gray background: RMS distance 5 sqrt(3) ~ 8.7 > 6
    rng = np.random.default_rng(0)
    grainy = np.clip(np.rint(img + rng.normal(0, 5, img.shape)), 0, 255).astype(np.uint8)
    reading = world.read_image(grainy)
    assert reading == spec.as_dict() and reading.noise == pytest.approx(5 * math.sqrt(3), rel=0.08)
    assert not reading.clean and reading.template_iou >= CLEAN_IOU
    # three specks: three stray components, and the box (size, position, shape) is no longer the object's
    specked = world.read_image(speckle(img, spec, rng, count=3))
    assert specked.strays == 3 and not specked.clean
    blank = world.read_image(np.full((32, 32, 3), 255, np.uint8))
    assert blank == {"background": "white", "colour": None, "shape": None, "size": None, "position": None}
    assert blank.template_iou == 0.0 and not blank.clean


def test_no_shape_without_a_shape_sized_square_box():
    """Stretching templates onto the box must not turn a rectangle into a square, a line or a dot
    into a circle; and pure noise shows no object at all."""
    rect = np.zeros((64, 64, 3), np.uint8)
    rect[16:40, 8:56] = world.COLOURS["red"]                      # 48 x 24: a 2:1 rectangle
    dot = np.zeros((32, 32, 3), np.uint8)
    dot[10, 10:13] = world.COLOURS["green"]                       # 3 x 1
    line = np.zeros((32, 32, 3), np.uint8)
    line[10:12, :] = world.COLOURS["blue"]                        # 32 x 2
    for img in (rect, dot, line):
        reading = world.read_image(img)
        assert reading.shape is None and reading.template_iou == 0.0 and reading.colour is not None, reading
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3)).astype(np.uint8)
    reading = world.read_image(noise)
    assert reading.noise > 60 and reading.colour is None and reading.shape is None, reading
    clip = world.read_video(np.stack([noise] * 16))
    assert clip.motion is None and clip.shape is None and clip.frame_shapes == (None,) * 16


def test_results_keep_the_tolerant_readers_interface():
    """Callers index readings like dicts and store scores as JSON: both must keep working."""
    spec = world.ImageSpec("cyan", "cross", "small", "bottom right", "black")
    img = world.render_image(spec, 64)
    reading = world.read_image(img)
    assert reading == spec.as_dict() == dict(reading) and reading == world.read_image_tolerant(img)
    assert reading["shape"] == reading.get("shape") == "cross" and reading.get("motion") is None
    assert set(reading) == set(world.read_image_tolerant(img))
    with pytest.raises(KeyError):
        reading["motion"]
    result = world.score(["a cyan cross", "a small magenta cross"], [img, img])
    assert result["colour"] == 0.5 and result["shape"] == 1.0 and result["position"] is None
    assert result["joint"] == 0.5 and result["n"] == 2
    assert set(world.score_tolerant(["a cyan cross"], [img])) < set(result)
    json.dumps(result)
    clip_spec = world.VideoSpec("red", "square", "small", None, "black", "moving left")
    clip = world.render_video(clip_spec, num_frames=16, resolution=32)
    clip_reading = world.read_video(clip)
    assert clip_reading == {k: v for k, v in clip_spec.as_dict().items() if k != "position"} | {"position": "right"}
    assert {**clip_reading} == dict(clip_reading) and len(clip_reading.frame_iou) == 16
    clip_result = world.score_video([clip_spec, world.video_caption(clip_spec)], [clip, clip])
    assert clip_result["joint"] == 1.0 and clip_result["shape_frames"] == 1.0
    assert set(world.score_video_tolerant([clip_spec], [clip])) < set(clip_result)
    json.dumps(clip_result)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match=r"\(32, 31, 3\)"):
        world.read_image(np.zeros((32, 31, 3), np.uint8))
    with pytest.raises(ValueError, match=r"\(32, 32, 3\)"):
        world.read_video(np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="2 prompts but 1 images"):
        world.score(["a red square", "a red circle"], [np.zeros((32, 32, 3), np.uint8)])
    with pytest.raises(ValueError, match="level must lie in"):
        templates("square", 8, 8, level=0.7)
    with pytest.raises(ValueError, match="'hexagon'"):
        turns("hexagon")


def test_components_agree_with_a_flood_fill():
    """Run-based 8-connected labelling against scipy's plain flood fill, on random masks."""
    ndimage = pytest.importorskip("scipy.ndimage")
    rng = np.random.default_rng(0)
    for _ in range(200):
        h, w = rng.integers(1, 40, size=2)
        mask = rng.random((h, w)) < rng.random()
        labels, sizes = label_components(mask)
        reference, count = ndimage.label(mask, structure=np.ones((3, 3)))
        assert len(sizes) == count and list(sizes) == sorted(np.bincount(reference.ravel())[1:], reverse=True)
        assert np.array_equal(np.bincount(labels.ravel(), minlength=count + 1)[1:], sizes)
        for k in range(1, count + 1):  # same partition: each of our components is one of theirs
            assert len(np.unique(reference[labels == k])) == 1


# ---------------------------------------------------------------------------- degraded samples

@pytest.mark.parametrize("resolution", [64, 32])
def test_rejects_stray_speckles(resolution):
    """Three single specks far from the object: the largest blob ignores them, a person does not."""
    specs, images = sample_images(120, resolution, seed=1)
    rng = np.random.default_rng(2)
    specked = [speckle(im, s, rng) for s, im in zip(specs, images)]
    assert world.score_tolerant(specs, specked)["joint"] >= 0.95
    result = world.score(specs, specked)
    assert result["joint"] <= 0.05 and result["clean"] == 0.0, result
    assert result["strays"] >= 2.9, result  # two specks may touch


@pytest.mark.parametrize("resolution", [64, 32])
def test_rejects_halos(resolution):
    """A ring of in-between colour, side/16 wide, around a small object: the strict mask takes it
    in, so the object reads as large (the t2i failure issue 21 found); soft alpha barely grows.
    Objects in the centre cell, so that no border cuts the ring short."""
    specs, images = sample_images(1800, resolution, seed=3, keep=lambda s: s.size == "small" and s.position == "center")
    haloed = [halo(im, s, width=resolution // 16) for s, im in zip(specs, images)]
    assert len(specs) >= 80 and world.score_tolerant(specs, haloed)["joint"] >= 0.95
    result = world.score(specs, haloed)
    assert result["joint"] <= 0.05 and result["size"] <= 0.05 and result["colour"] >= 0.98, result


@pytest.mark.parametrize("resolution", [64, 32])
def test_rejects_blurred_triangles(resolution):
    """Gaussian blur of side/32 rounds a triangle's corners into a blob: read right, but no longer
    clean. (A blurred circle or square still thresholds to its shape: the strict reader judges
    shapes, not sharpness.)"""
    specs, images = sample_images(240, resolution, seed=4, keep=lambda s: s.shape == "triangle")
    blurred = [blur(im, resolution / 32) for im in images]
    assert world.score_tolerant(specs, blurred)["joint"] >= 0.95
    readings = [world.read_image(im) for im in blurred]
    assert share(r == s.as_dict() and r.clean for s, r in zip(specs, readings)) <= 0.1
    assert world.score(specs, blurred)["template_iou"] < CLEAN_IOU


@pytest.mark.parametrize("resolution", [32, 64])
def test_rejects_a_shape_that_changes_mid_clip(resolution):
    """A moving clip whose first half shows the prompt's shape and second half another: the
    tolerant reader sees the first frame only, the strict one every frame."""
    rng = np.random.default_rng(5)
    prompts, clips = [], []
    for _ in range(24):
        motion = MOVES[int(rng.integers(len(MOVES)))]
        pool = world.video_split_specs("any", motion)
        spec = pool[int(rng.integers(len(pool)))]
        others = [s for s in world.SHAPES if s != spec.shape]
        other = replace(spec, shape=others[int(rng.integers(len(others)))])
        seed = int(rng.integers(1 << 30))  # the same jitter for both halves
        first = world.render_video(spec, num_frames=16, resolution=resolution, rng=seed)
        second = world.render_video(other, num_frames=16, resolution=resolution, rng=seed)
        prompts.append(spec)
        clips.append(np.concatenate([first[:8], second[8:]]))
    assert world.score_video_tolerant(prompts, clips)["joint"] >= 0.95
    result = world.score_video(prompts, clips)
    assert result["shape"] == 0.0 and result["joint"] == 0.0, result
    assert result["shape_frames"] == pytest.approx(0.5, abs=0.05) and result["motion"] >= 0.95, result


def test_rejects_a_spinning_shape_that_changes():
    """Spinning clips too: a triangle that becomes a cross half way (about the same area, so the
    clip still reads as spinning) is no spinning triangle."""
    triangle = world.VideoSpec("yellow", "triangle", "small", "center", "black", "spinning")
    for resolution in (32, 64):
        a = world.render_video(triangle, num_frames=16, resolution=resolution, rng=7)
        b = world.render_video(replace(triangle, shape="cross"), num_frames=16, resolution=resolution, rng=7)
        reading = world.read_video(np.concatenate([a[:8], b[8:]]))
        assert reading.motion == "spinning" and reading.shape is None, reading
        assert reading.shape_share("triangle") == pytest.approx(0.5, abs=0.07)
        assert world.read_video(a).shape == "triangle"
