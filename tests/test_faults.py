"""Faults a new user ran into (issue 20), each reproduced: no user file is ever deleted, replaced or
duplicated; processes sharing a batch folder split it and the cores; the CLIs and the app share one
set of limits; output-path problems come before any generation; a killed run's temp files are
cleaned on resume; the app's temp folder goes on SIGTERM; every argument error is one line."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines.core import inputs
from pipelines.core.batch import Claims, output_name, read_prompt_file
from pipelines.core.cores import CoreShare, usable_cores
from pipelines.core.errors import UserError
from pipelines.t2i.cli import main as t2i_main
from pipelines.t2v.cli import main as t2v_main

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def run(main, capsys, *argv):
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


# ---------------------------------------------------------------- nothing of the user's is lost

def users_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "mine"
    (folder / "sub").mkdir(parents=True)
    (folder / "notes.txt").write_text("keep me")
    (folder / "sub" / "more.txt").write_text("and me")
    return folder


def test_t2v_frames_into_an_existing_folder_is_refused_and_it_is_kept(tiny_t2v_dir, tmp_path, capsys):
    folder = users_folder(tmp_path)
    code, err = run(t2v_main, capsys, "--model", tiny_t2v_dir, "--prompt", "a red circle", "--steps", 2,
                    "--out", folder, "--format", "frames")
    assert code == 2 and "already exists; pass --overwrite" in one_error_line(err)
    assert (folder / "notes.txt").read_text() == "keep me" and (folder / "sub" / "more.txt").is_file()


def test_t2v_frames_overwrite_replaces_only_that_folder(tiny_t2v_dir, tmp_path, capsys):
    folder = users_folder(tmp_path)
    (tmp_path / "beside.txt").write_text("beside")
    code, _ = run(t2v_main, capsys, "--model", tiny_t2v_dir, "--prompt", "a red circle", "--steps", 2,
                  "--out", folder, "--format", "frames", "--overwrite")
    assert code == 0
    assert sorted(p.name for p in folder.iterdir()) == [f"frame_{i:04d}.png" for i in range(4)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["beside.txt", "mine"]  # nothing else touched


@pytest.mark.parametrize("overwrite", [False, True])
def test_t2v_an_existing_file_never_becomes_a_frames_folder(tiny_t2v_dir, tmp_path, capsys, overwrite):
    out = tmp_path / "clip"
    out.write_text("a file of mine")
    code, err = run(t2v_main, capsys, "--model", tiny_t2v_dir, "--prompt", "a red circle", "--out", out,
                    "--format", "frames", *(["--overwrite"] if overwrite else []))
    assert code == 2 and "is an existing file" in one_error_line(err)
    assert out.read_text() == "a file of mine"


def test_t2i_out_naming_a_folder_fails_before_any_model_is_loaded(tmp_path, capsys):
    folder = users_folder(tmp_path)
    # a model path that does not exist: had the model been loaded first, that would be the error
    code, err = run(t2i_main, capsys, "--model", tmp_path / "no-model", "--prompt", "a red circle",
                    "--out", folder / "x.png")
    assert code == 2 and "model path not found" in err  # --out inside a folder is fine …
    (folder / "x.png").mkdir()
    code, err = run(t2i_main, capsys, "--model", tmp_path / "no-model", "--prompt", "a red circle",
                    "--out", folder / "x.png")
    assert code == 2 and "is an existing folder" in one_error_line(err)  # … a folder at --out is not
    assert (folder / "x.png").is_dir() and (folder / "notes.txt").read_text() == "keep me"


def test_t2i_existing_image_needs_overwrite(tiny_t2i_dir, tmp_path, capsys):
    out = tmp_path / "x.png"
    out.write_bytes(b"my picture")
    base = ["--model", tiny_t2i_dir, "--prompt", "a red circle", "--steps", 2, "--out", out]
    code, err = run(t2i_main, capsys, *base)
    assert code == 2 and "already exists; pass --overwrite" in one_error_line(err)
    assert out.read_bytes() == b"my picture"
    code, _ = run(t2i_main, capsys, *base, "--overwrite")
    assert code == 0 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny-t2i", "x.png"]


# ---------------------------------------------------------------- a killed run's leftovers

def test_t2i_resume_removes_a_killed_runs_temp_file(tiny_t2i_dir, tmp_path, capsys):
    prompts = tmp_path / "p.txt"
    prompts.write_text("a red circle\na blue square\n")
    out = tmp_path / "out"
    out.mkdir()
    first = output_name(read_prompt_file(prompts, 0)[0], ".png")
    stray = out / f".{first}.k3x9_q.tmp.png"  # what atomic_write leaves when killed before the rename
    stray.write_bytes(b"half an image")
    code, _ = run(t2i_main, capsys, "--model", tiny_t2i_dir, "--prompts", prompts, "--out-dir", out, "--steps", 2)
    assert code == 0 and not stray.exists()
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []


# ---------------------------------------------------------------- processes sharing a batch

def test_a_claim_is_exclusive_and_dies_with_its_process(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pipelines.core.batch import Claims; "
         "c = Claims(sys.argv[1]).claim('job'); c.__enter__(); print('held', flush=True); time.sleep(60)",
         str(tmp_path)], stdout=subprocess.PIPE, text=True, env=ENV, cwd=REPO)
    try:
        assert holder.stdout.readline().strip() == "held"
        with Claims(tmp_path).claim("job") as mine:
            assert not mine
        with Claims(tmp_path).claim("another job") as mine:
            assert mine
    finally:
        holder.kill()
        holder.wait()
    with Claims(tmp_path).claim("job") as mine:  # the kernel released the dead process's lock
        assert mine


def hold_claims(folder: Path, names: list[str]) -> subprocess.Popen:
    """Another worker, mid-run: holds claims on `names` until killed."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys, json, time; from pipelines.core.batch import Claims; "
         "cs = Claims(sys.argv[1]); held = [cs.claim(n) for n in json.loads(sys.argv[2])]; "
         "[h.__enter__() for h in held]; print('held', flush=True); time.sleep(120)",
         str(folder), json.dumps(names)], stdout=subprocess.PIPE, text=True, env=ENV, cwd=REPO)
    assert proc.stdout.readline().strip() == "held"
    return proc


