"""`python -m pipelines.t23d.shape_strip`: the splatter puts a known cloud where it belongs, the
default prompts are one per shape class (held out where the class has a held-out combination), and
the strip has a row per prompt with the generated views and the world's — on a tiny random VoxelDiT
saved like the shipped model."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from dit import VoxelDiT
from pipelines.t23d import shapes_t23d_pipeline
from pipelines.t23d.shape_strip import (GAP, LABEL_W, LINE_H, TILE, TILE_BACKGROUND, WRONG, default_specs, main,
                                        reading_lines, reference_cloud, splat_points)
from world.shapes3d import SHAPES3D, is_held_out, split_specs3d

from .tiny_models import randomize

pytestmark = pytest.mark.usefixtures("one_thread")
FAST = ["--steps", "2", "--num-points", "256"]
HEAD = 2 * LINE_H + 6   # the heading lines above the rows
ROW = TILE + 8          # a row: one tile and its margin


@pytest.fixture(scope="module")
def tiny_t23d_dir(tmp_path_factory):
    """A random coloured VoxelDiT (8³ voxels) saved without MiniLM (it comes from its package), as shipped."""
    transformer = randomize(VoxelDiT(sample_size=8, patch_size=2, in_channels=6, hidden_size=32, depth=2,
                                     num_heads=2, window_size=2, window_blocks=[0], text_dim=384, pooled_dim=384,
                                     adaln="single", point_head_channels=8), std=0.1)
    path = tmp_path_factory.mktemp("t23d") / "tiny-t23d"
    shapes_t23d_pipeline(transformer, text_max_length=16).save_pretrained(path, safe_serialization=True)
    return path


def cli(capsys, *argv):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit:  # argparse's own errors
        code = exit.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def drawn(image: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels that are not the tile's background."""
    return (image != np.asarray(TILE_BACKGROUND, dtype=np.uint8)).any(-1)


