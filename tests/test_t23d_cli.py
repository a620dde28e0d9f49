"""`python -m pipelines.t23d`: one cloud (and its meshes), resumable batches with the manifest and
failed.jsonl, and one-line errors for bad input — on a tiny random VoxelDiT saved like the shipped model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import trimesh
from diffusers import FlowMatchEulerDiscreteScheduler
from plyfile import PlyData

from dit import VoxelDiT
from pipelines.core.text_encoder import MINILM_PACKAGE
from pipelines.t23d import T23DPipeline
from pipelines.t23d.cli import main
from pipelines.t23d.files import read_point_cloud

from .tiny_models import randomize

pytestmark = pytest.mark.usefixtures("one_thread")
REPO = Path(__file__).resolve().parents[1]
FAST = ["--steps", "2", "--num-points", "256"]


def tiny_t23d(in_channels: int = 6) -> T23DPipeline:
    """A random VoxelDiT (8³ voxels) saved without MiniLM (it comes from its package), as shipped."""
    transformer = randomize(VoxelDiT(sample_size=8, patch_size=2, in_channels=in_channels, hidden_size=32, depth=2,
                                     num_heads=2, window_size=2, window_blocks=[0], text_dim=384, pooled_dim=384,
                                     adaln="single", point_head_channels=8), std=0.1)
    return T23DPipeline(transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(), text_max_length=16,
                        text_encoder_package=MINILM_PACKAGE)


@pytest.fixture(scope="module")
def tiny_t23d_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("t23d") / "tiny-t23d"
    tiny_t23d().save_pretrained(path, safe_serialization=True)
    return path


def cli(capsys, *argv):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit:  # argparse's own errors (types, mutually exclusive options)
        code = exit.code
    return code, capsys.readouterr().err


def test_one_prompt_writes_a_coloured_ply_and_with_mesh_a_glb_and_obj(tiny_t23d_dir, tmp_path, capsys):
    out = tmp_path / "cone.ply"
    code, err = cli(capsys, "--model", tiny_t23d_dir, "--prompt", "a tall red cone", "--out", out, *FAST, "--mesh")
    assert code == 0, err
    points, colours = read_point_cloud(out)
    assert points.shape == (256, 3) and colours.shape == (256, 3)
    assert [p.name for p in PlyData.read(str(out))["vertex"].properties] == ["x", "y", "z", "red", "green", "blue"]
    for suffix in (".glb", ".obj"):
        mesh = trimesh.load(out.with_suffix(suffix), force="mesh", process=False)
        assert len(mesh.faces) > 0 and mesh.visual.kind == "vertex", suffix
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cone.glb", "cone.obj", "cone.ply"]  # no temp files
    assert "wrote" in err and "cone.glb" in err


def test_seed_repeats_and_overwrite_is_asked_for(tiny_t23d_dir, tmp_path, capsys):
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        assert cli(capsys, "--model", tiny_t23d_dir, "--prompt", "a cube", "--out", tmp_path / f"{name}.ply",
                   *FAST, "--seed", seed)[0] == 0
    read = lambda n: (tmp_path / f"{n}.ply").read_bytes()
    assert read("a") == read("b") and read("a") != read("c")
    code, err = cli(capsys, "--model", tiny_t23d_dir, "--prompt", "a cube", "--out", tmp_path / "c.ply", *FAST,
                    "--seed", 5)
    assert code == 2 and "already exists; pass --overwrite" in err and read("c") != read("a")
    assert cli(capsys, "--model", tiny_t23d_dir, "--prompt", "a cube", "--out", tmp_path / "c.ply", *FAST,
               "--seed", 5, "--overwrite")[0] == 0
    assert read("c") == read("a")
    # --mesh checks its own outputs too: an existing .glb beside a new .ply is not replaced by surprise
    (tmp_path / "d.glb").write_text("mine")
    code, err = cli(capsys, "--model", tiny_t23d_dir, "--prompt", "a cube", "--out", tmp_path / "d.ply", *FAST, "--mesh")
    assert code == 2 and "d.glb already exists" in err and not (tmp_path / "d.ply").exists()


def test_an_uncoloured_model_writes_xyz_only(tmp_path, capsys):
    folder = tmp_path / "xyz"
    tiny_t23d(in_channels=3).save_pretrained(folder, safe_serialization=True)
    out = tmp_path / "s.ply"
    assert cli(capsys, "--model", folder, "--prompt", "a sphere", "--out", out, *FAST, "--mesh")[0] == 0
    assert [p.name for p in PlyData.read(str(out))["vertex"].properties] == ["x", "y", "z"]
    assert trimesh.load(out.with_suffix(".glb"), force="mesh").visual.kind is None


def test_batch_writes_manifest_resumes_and_adds_meshes_on_request(tiny_t23d_dir, tmp_path, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a tall red cone\n\n# a comment\na wide torus\na blue cube\n", encoding="utf-8")
    out = tmp_path / "out"
    run = lambda *extra: cli(capsys, "--model", tiny_t23d_dir, "--prompts", prompts, "--out-dir", out, *FAST,
                             "--seed", 10, *extra)
    code, err = run()
    assert code == 0 and "3 generated" in err
    rows = [json.loads(l) for l in (out / "manifest.jsonl").read_text().splitlines()]
    assert [r["prompt"] for r in rows] == ["a tall red cone", "a wide torus", "a blue cube"]
    assert [r["seed"] for r in rows] == [10, 11, 12]
    assert rows[0]["path"] == "00000-a-tall-red-cone-s10.ply" and rows[0]["meshes"] is None
    assert all((out / r["path"]).is_file() and r["points"] == 256 and r["coloured"] for r in rows)
    first = (out / rows[0]["path"]).read_bytes()

    assert "0 generated, 3 already done" in run()[1]
    (out / rows[1]["path"]).unlink()  # a lost output is made again, identically seeded
    assert "1 generated, 2 already done" in run()[1]
    assert (out / rows[0]["path"]).read_bytes() == first
    # meshes asked for later: every job is redone with them, the clouds unchanged
    code, err = run("--mesh")
    assert code == 0 and "3 generated" in err
    last = [json.loads(l) for l in (out / "manifest.jsonl").read_text().splitlines()][-3:]
    for r in last:
        assert r["meshes"] == [r["path"].replace(".ply", ".glb"), r["path"].replace(".ply", ".obj")]
        assert all((out / m).is_file() for m in r["meshes"])
    assert (out / rows[0]["path"]).read_bytes() == first
    assert "0 generated, 3 already done" in run("--mesh")[1]
    assert not list(out.glob(".*tmp*"))


def test_a_bad_prompt_in_a_batch_goes_to_failed_jsonl(tiny_t23d_dir, tmp_path, capsys):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(json.dumps({"prompt": "a red cube", "seed": 3}) + "\n"
                       + json.dumps({"prompt": "x" * 1001}) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    code, err = cli(capsys, "--model", tiny_t23d_dir, "--prompts", prompts, "--out-dir", out, *FAST)
    assert code == 1 and "1 generated, 0 already done, 1 failed" in err
    failed = [json.loads(l) for l in (out / "failed.jsonl").read_text().splitlines()]
    assert len(failed) == 1 and failed[0]["index"] == 1 and "prompt" in failed[0]["error"]
    assert json.loads((out / "manifest.jsonl").read_text())["seed"] == 3


def test_scheduler_and_cache_options(tiny_t23d_dir, tmp_path, capsys):
    for i, extra in enumerate((["--scheduler", "dpm++"], ["--cache", "fbcache", "--cache-threshold", "0.5"],
                               ["--quality-target", "30"])):
        code, err = cli(capsys, "--model", tiny_t23d_dir, "--prompt", "a cone", "--out", tmp_path / f"{i}.ply",
                        "--steps", "4", "--num-points", "64", *extra)
        assert code == 0, err
    assert "quality target 30 dB" in err


# ---------------------------------------------------------------- bad input

BAD = {
    "empty prompt": (["--prompt", "  ", "--out", "{tmp}/x.ply"], "empty prompt"),
    "no --out": (["--prompt", "a cone"], "--prompt needs --out FILE.ply"),
    "no --out-dir": (["--prompts", "{tmp}/ok.txt"], "--prompts needs --out-dir DIR"),
    "bad suffix": (["--prompt", "a cone", "--out", "{tmp}/x.glb"], "must end in .ply"),
    "prompts file missing": (["--prompts", "{tmp}/nope.txt", "--out-dir", "{tmp}/o"], "prompts file not found"),
    "prompts file empty": (["--prompts", "{tmp}/empty.txt", "--out-dir", "{tmp}/o"], "has no prompts"),
    "steps zero": (["--prompt", "a cone", "--out", "{tmp}/x.ply", "--steps", "0"], "--steps must be between 1 and 1000, got 0"),
    "steps not a number": (["--prompt", "a cone", "--out", "{tmp}/x.ply", "--steps", "many"], "--steps: invalid int value"),
    "both --prompt and --prompts": (["--prompt", "a cone", "--prompts", "{tmp}/ok.txt"], "not allowed with argument"),
    "guidance negative": (["--prompt", "a cone", "--out", "{tmp}/x.ply", "--guidance", "-1"], "--guidance must be between 0 and 30"),
    "one point": (["--prompt", "a cone", "--out", "{tmp}/x.ply", "--num-points", "1"], "--num-points must be between 2 and 65536, got 1"),
    "bottleneck": (["--prompt", "a cone", "--out", "{tmp}/x.ply", "--bottleneck"], "does not apply to point clouds"),
    "unknown cache": (["--prompt", "a cone", "--out", "{tmp}/x.ply", "--cache", "magic"], "unknown --cache 'magic'"),
    "unknown scheduler": (["--prompt", "a cone", "--out", "{tmp}/x.ply", "--scheduler", "magic"], "unknown scheduler 'magic'"),
    "missing model path": (["--prompt", "a cone", "--out", "{tmp}/x.ply", "--model", "{tmp}/no-such-model"], "model path not found"),
    "another pipeline's folder": (["--prompt", "a cone", "--out", "{tmp}/x.ply", "--model", "{tmp}/t2i"], "unsupported pipeline"),
    "unwritable output folder": (["--prompt", "a cone", "--out", "{tmp}/afile.txt/x.ply"], "cannot write to output folder"),
    "out is a folder": (["--prompt", "a cone", "--out", "{tmp}/adir.ply"], "is an existing folder"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_clear_line_and_exit_2(case, tiny_t23d_dir, tmp_path, capsys):
    (tmp_path / "empty.txt").write_text("\n  \n", encoding="utf-8")
    (tmp_path / "ok.txt").write_text("a cone\n", encoding="utf-8")
    (tmp_path / "afile.txt").write_text("not a folder", encoding="utf-8")
    (tmp_path / "adir.ply").mkdir()
    (tmp_path / "t2i").mkdir()
    (tmp_path / "t2i" / "model_index.json").write_text('{"_class_name": "TextToImagePipeline"}')
    argv, expected = BAD[case]
    argv = [a.format(tmp=tmp_path) for a in argv]
    if "--model" not in argv:
        argv += ["--model", str(tiny_t23d_dir)]
    code, err = cli(capsys, *argv)
    assert code == 2, err
    lines = [l for l in err.splitlines() if l.strip()]
    assert lines[-1].startswith("error: ") and expected in lines[-1], err
    assert "Traceback" not in err and not (tmp_path / "x.ply").exists()


def test_real_subprocess_exit_code_and_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pipelines.t23d", "--prompt", "a cone", "--out",
                           str(tmp_path / "x.obj")], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: --out") and "must end in .ply" in proc.stderr


def test_without_the_shipped_model_the_error_says_how_to_make_it(tmp_path, capsys, monkeypatch):
    from pipelines.t23d import default_model

    monkeypatch.setattr(default_model, "SHIPPED_T23D", tmp_path / "shapes-t23d")
    code, err = cli(capsys, "--prompt", "a tall red cone", "--out", tmp_path / "cone.ply", *FAST)
    assert code == 2 and err.startswith("error: the text-to-3D model is not shipped yet")
    assert "python -m training.train --config configs/t23d_shapes.json" in err and len(err.strip().splitlines()) == 1