@pytest.mark.parametrize("modality", ["t2i", "t2v"])
def test_a_batch_skips_what_another_process_has_claimed(tiny_t2i_dir, tiny_t2v_dir, tmp_path, capsys, modality):
    prompts = tmp_path / "p.txt"
    prompts.write_text("".join(f"a red circle number {i}\n" for i in range(6)))
    out = tmp_path / "out"
    out.mkdir()
    suffix, main, model = (".png", t2i_main, tiny_t2i_dir) if modality == "t2i" else (".mp4", t2v_main, tiny_t2v_dir)
    names = [output_name(job, suffix) for job in read_prompt_file(prompts, 0)]
    other = hold_claims(out, names[:4])
    try:
        code, err = run(main, capsys, "--model", model, "--prompts", prompts, "--out-dir", out, "--steps", 2)
    finally:
        other.kill()
        other.wait()
    assert code == 0 and "2 generated" in err and "4 taken by another process" in err
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert sorted(r["path"] for r in rows) == names[4:]


def test_two_processes_at_once_make_each_image_exactly_once(tiny_t2i_dir, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("".join(f"a blue square number {i}\n" for i in range(12)))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "pipelines.t2i", "--model", str(tiny_t2i_dir), "--prompts", str(prompts),
           "--out-dir", str(out), "--steps", "30"]
    procs = [subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=ENV, cwd=REPO) for _ in range(2)]
    errs = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(rows) == 12 and len({r["path"] for r in rows}) == 12, rows
    assert len(list(out.glob("*.png"))) == 12


def test_jobs_on_one_machine_split_its_cores(tmp_path):
    other = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pipelines.core.cores import CoreShare; "
         "CoreShare(sys.argv[1]); print('registered', flush=True); time.sleep(60)", str(tmp_path)],
        stdout=subprocess.PIPE, text=True, env=ENV, cwd=REPO)
    try:
        assert other.stdout.readline().strip() == "registered"
        with CoreShare(tmp_path) as share:
            assert share.jobs() == 2
            assert share.share() == max(1, min(share.threads_before, usable_cores() // 2))
    finally:
        other.kill()
        other.wait()
    with CoreShare(tmp_path) as share:  # the killed job's registration is gone
        assert share.jobs() == 1


# ---------------------------------------------------------------- one set of limits, one-line errors

LIMITS = [
    (["--guidance", "inf"], "--guidance must be a finite number, got inf"),
    (["--guidance", "nan"], "--guidance must be a finite number, got nan"),
    (["--steps", "100000"], "--steps must be between 1 and 1000, got 100000"),
    (["--steps", "abc"], "argument --steps: invalid int value: 'abc'"),
    (["--seed", "99999999999"], "--seed must be between 0 and 4294967295"),
    (["--height", "100000"], "--height must be between 0 and 4096"),
]


@pytest.mark.parametrize("main,out", [(t2i_main, "x.png"), (t2v_main, "x.mp4")], ids=["t2i", "t2v"])
@pytest.mark.parametrize("flags,expected", LIMITS, ids=[" ".join(f) for f, _ in LIMITS])
def test_clis_refuse_what_the_app_refuses_in_one_line(main, out, flags, expected, tmp_path, capsys):
    with pytest.raises(SystemExit) if "abc" in flags else _no_exit():
        code, err = run(main, capsys, "--prompt", "a red circle", "--out", tmp_path / out, *flags)
        assert code == 2
    if "abc" in flags:
        err = capsys.readouterr().err
    assert expected in one_error_line(err)
    assert list(tmp_path.iterdir()) == []


class _no_exit:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("check,value", [(inputs.guidance, float("inf")), (inputs.guidance, float("nan")),
                                         (inputs.steps, 100000), (inputs.seed, -1)])
def test_the_app_and_pipelines_share_those_limits(check, value):
    with pytest.raises(UserError):
        check(value)


def test_pipeline_call_refuses_infinite_guidance(tiny_t2i):
    with pytest.raises(UserError, match="guidance_scale must be a finite number, got inf"):
        tiny_t2i("a red circle", num_inference_steps=2, guidance_scale=float("inf"))


def test_argument_type_errors_are_one_line_from_a_real_process(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pipelines.t2v", "--prompt", "a red circle", "--out",
                           str(tmp_path / "x.mp4"), "--steps", "abc"], capture_output=True, text=True, env=ENV,
                          cwd=REPO, timeout=120)
    assert proc.returncode == 2 and "usage:" not in proc.stderr
    assert "argument --steps: invalid int value: 'abc'" in one_error_line(proc.stderr)


# ---------------------------------------------------------------- the app's temp folder

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_app_removes_its_temp_folder_on_sigterm(tmp_path):
    port = free_port()
    env = {**ENV, "TMPDIR": str(tmp_path), "GRADIO_ANALYTICS_ENABLED": "False"}
    proc = subprocess.Popen([sys.executable, "-m", "apps", "--port", str(port)], env=env, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        assert proc.poll() is None, proc.stderr.read()
        assert len(list(tmp_path.glob("ditkit-app-*"))) == 1  # the app made its folder …
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert list(tmp_path.glob("ditkit-app-*")) == []  # … and removed it on SIGTERM