def test_a_red_point_at_the_origin_lands_at_the_centre_in_red_and_an_empty_cloud_draws_nothing():
    image = splat_points(np.zeros((1, 3)), np.array([[1.0, 0.0, 0.0]]))
    assert image.shape == (TILE, TILE, 3) and image.dtype == np.uint8
    r, g, b = image[TILE // 2, TILE // 2].astype(int)
    assert r > 150 and g == 0 and b == 0
    rows, cols = np.nonzero(drawn(image))
    assert 5 <= len(rows) <= 25  # one small disc …
    assert abs(rows.mean() - TILE / 2) < 1.5 and abs(cols.mean() - TILE / 2) < 1.5  # … round the centre
    assert not drawn(splat_points(np.zeros((0, 3)))).any()
    assert not drawn(splat_points(np.zeros((0, 3)), np.zeros((0, 3)), size=32)).any()
    grey = splat_points(np.zeros((1, 3)))[TILE // 2, TILE // 2].astype(int)
    assert grey[0] == grey[1] == grey[2] and 60 < grey[0] < 140  # no colours: grey, shaded


def test_the_view_keeps_up_up_and_the_nearer_point_in_front():
    up = splat_points(np.array([[0.0, 0.8, 0.0]]))
    assert np.nonzero(drawn(up))[0].mean() < TILE / 2 - 10  # +y is drawn above the centre
    # azimuth 30°: the camera is on the +z side, a little towards +x, so +x is to the right
    right = splat_points(np.array([[0.8, 0.0, 0.0]]))
    assert np.nonzero(drawn(right))[1].mean() > TILE / 2 + 10
    # two points on one line of sight: the nearer (green) wins whatever their order
    e, a = np.radians(20.0), np.radians(30.0)
    towards_camera = np.array([np.cos(e) * np.sin(a), np.sin(e), np.cos(e) * np.cos(a)])
    points = np.stack([np.zeros(3), 0.8 * towards_camera])
    colours = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    for order in ([0, 1], [1, 0]):
        centre = splat_points(points[order], colours[order])[TILE // 2, TILE // 2].astype(int)
        assert centre[1] > 150 and centre[0] == 0
    # and the nearer point is drawn brighter than the same point further back
    near = splat_points(points[1:], np.array([[1.0, 1.0, 1.0]]))[TILE // 2, TILE // 2].astype(int)
    far = splat_points(-points[1:], np.array([[1.0, 1.0, 1.0]]))[TILE // 2, TILE // 2].astype(int)
    assert near[0] > far[0] + 30
    # non-finite points are skipped, not drawn at the corner
    assert not drawn(splat_points(np.array([[np.nan, 0.0, 0.0], [np.inf, 1.0, 1.0]]))).any()


def test_default_prompts_are_one_per_shape_held_out_where_there_is_one():
    specs = default_specs("heldout", seed=0)
    assert [s.shape for s in specs] == list(SHAPES3D)
    for spec in specs:
        has_held_out = any(s.shape == spec.shape for s in split_specs3d("heldout"))
        assert is_held_out(spec) == has_held_out
    assert default_specs("heldout", seed=0) == specs  # seeded
    # the world's own sample is read back as its caption says
    points, colours = reference_cloud("a tall red cone", 1024, seed=3)
    assert colours.shape == (1024, 3)
    lines = [text for text, _ in reading_lines("a tall red cone", points, colours)]
    assert lines[-1] == "all read right" and "shape: cone" in lines and "colour: red" in lines
    assert reference_cloud("a teapot", 64, seed=0) is None
    # read against another caption, every attribute it gets wrong is marked (in red) with what was asked
    lines = reading_lines("a wide blue cube", points, colours)
    assert lines[-1][0] == "wrong: shape, proportion, colour"
    assert ("shape: cone (asked cube)", WRONG) in lines and ("colour: red (asked blue)", WRONG) in lines


def test_strip_has_a_row_per_prompt_with_the_references_beside_and_one_line_errors(tiny_t23d_dir, tmp_path, capsys):
    prompts = tmp_path / "p.txt"
    prompts.write_text("a tall red cone\na wide cube\n", encoding="utf-8")
    out = tmp_path / "strip.png"
    code, stdout, err = cli(capsys, "--model", tiny_t23d_dir, "--prompts", prompts, "--out", out, *FAST)
    assert code == 0, err
    assert "wrote" in stdout and "2 clouds" in stdout
    strip = np.asarray(Image.open(out).convert("RGB"))
    block = TILE + 2  # one view and the 2 px after it
    assert strip.shape[:2] == (HEAD + 2 * ROW, LABEL_W + block + GAP + block + 8)
    x_generated, x_reference = 4 + LABEL_W, 4 + LABEL_W + block + GAP
    for row in range(2):
        y = HEAD + row * ROW
        generated = strip[y:y + TILE, x_generated:x_generated + TILE]
        reference = strip[y:y + TILE, x_reference:x_reference + TILE]
        for tile in (generated, reference):
            assert tuple(tile[0, 0]) == TILE_BACKGROUND and drawn(tile).sum() > 200  # a tile with a cloud on it
    # the reference of "a tall red cone" is red, of "a wide cube" grey (no colour asked)
    red = strip[HEAD:HEAD + TILE, x_reference:x_reference + TILE].reshape(-1, 3).astype(int)
    assert ((red[:, 0] > 100) & (red[:, 1] < 40) & (red[:, 2] < 40)).sum() > 200
    grey = strip[HEAD + ROW:HEAD + ROW + TILE, x_reference:x_reference + TILE].reshape(-1, 3).astype(int)
    assert (drawn(grey) & (np.ptp(grey, axis=1) == 0)).sum() > 200

    # without the references the right-hand block goes; --views 2 doubles each block
    code, _, err = cli(capsys, "--model", tiny_t23d_dir, "--prompts", prompts, "--out", out, *FAST, "--overwrite",
                       "--no-reference", "--views", "2")
    assert code == 0, err
    assert Image.open(out).size == (LABEL_W + 2 * block + 8, HEAD + 2 * ROW)

    # bad input: one error line, exit 2, before any model loads, nothing written
    for argv, names in ((["--prompts", tmp_path / "missing.txt", "--out", tmp_path / "x.png"], "missing.txt"),
                        (["--prompts", prompts, "--out", out], "--overwrite"),  # exists, no --overwrite
                        (["--prompts", prompts, "--out", tmp_path / "y.png", "--views", "0"], "--views")):
        code, _, err = cli(capsys, "--model", tmp_path / "no-model-here", *argv, *FAST)
        assert code == 2 and err.startswith("error:") and len(err.strip().splitlines()) == 1, err
        assert names in err and "no-model-here" not in err, err  # the bad value, found before the model
    assert "prompts file not found" in cli(capsys, "--prompts", tmp_path / "missing.txt", "--out",
                                           tmp_path / "x.png")[2]
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "y.png").exists()
