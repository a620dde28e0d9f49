"""`python -m gaussians.fit`: static and 4D fits to .ply files, an orbit render and a manifest, written
whole; bad input (no cameras, counts or sizes that differ, unreadable frames) is one `error:` line and
exit code 2. `python -m gaussians.write_world_clip` writes a world clip in the form it reads. The CLI
modules are run, never imported: importing `gaussians.fit` would make it the module instead of the
function."""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import gaussians
from gaussians import Cameras, read_ply, read_ply_sequence, world_clip
from pipelines.core.video_io import read_clip

REPO = Path(__file__).resolve().parents[1]
FRAMES, SIZE = 6, 24

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def cli_main():
    return runpy.run_module("gaussians.fit", run_name="gaussians_fit_cli")["main"]


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    """A world orbit clip as PNG frames, cameras.json with times (4D) and static.json without (static)."""
    root = tmp_path_factory.mktemp("clip")
    clip = world_clip("a yellow sphere bouncing", n_frames=FRAMES, size=SIZE)
    (root / "frames").mkdir()
    for i, frame in enumerate((clip.frames.numpy() * 255).round().astype(np.uint8)):
        Image.fromarray(frame).save(root / "frames" / f"frame_{i:04d}.png")
    cams = clip.cameras.to_dict()
    (root / "cameras.json").write_text(json.dumps({**cams, "times": clip.times.tolist()}))
    (root / "static.json").write_text(json.dumps(cams))
    return root


def run(cli_main, capsys, *argv) -> tuple[int, str]:
    code = cli_main([str(a) for a in argv])
    return code, capsys.readouterr().err


def one_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_bad_input_is_one_error_line(cli_main, capsys, clip_dir, tmp_path):
    frames, cams = clip_dir / "frames", clip_dir / "cameras.json"
    code, err = run(cli_main, capsys, "--frames", frames, "--cameras", tmp_path / "none.json", "--out", tmp_path / "o")
    assert code == 2 and "cameras file not found" in one_error(err)
    fewer = tmp_path / "fewer"
    fewer.mkdir()
    for f in sorted(frames.iterdir())[:-1]:
        (fewer / f.name).write_bytes(f.read_bytes())
    code, err = run(cli_main, capsys, "--frames", fewer, "--cameras", cams, "--out", tmp_path / "o")
    assert code == 2 and f"{FRAMES - 1} frames" in one_error(err) and f"{FRAMES} cameras" in err
    (fewer / "frame_0099.png").write_bytes(b"not a png")
    code, err = run(cli_main, capsys, "--frames", fewer, "--cameras", cams, "--out", tmp_path / "o")
    assert code == 2 and "cannot read image" in one_error(err)
    data = json.loads(cams.read_text())
    (tmp_path / "times.json").write_text(json.dumps({**data, "times": data["times"][:-1]}))
    code, err = run(cli_main, capsys, "--frames", frames, "--cameras", tmp_path / "times.json", "--out", tmp_path / "o")
    assert code == 2 and "times" in one_error(err)
    (tmp_path / "size.json").write_text(json.dumps(Cameras.orbit(FRAMES, 32, 32).to_dict()))
    code, err = run(cli_main, capsys, "--frames", frames, "--cameras", tmp_path / "size.json", "--out", tmp_path / "o")
    assert code == 2 and "32×32" in one_error(err)
    (tmp_path / "bad.json").write_text("{not json")
    code, err = run(cli_main, capsys, "--frames", frames, "--cameras", tmp_path / "bad.json", "--out", tmp_path / "o")
    assert code == 2 and "cannot read cameras file" in one_error(err)
    code, err = run(cli_main, capsys, "--frames", frames, "--cameras", cams, "--out", tmp_path / "o",
                    "--background", "red")
    assert code == 2 and "--background" in one_error(err)
    code, err = run(cli_main, capsys, "--frames", frames, "--cameras", clip_dir / "static.json", "--out",
                    tmp_path / "o", "--static-steps", "5")
    assert code == 2 and "4D" in one_error(err)
    (tmp_path / "taken").mkdir()
    code, err = run(cli_main, capsys, "--frames", frames, "--cameras", cams, "--out", tmp_path / "taken")
    assert code == 2 and "--overwrite" in one_error(err)
    assert not (tmp_path / "o").exists()
    assert callable(gaussians.fit)


