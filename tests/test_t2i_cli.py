"""`python -m pipelines.t2i`: single image, resumable batches, and one-line errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipelines.t2i.cli import main

REPO = Path(__file__).resolve().parents[1]


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    return code, err


def test_single_image(tiny_t2i_dir, tmp_path, capsys):
    out = tmp_path / "img.png"
    code, _ = cli(capsys, "--model", tiny_t2i_dir, "--prompt", "a red circle", "--out", out, "--steps", 2)
    assert code == 0
    assert Image.open(out).size == (8, 8)
    assert not list(tmp_path.glob(".*tmp*")), "temp files left behind"


def test_seed_makes_runs_repeatable(tiny_t2i_dir, tmp_path, capsys):
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        cli(capsys, "--model", tiny_t2i_dir, "--prompt", "a red circle", "--out", tmp_path / f"{name}.png",
            "--steps", 2, "--seed", seed)
    read = lambda n: (tmp_path / f"{n}.png").read_bytes()
    assert read("a") == read("b") and read("a") != read("c")


def test_batch_writes_manifest_and_resumes(tiny_t2i_dir, tmp_path, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red circle\n\n# a comment\na blue square on a black background\na green cross\n",
                       encoding="utf-8")
    out = tmp_path / "out"
    code, err = cli(capsys, "--model", tiny_t2i_dir, "--prompts", prompts, "--out-dir", out, "--steps", 2,
                    "--seed", 10)
    assert code == 0 and "3 generated" in err
    rows = [json.loads(l) for l in (out / "manifest.jsonl").read_text().splitlines()]
    assert [r["prompt"] for r in rows] == ["a red circle", "a blue square on a black background", "a green cross"]
    assert [r["seed"] for r in rows] == [10, 11, 12]
    for r in rows:
        assert (out / r["path"]).is_file() and not Path(r["path"]).is_absolute()
    first = (out / rows[0]["path"]).read_bytes()

    code, err = cli(capsys, "--model", tiny_t2i_dir, "--prompts", prompts, "--out-dir", out, "--steps", 2,
                    "--seed", 10)
    assert code == 0 and "0 generated, 3 already done" in err
    (out / rows[1]["path"]).unlink()  # a lost output is made again, identically seeded
    code, err = cli(capsys, "--model", tiny_t2i_dir, "--prompts", prompts, "--out-dir", out, "--steps", 2,
                    "--seed", 10)
    assert "1 generated, 2 already done" in err
    assert (out / rows[1]["path"]).is_file() and (out / rows[0]["path"]).read_bytes() == first


def test_jsonl_prompts_with_seeds(tiny_t2i_dir, tmp_path, capsys):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "a red circle", "seed": 7}\n{"prompt": "a red circle", "seed": 7}\n'
                       '{"prompt": "a cyan square"}\n', encoding="utf-8")
    out = tmp_path / "out"
    assert cli(capsys, "--model", tiny_t2i_dir, "--prompts", prompts, "--out-dir", out, "--steps", 2)[0] == 0
    rows = [json.loads(l) for l in (out / "manifest.jsonl").read_text().splitlines()]
    assert [r["seed"] for r in rows] == [7, 7, 2]
    assert (out / rows[0]["path"]).read_bytes() == (out / rows[1]["path"]).read_bytes()
    assert rows[0]["path"] != rows[1]["path"]


def test_scheduler_option(tiny_t2i_dir, tmp_path, capsys):
    code, _ = cli(capsys, "--model", tiny_t2i_dir, "--prompt", "a red circle", "--out", tmp_path / "x.png",
                  "--steps", 3, "--scheduler", "dpm++")
    assert code == 0


# ---------------------------------------------------------------- bad input

def corrupt_model(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    weights = next((dst / "transformer").glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:200])
    return dst


BAD = {
    "empty prompt": (["--prompt", "  ", "--out", "{tmp}/x.png"], "empty prompt"),
    "prompts file missing": (["--prompts", "{tmp}/nope.txt", "--out-dir", "{tmp}/o"], "prompts file not found"),
    "prompts file empty": (["--prompts", "{tmp}/empty.txt", "--out-dir", "{tmp}/o"], "has no prompts"),
    "prompts file not utf-8": (["--prompts", "{tmp}/latin1.txt", "--out-dir", "{tmp}/o"], "not UTF-8"),
    "jsonl line not json": (["--prompts", "{tmp}/bad.jsonl", "--out-dir", "{tmp}/o"], "bad.jsonl:2: not valid JSON"),
    "steps zero": (["--prompt", "a red circle", "--out", "{tmp}/x.png", "--steps", "0"], "--steps must be between 1 and 1000, got 0"),
    "steps negative": (["--prompt", "a red circle", "--out", "{tmp}/x.png", "--steps", "-3"], "--steps must be between 1 and 1000, got -3"),
    "height not on patch grid": (["--prompt", "a red circle", "--out", "{tmp}/x.png", "--height", "9"],
                                 "height 9 must be a positive multiple of 2"),
    "width beyond limit": (["--prompt", "a red circle", "--out", "{tmp}/x.png", "--width", "4096"],
                           "width 4096 is beyond"),
    "negative guidance": (["--prompt", "a red circle", "--out", "{tmp}/x.png", "--guidance", "-1"], "--guidance must be between 0 and 30, got -1"),
    "unknown scheduler": (["--prompt", "a red circle", "--out", "{tmp}/x.png", "--scheduler", "magic"],
                          "unknown scheduler 'magic'"),
    "unknown dtype": (["--prompt", "a red circle", "--out", "{tmp}/x.png", "--dtype", "int3"], "unknown dtype 'int3'"),
    "missing model path": (["--prompt", "a red circle", "--out", "{tmp}/x.png", "--model", "{tmp}/no-such-model"],
                           "model path not found"),
    "folder not a checkpoint": (["--prompt", "a red circle", "--out", "{tmp}/x.png", "--model", "{tmp}"],
                                "not a checkpoint folder"),
    "corrupted safetensors": (["--prompt", "a red circle", "--out", "{tmp}/x.png", "--model", "{tmp}/corrupt"],
                              "could not load the model"),
    "unwritable output folder": (["--prompt", "a red circle", "--out", "{tmp}/afile.txt/x.png"], "cannot write to output folder"),
    "unwritable out-dir": (["--prompts", "{tmp}/ok.txt", "--out-dir", "{tmp}/afile.txt/sub"], "cannot write to output folder"),
    "bad image suffix": (["--prompt", "a red circle", "--out", "{tmp}/x.exe"], "must end in one of"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_clear_line_and_exit_2(case, tiny_t2i_dir, tmp_path, capsys):
    (tmp_path / "empty.txt").write_text("\n  \n", encoding="utf-8")
    (tmp_path / "latin1.txt").write_bytes("un cercle \xe9l\xe9gant\n".encode("latin-1"))
    (tmp_path / "bad.jsonl").write_text('{"prompt": "a red circle"}\n{prompt: oops}\n', encoding="utf-8")
    (tmp_path / "ok.txt").write_text("a red circle\n", encoding="utf-8")
    (tmp_path / "afile.txt").write_text("not a folder", encoding="utf-8")
    corrupt_model(tiny_t2i_dir, tmp_path / "corrupt")
    argv, expected = BAD[case]
    argv = [a.format(tmp=tmp_path) for a in argv]
    if "--model" not in argv:
        argv += ["--model", str(tiny_t2i_dir)]
    code, err = cli(capsys, *argv)
    assert code == 2, err
    lines = [l for l in err.splitlines() if l.strip()]
    assert lines[-1].startswith("error: ") and expected in lines[-1], err
    assert "Traceback" not in err
    assert not (tmp_path / "x.png").exists()


def test_real_subprocess_exit_code_and_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pipelines.t2i", "--prompt", "", "--out", str(tmp_path / "x.png")],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: empty prompt: --prompt needs some text"


def test_sample_grid_tiles_every_prompt(tiny_t2i_dir, tmp_path, capsys):
    from pipelines.t2i.sample_grid import main as grid_main

    prompts = tmp_path / "p.txt"
    prompts.write_text("a red circle\na blue square\na green cross\n", encoding="utf-8")
    out = tmp_path / "grid.png"
    assert grid_main(["--model", str(tiny_t2i_dir), "--prompts", str(prompts), "--out", str(out),
                      "--steps", "2", "--columns", "2"]) == 0
    grid = Image.open(out)
    assert grid.size == (2 * 150, 2 * (16 + 4 * 11 + 8))  # 2 columns x 2 rows of 8x8 images at 2x
    assert grid_main(["--model", str(tiny_t2i_dir), "--prompts", str(tmp_path / "none.txt"),
                      "--out", str(out)]) == 2


def test_sample_grid_reference_draws_the_world_render_of_each_prompt(tmp_path, capsys):
    """--reference loads no model: each cell is Shapes World's render of its prompt (the strict
    reader reads it back as the prompt says), unstated attributes drawn with the defaults, and a
    prompt outside the grammar a grey cell."""
    import world
    from pipelines.t2i.sample_grid import REFERENCE_DEFAULTS, main as grid_main, reference_image

    prompt = "a small blue triangle in the top right on a black background"
    assert dict(world.read_image(np.asarray(reference_image(prompt)))) == world.parse_caption(prompt)
    assert dict(world.read_image(np.asarray(reference_image("a red cross")))) == {
        "colour": "red", "shape": "cross", **REFERENCE_DEFAULTS}
    assert (np.asarray(reference_image("a teapot")) == 200).all()
    prompts = tmp_path / "p.txt"
    prompts.write_text(f"{prompt}\na red cross\na teapot\n", encoding="utf-8")
    out = tmp_path / "reference.png"
    assert grid_main(["--reference", "--prompts", str(prompts), "--out", str(out), "--columns", "3",
                      "--model", str(tmp_path / "no-model-here")]) == 0
    assert Image.open(out).size == (3 * 150, 128 + 4 * 11 + 8)  # one row of 64x64 renders at 2x
    assert "3 reference renders" in capsys.readouterr().out
    assert grid_main(["--reference", "--reference-size", "16", "--prompts", str(prompts), "--out", str(out),
                      "--overwrite"]) == 2


def test_fresh_process_loads_a_saved_multires_pipeline(tmp_path, minilm):
    """A new interpreter has imported nothing of ditkit: loading must still find the backbone class."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    from dit import MultiResDiT
    from pipelines.t2i import TextToImagePipeline
    from pipelines.core.text_encoder import MINILM_PACKAGE

    from .tiny_models import randomize

    transformer = randomize(MultiResDiT(sample_size=16, patch_size=4, hidden_size=32, depth=1, num_heads=2,
                                       branch_channels=(16, 8), branch_depths=(1, 1)), std=0.1)
    TextToImagePipeline(transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(),
                        text_encoder_package=MINILM_PACKAGE).save_pretrained(tmp_path / "m")
    out = tmp_path / "x.png"
    proc = subprocess.run([sys.executable, "-m", "pipelines.t2i", "--model", str(tmp_path / "m"), "--prompt",
                           "a red circle", "--out", str(out), "--steps", "2"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert Image.open(out).size == (16, 16)