def test_bad_cameras_files_are_one_error_line(cli_main, capsys, clip_dir, tmp_path):
    """Each is refused before any fitting, naming the file and what is wrong with it."""
    frames = clip_dir / "frames"
    data = json.loads((clip_dir / "cameras.json").read_text())
    bad = {
        "not an object": ([data], "must hold a JSON object"),
        "keys missing": ({"width": SIZE, "times": data["times"]}, "no viewmats, Ks, height"),
        "a fractional width": ({**data, "width": SIZE + 0.5}, "whole numbers of pixels"),
        "a matrix of the wrong shape": ({**data, "viewmats": [[0.0] * 4] * 3}, "[C, 4, 4]"),
        "a NaN": ({**data, "Ks": [[[float("nan")] * 3] * 3] * FRAMES}, "non-finite"),
        "true as a time": ({**data, "times": [True] * FRAMES}, "list of numbers"),
        "a time past 1": ({**data, "times": [*data["times"][:-1], 1.5]}, "normalised to [0, 1]"),
    }
    for what, (content, message) in bad.items():
        path = tmp_path / f"{what.replace(' ', '_')}.json"
        path.write_text(json.dumps(content))
        code, err = run(cli_main, capsys, "--frames", frames, "--cameras", path, "--out", tmp_path / "o")
        assert code == 2 and message in one_error(err) and path.name in err, what
    code, err = run(cli_main, capsys, "--frames", tmp_path / "nowhere", "--cameras", clip_dir / "cameras.json",
                    "--out", tmp_path / "o")
    assert code == 2 and "frames not found" in one_error(err)
    assert not (tmp_path / "o").exists()


def test_write_world_clip_writes_what_fit_reads(cli_main, capsys, tmp_path):
    write_main = runpy.run_module("gaussians.write_world_clip", run_name="write_world_clip_cli")["main"]
    code, err = run(write_main, capsys, "a yellow sphere bouncing", "--out", tmp_path / "clip", "--frames", FRAMES,
                    "--size", SIZE)
    assert code == 0, err
    clip = world_clip("a yellow sphere bouncing", n_frames=FRAMES, size=SIZE)
    assert np.array_equal(read_clip(tmp_path / "clip" / "frames"),
                          (clip.frames.numpy() * 255).round().astype(np.uint8))
    cams = json.loads((tmp_path / "clip" / "cameras.json").read_text())
    assert cams["caption"] == "a yellow sphere bouncing" and cams["times"] == clip.times.tolist()
    assert Cameras.from_dict(cams).viewmats.equal(clip.cameras.viewmats)

    code, err = run(write_main, capsys, "a green cube still", "--static", "--out", tmp_path / "views", "--frames",
                    FRAMES, "--size", SIZE)
    assert code == 0, err
    assert "times" not in json.loads((tmp_path / "views" / "cameras.json").read_text())
    code, err = run(cli_main, capsys, "--frames", tmp_path / "views" / "frames", "--cameras",
                    tmp_path / "views" / "cameras.json", "--out", tmp_path / "fitted", "--steps", "5", "--points",
                    "50", "--quiet")
    assert code == 0, err
    assert json.loads((tmp_path / "fitted" / "manifest.json").read_text())["kind"] == "static"

    code, err = run(write_main, capsys, "a green cube spinning", "--static", "--out", tmp_path / "x")
    assert code == 2 and "'a green cube still'" in one_error(err)
    code, err = run(write_main, capsys, "a green blob", "--out", tmp_path / "x")
    assert code == 2 and "not a 4D Shapes World caption" in one_error(err)
    code, err = run(write_main, capsys, "a green cube still", "--out", tmp_path / "views")
    assert code == 2 and "--overwrite" in one_error(err)
    assert not (tmp_path / "x").exists()


def test_static_fit_writes_ply_orbit_and_manifest(cli_main, capsys, clip_dir, tmp_path):
    out = tmp_path / "static"
    code, err = run(cli_main, capsys, "--frames", clip_dir / "frames", "--cameras", clip_dir / "static.json",
                    "--out", out, "--steps", "40", "--points", "300", "--quiet")
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["gaussians.ply", "manifest.json", "orbit.mp4"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "static" and manifest["config"]["steps"] == 40
    assert manifest["config"]["num_points"] == 300
    assert len(read_ply(out / "gaussians.ply")) == manifest["num_gaussians"]
    assert read_clip(out / "orbit.mp4").shape == (48, SIZE, SIZE, 3)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_4d_fit_from_the_command_line(clip_dir, tmp_path):
    out = tmp_path / "fit4d"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}  # the CLI sets it and restarts
    argv = ["--frames", clip_dir / "frames", "--cameras", clip_dir / "cameras.json", "--out", out, "--steps", "30",
            "--static-steps", "40", "--points", "300", "--threads", "1", "--quiet"]
    proc = subprocess.run([sys.executable, "-m", "gaussians.fit", *map(str, argv)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"frame_{i:04d}.ply" for i in range(FRAMES)] + ["manifest.json", "orbit.mp4", "sequence.json"]
    frames, times, cameras = read_ply_sequence(out)
    assert len(frames) == FRAMES and times[-1].item() == 1.0 and len(cameras) == FRAMES
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "4d" and manifest["config"]["motion_steps"] == 30 and \
        manifest["config"]["static"]["steps"] == 40 and set(manifest["log"]["stages"]) == {
        "static", "motion"}
    assert read_clip(out / "orbit.mp4").shape == (2 * FRAMES, SIZE, SIZE, 3)
