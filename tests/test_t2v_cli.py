"""`python -m pipelines.t2v`: clips in every format, resumable and multi-process batches, given
frames, one-line errors for bad input; and the clip reader/writers underneath (`video_io`)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipelines.core.atomic import atomic_write, atomic_write_dir, remove_partial_writes
from pipelines.core.batch import Job, process_rank, shard
from pipelines.core.errors import UserError
from pipelines.t2v.cli import main
from pipelines.core.video_io import read_clip, read_keyframes, write_clip

REPO = Path(__file__).resolve().parents[1]
SIZE, FRAMES = 8, 4  # the tiny model's native clip (tests/conftest.py: tiny_t2v_dir), at most 6 frames


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def rows(folder: Path, pattern: str = "manifest*.jsonl") -> list[dict]:
    return [json.loads(line) for f in sorted(folder.glob(pattern)) for line in f.read_text().splitlines()]


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


def random_clip(n=FRAMES, h=SIZE, w=SIZE, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


# ---------------------------------------------------------------- video_io

@pytest.mark.parametrize("fmt,name", [("mp4", "c.mp4"), ("gif", "c.gif"), ("frames", "c")])
def test_each_format_reads_back(fmt, name, tmp_path):
    clip = random_clip()
    write_clip(tmp_path / name, clip.astype(np.float32) / 255, fps=12, fmt=fmt)
    back = read_clip(tmp_path / name)
    assert back.shape == clip.shape and back.dtype == np.uint8
    if fmt != "mp4":  # PNG is lossless; a GIF of 64 colours keeps them all
        assert np.array_equal(back, clip)
    assert leftovers(tmp_path) == []


def test_mp4_of_odd_size_is_padded_not_refused(tmp_path):
    clip = np.full((3, 7, 9, 3), 200, dtype=np.uint8)
    write_clip(tmp_path / "odd.mp4", clip, fps=8, fmt="mp4")
    back = read_clip(tmp_path / "odd.mp4")
    assert back.shape == (3, 8, 10, 3) and np.abs(back.astype(int) - 200).max() <= 3


def test_gif_timing_and_frame_folder_replaced_whole(tmp_path):
    write_clip(tmp_path / "c.gif", random_clip(), fps=5, fmt="gif")
    assert Image.open(tmp_path / "c.gif").info["duration"] == 200
    write_clip(tmp_path / "f", random_clip(4), fps=5, fmt="frames")
    write_clip(tmp_path / "f", random_clip(2), fps=5, fmt="frames")
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == ["frame_0000.png", "frame_0001.png"]
    assert leftovers(tmp_path) == []


def test_partial_writes_of_a_killed_run_are_removed(tmp_path):
    temps = []  # the temp names the atomic writers really use, left behind as a SIGKILL would
    atomic_write(tmp_path / "c.mp4", lambda tmp: temps.append(tmp.name) or tmp.write_bytes(b"x"))
    atomic_write_dir(tmp_path / "c", lambda tmp: temps.append(tmp.name))
    assert len(temps) == 2
    (tmp_path / temps[0]).write_bytes(b"half a clip")
    (tmp_path / temps[1]).mkdir()
    (tmp_path / ".c.old").mkdir()  # a frames folder swapped aside
    keep = [".other.mp4.x1y2z3_q.tmp.mp4", ".c.mp4.notes"]  # another job's write; a user's file
    for name in keep:
        (tmp_path / name).write_bytes(b"keep")
    remove_partial_writes(tmp_path, ["c.mp4", "c"])
    assert sorted(leftovers(tmp_path)) == sorted(keep)


def test_keyframes_from_spec_or_folder(tmp_path):
    for i in (0, 5):
        Image.fromarray(random_clip(1, seed=i)[0]).save(tmp_path / f"frame_{i:04d}.png")
    spec = read_keyframes(f"0={tmp_path}/frame_0000.png, 5={tmp_path}/frame_0005.png")
    folder = read_keyframes(str(tmp_path))
    assert sorted(spec) == sorted(folder) == [0, 5]
    assert np.array_equal(spec[5], folder[5]) and np.array_equal(spec[5], random_clip(1, seed=5)[0])
    for bad, message in (("nope", "bad keyframe spec"), ("x=a.png", "keyframe index 'x'"),
                         ("-1=a.png", "must be >= 0"), (f"0={tmp_path}/missing.png", "image not found")):
        with pytest.raises(UserError, match=message):
            read_keyframes(bad)


def test_rank_and_shard_from_launcher_env(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert process_rank() == (0, 1)
    monkeypatch.setenv("OMPI_COMM_WORLD_RANK", "2")
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "3")
    assert process_rank() == (2, 3)
    jobs = [Job(i, f"p{i}", i) for i in range(7)]
    assert [j.index for j in shard(jobs, 2, 3)] == [2, 5]
    assert sorted(j.index for r in range(3) for j in shard(jobs, r, 3)) == list(range(7))
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(UserError, match="rank 2 does not fit world size 2"):
        process_rank()


# ---------------------------------------------------------------- one clip

@pytest.mark.parametrize("out,extra", [("c.mp4", []), ("c.gif", []), ("c", ["--format", "frames"])])
def test_single_clip_each_format(out, extra, tiny_t2v_dir, tmp_path, capsys):
    code, err = cli(capsys, "--model", tiny_t2v_dir, "--prompt", "a red circle", "--out", tmp_path / out,
                    "--steps", 2, *extra)
    assert code == 0, err
    assert read_clip(tmp_path / out).shape == (FRAMES, SIZE, SIZE, 3)
    assert f"({FRAMES} frames, {SIZE}x{SIZE}, 12 fps)" in err  # the model's fps by default
    assert leftovers(tmp_path) == []


def test_same_seed_same_clip(tiny_t2v_dir, tmp_path, capsys):
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        assert cli(capsys, "--model", tiny_t2v_dir, "--prompt", "a red circle", "--out", tmp_path / name,
                   "--format", "frames", "--steps", 2, "--seed", seed, "--num-frames", 3)[0] == 0
    a, b, c = (read_clip(tmp_path / n) for n in "abc")
    assert a.shape[0] == 3 and np.array_equal(a, b) and not np.array_equal(a, c)


def test_init_frames_and_keyframes_come_back_exactly(tiny_t2v_dir, tmp_path, capsys):
    init, key = random_clip(2, seed=1), random_clip(1, seed=2)[0]
    write_clip(tmp_path / "init.gif", init, fps=8, fmt="gif")
    Image.fromarray(key).save(tmp_path / "k.png")
    code, err = cli(capsys, "--model", tiny_t2v_dir, "--prompt", "a red circle", "--out", tmp_path / "out",
                    "--format", "frames", "--steps", 2, "--num-frames", 5, "--init-frames", tmp_path / "init.gif",
                    "--keyframes", f"4={tmp_path}/k.png")
    assert code == 0, err
    out = read_clip(tmp_path / "out")
    assert out.shape == (5, SIZE, SIZE, 3)
    assert np.array_equal(out[:2], init) and np.array_equal(out[4], key)


# ---------------------------------------------------------------- batches

def test_batch_manifest_per_prompt_frames_and_failures(tiny_t2v_dir, tmp_path, capsys):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("\n".join(json.dumps(r) for r in [
        {"prompt": "a red circle", "num_frames": 2}, {"prompt": "a blue square", "num_frames": 99},
        {"prompt": "a green cross", "seed": 7}, {"prompt": "a cyan cross", "num_frames": "many"}]) + "\n")
    out = tmp_path / "out"
    args = ["--model", tiny_t2v_dir, "--prompts", prompts, "--out-dir", out, "--steps", 2, "--seed", 10]
    code, err = cli(capsys, *args)
    assert code == 1 and "2 generated, 0 already done, 2 failed" in err, err
    done = rows(out)
    assert [(r["prompt"], r["seed"], r["num_frames"], r["format"]) for r in done] == [
        ("a red circle", 10, 2, "mp4"), ("a green cross", 7, FRAMES, "mp4")]
    for r in done:
        assert not Path(r["path"]).is_absolute() and read_clip(out / r["path"]).shape[0] == r["num_frames"]
    failed = {r["prompt"]: r["error"] for r in rows(out, "failed*.jsonl")}
    assert failed == {"a blue square": "num_frames 99 is beyond this model's limit of 6 frames",
                      "a cyan cross": "num_frames must be a positive integer, got 'many'"}

    code, err = cli(capsys, *args)
    assert "0 generated, 2 already done, 2 failed" in err
    code, err = cli(capsys, *args, "--format", "gif")  # another format is another set of outputs
    assert "2 generated, 0 already done" in err and len(rows(out)) == 4
    assert leftovers(out) == []


def test_cpu_launch_that_started_one_process_says_so(tiny_t2v_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ACCELERATE_USE_CPU", "True")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    (tmp_path / "p.txt").write_text("a red circle\n")
    code, err = cli(capsys, "--model", tiny_t2v_dir, "--prompts", tmp_path / "p.txt", "--out-dir", tmp_path / "o",
                    "--steps", 1, "--num-frames", 1)
    assert code == 0 and "note: this is the only process" in err


def run_module(*argv, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *map(str, argv)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


# `python -m pipelines.t2v` that kills itself with SIGKILL at the KILL_AT-th (1-based) rename of a
# finished clip into the folder KILL_IN — the worst moment for a hard kill: the clip is whole in its
# temp file and not yet in place. Deterministic: the kill lands at a known point, whatever the speed.
KILLED_MID_WRITE = """
import os, signal, sys
from pathlib import Path
from pipelines.t2v.cli import main

folder, kill_at, real_replace, clips = Path(os.environ["KILL_IN"]).resolve(), int(os.environ["KILL_AT"]), os.replace, []

def replace(src, dst, *args, **kwargs):
    dst = Path(dst)
    if dst.parent.resolve() == folder and dst.suffix == ".mp4" and not dst.name.startswith("."):
        clips.append(dst.name)
        if len(clips) == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
    return real_replace(src, dst, *args, **kwargs)

os.replace = replace
sys.exit(main(sys.argv[1:]))
"""


def test_resume_after_kill_makes_every_clip_exactly_once(tiny_t2v_dir, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("".join(f"a {c} circle\n" for c in ("red", "green", "blue", "yellow", "cyan", "magenta")))
    out = tmp_path / "out"
    args = ["--model", tiny_t2v_dir, "--prompts", prompts, "--out-dir", out, "--steps", 2]
    proc = run_module("-c", KILLED_MID_WRITE, *args, env={**os.environ, "KILL_IN": str(out), "KILL_AT": "3"})
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, err
    first = rows(out)
    assert [r["index"] for r in first] == [0, 1]  # two clips done, the third killed mid-write
    (partial,) = leftovers(out)  # what the kill left: the third clip, whole, under its temp name
    assert partial.startswith(".00002-a-blue-circle-") and partial.endswith(".tmp.mp4"), partial
    assert sorted(p.name for p in out.glob("[!.]*.mp4")) == sorted(r["path"] for r in first)

    proc = run_module("-m", "pipelines.t2v", *args)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "4 generated, 2 already done, 0 failed" in err
    done = rows(out)
    assert sorted(r["index"] for r in done) == list(range(6))  # every clip exactly once
    assert sorted(p.name for p in out.glob("*.mp4")) == sorted(r["path"] for r in done)
    assert leftovers(out) == []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_split_the_batch(tiny_t2v_dir, tmp_path):
    """`accelerate launch --multi_gpu` runs torchrun, which works without GPUs (`--cpu` alone starts one process)."""
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "a red circle"}\n{"prompt": "a green square", "num_frames": 99}\n'
                       '{"prompt": "a blue cross"}\n{"prompt": "a cyan cross"}\n')
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = run_module("-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", 2, "--num_machines", 1,
                      "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", free_port(),
                      "-m", "pipelines.t2v", "--model", tiny_t2v_dir, "--prompts", prompts, "--out-dir", out,
                      "--steps", 1, "--format", "gif", env=env)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode != 0, err  # one prompt failed: rank 0 says so once every process is done
    assert [r["index"] for r in rows(out, "manifest.part-0.jsonl")] == [0, 2]
    assert [r["index"] for r in rows(out, "manifest.part-1.jsonl")] == [3]
    assert [r["index"] for r in rows(out, "failed.part-1.jsonl")] == [1]
    assert "rank 1/2: 1 generated, 0 already done, 1 failed" in err
    assert "all 2 processes: 3 of 4 clips done, 1 failed" in err
    assert all(read_clip(out / r["path"]).shape == (FRAMES, SIZE, SIZE, 3) for r in rows(out))


# ---------------------------------------------------------------- bad input

BAD = {
    "empty prompt": (["--prompt", "  ", "--out", "{tmp}/x.mp4"], "empty prompt"),
    "no --out": (["--prompt", "a red circle"], "--prompt needs --out"),
    "no --out-dir": (["--prompts", "{tmp}/ok.txt"], "--prompts needs --out-dir"),
    "num frames zero": (["--prompt", "a red circle", "--out", "{tmp}/x.mp4", "--num-frames", "0"],
                        "--num-frames must be a positive integer, got 0"),
    "num frames beyond limit": (["--prompt", "a red circle", "--out", "{tmp}/x.mp4", "--num-frames", "7"],
                                "num_frames 7 is beyond this model's limit of 6 frames"),
    "unknown format": (["--prompt", "a red circle", "--out", "{tmp}/x.mp4", "--format", "avi"], "unknown format 'avi'"),
    "unknown suffix": (["--prompt", "a red circle", "--out", "{tmp}/x.avi"], "cannot tell the format from '.avi'"),
    "suffix against format": (["--prompt", "a red circle", "--out", "{tmp}/x.mp4", "--format", "gif"],
                              "does not fit --format gif"),
    "init frames wrong size": (["--prompt", "a red circle", "--out", "{tmp}/x.mp4", "--init-frames", "{tmp}/big.png"],
                               "init_frames: size 16x16, expected 8x8"),
    "init frames missing": (["--prompt", "a red circle", "--out", "{tmp}/x.mp4", "--init-frames", "{tmp}/no.mp4"],
                            "frames not found"),
    "init frames unreadable": (["--prompt", "a red circle", "--out", "{tmp}/x.mp4", "--init-frames",
                                "{tmp}/broken.mp4"], "cannot read video"),
    "bad keyframe spec": (["--prompt", "a red circle", "--out", "{tmp}/x.mp4", "--keyframes", "{tmp}/small.png"],
                          "bad keyframe spec"),
    "keyframe index not a number": (["--prompt", "a red circle", "--out", "{tmp}/x.mp4", "--keyframes",
                                     "first={tmp}/small.png"], "keyframe index 'first'"),
    "keyframe index beyond clip": (["--prompt", "a red circle", "--out", "{tmp}/x.mp4", "--keyframes",
                                    "9={tmp}/small.png"], "keyframe index 9 is out of range for num_frames=4"),
    "prompts file missing": (["--prompts", "{tmp}/nope.txt", "--out-dir", "{tmp}/o"], "prompts file not found"),
    "unwritable out-dir": (["--prompts", "{tmp}/ok.txt", "--out-dir", "{tmp}/afile.txt/sub"],
                           "cannot write to output folder"),
    "unwritable --out folder": (["--prompt", "a red circle", "--out", "{tmp}/afile.txt/x.mp4"],
                                "cannot write to output folder"),
    "steps zero": (["--prompt", "a red circle", "--out", "{tmp}/x.mp4", "--steps", "0"], "--steps must be between 1 and 1000, got 0"),
    "negative guidance": (["--prompt", "a red circle", "--out", "{tmp}/x.mp4", "--guidance", "-1"],
                          "--guidance must be between 0 and 30, got -1"),
    "negative seed": (["--prompt", "a red circle", "--out", "{tmp}/x.mp4", "--seed", "-1"], "--seed must be between 0 and 4294967295, got -1"),
    "fps zero": (["--prompt", "a red circle", "--out", "{tmp}/x.mp4", "--fps", "0"], "--fps must be above 0, got 0"),
    "height off the grid": (["--prompt", "a red circle", "--out", "{tmp}/x.mp4", "--height", "9"],
                            "height 9 must be a positive multiple of 2"),
    "unknown scheduler": (["--prompt", "a red circle", "--out", "{tmp}/x.mp4", "--scheduler", "magic"],
                          "unknown scheduler 'magic'"),
    "unknown device": (["--prompt", "a red circle", "--out", "{tmp}/x.mp4", "--device", "quantum"],
                       "unknown device 'quantum'"),
    "missing model": (["--prompt", "a red circle", "--out", "{tmp}/x.mp4", "--model", "{tmp}/no-model"],
                      "model path not found"),
    "missing first-frame model": (["--prompt", "a red circle", "--out", "{tmp}/x.mp4", "--first-frame-model",
                                   "{tmp}/no-image-model"], "model path not found"),
    "first-frame model that is a video model": (["--prompt", "a red circle", "--out", "{tmp}/x.mp4",
                                                 "--first-frame-model", "{video_model}"],
                                                "unsupported pipeline 'TextToVideoPipeline'"),
    "first-frame model with init frames": (["--prompt", "a red circle", "--out", "{tmp}/x.mp4", "--first-frame-model",
                                            "{video_model}", "--init-frames", "{tmp}/small.png"],
                                           "does not go with --init-frames"),
    "compile with a cache": (["--prompt", "a red circle", "--out", "{tmp}/x.mp4", "--compile", "--cache", "fbcache"],
                             "--compile runs the plain sampler; drop --cache"),
    "compile with bottleneck and a target": (["--prompt", "a red circle", "--out", "{tmp}/x.mp4", "--compile",
                                              "--bottleneck", "--quality-target", "30"],
                                             "drop --bottleneck and --quality-target"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_clear_line_and_exit_2(case, tiny_t2v_dir, tmp_path, capsys):
    (tmp_path / "ok.txt").write_text("a red circle\n")
    (tmp_path / "afile.txt").write_text("not a folder")
    (tmp_path / "broken.mp4").write_text("not a video")
    Image.new("RGB", (16, 16)).save(tmp_path / "big.png")
    Image.new("RGB", (SIZE, SIZE)).save(tmp_path / "small.png")
    argv, expected = BAD[case]
    argv = [a.format(tmp=tmp_path, video_model=tiny_t2v_dir) for a in argv]
    if "--model" not in argv:
        argv += ["--model", str(tiny_t2v_dir)]
    code, err = cli(capsys, *argv)
    lines = [l for l in err.splitlines() if l.strip()]
    assert code == 2 and lines[-1].startswith("error: ") and expected in lines[-1], err
    assert "Traceback" not in err
    assert not (tmp_path / "x.mp4").exists() and not (tmp_path / "o").exists()


def test_real_subprocess_exit_code_and_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pipelines.t2v", "--prompt", "", "--out", str(tmp_path / "x.mp4")],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: empty prompt: --prompt needs some text"


# ---------------------------------------------------------------- --compile


def test_compile_gives_the_same_clips_as_eager(tiny_t2v_dir, tmp_path, capsys):
    """--compile compiles on a one-step warm-up, says so, and the clip matches the eager one."""
    common = ["--model", str(tiny_t2v_dir), "--prompt", "a red circle moving up", "--steps", "3", "--format", "frames"]
    assert main([*common, "--out", str(tmp_path / "eager")]) == 0
    try:
        assert main([*common, "--out", str(tmp_path / "compiled"), "--compile"]) == 0
    finally:
        import torch

        torch._dynamo.reset()
    err = capsys.readouterr().err
    assert "compiling the transformer" in err and "compiled in" in err, err
    eager, compiled = read_clip(tmp_path / "eager"), read_clip(tmp_path / "compiled")
    assert np.abs(eager.astype(int) - compiled.astype(int)).max() <= 1  # 8-bit frames; fused kernels may round apart


def test_compile_failure_falls_back_to_eager_with_the_reason(tiny_t2v_dir, tmp_path, capsys, monkeypatch):
    import torch

    def refuse(self, *args, **kwargs):
        raise RuntimeError("no C compiler here\nlong trace")

    monkeypatch.setattr(torch.nn.Module, "compile", refuse)
    assert main(["--model", str(tiny_t2v_dir), "--prompt", "a red circle", "--steps", "2", "--compile",
                 "--out", str(tmp_path / "x.gif")]) == 0
    err = capsys.readouterr().err
    assert "--compile: could not compile (RuntimeError: no C compiler here); running uncompiled" in err, err
    assert read_clip(tmp_path / "x.gif").shape[0] == FRAMES


def test_first_frame_model_from_a_folder_starts_each_clip(tiny_t2v_dir, tiny_t2i_dir, tmp_path, capsys):
    """--first-frame-model PATH: the clip is the Python call's with that image model drawing frame 0;
    `none` (and the default, for a folder that is not the shipped model) leave the video model alone."""
    import torch

    from pipelines.t2v.first_frame import FirstFrameModel
    from pipelines.t2i import load_t2i_pipeline
    from pipelines.t2v.loading import load_t2v_pipeline

    common = ["--model", tiny_t2v_dir, "--prompt", "a red circle moving left", "--format", "frames", "--steps", 2,
              "--seed", 4, "--num-frames", 3]
    for name, extra in (("image", ["--first-frame-model", tiny_t2i_dir]), ("none", ["--first-frame-model", "none"]),
                        ("auto", [])):
        assert cli(capsys, *common, "--out", tmp_path / name, *extra)[0] == 0
    image, none, auto = (read_clip(tmp_path / n) for n in ("image", "none", "auto"))
    assert np.array_equal(none, auto) and not np.array_equal(image[0], none[0])
    pipe = load_t2v_pipeline(tiny_t2v_dir)
    pipe.set_first_frame_model(FirstFrameModel(load_t2i_pipeline(tiny_t2i_dir)))
    want = pipe("a red circle moving left", num_frames=3, num_inference_steps=2,
                generator=torch.Generator().manual_seed(4)).frames[0]
    assert np.abs(image.astype(int) - np.round(want * 255).astype(int)).max() <= 1


def test_clip_strip_one_row_per_clip_beside_its_reference(tiny_t2v_dir, tmp_path, capsys):
    """pipelines.t2v.clip_strip: a row per prompt (its label, the shown frames, the reference's
    frames), the reference read back by the strict reader as its prompt says."""
    import world
    from pipelines.t2v.clip_strip import main as strip_main, reference_clip, shown_frames

    prompt = "a large red square in the left moving right on a black background"
    reference = reference_clip(prompt, 16, 32)
    assert dict(world.read_video(reference)) == world.parse_video_caption(prompt)
    assert reference_clip("a teapot moving left", 16, 32) is None
    assert reference_clip("a red circle spinning", 16, 32) is None  # circles do not spin
    assert shown_frames(16, 8) == [0, 2, 4, 6, 9, 11, 13, 15] and shown_frames(4, 8) == [0, 1, 2, 3]
    prompts = tmp_path / "p.txt"
    prompts.write_text(f"{prompt}\na blue circle growing\n", encoding="utf-8")
    out = tmp_path / "strip.png"
    assert strip_main(["--model", str(tiny_t2v_dir), "--prompts", str(prompts), "--out", str(out), "--steps", "2",
                       "--frames-shown", "3"]) == 0
    assert "wrote" in capsys.readouterr().out
    # 3 frames of 8x8 at 2x (+2 px apart) twice, 16 px between; a 28-px heading, rows of 2 lines + 16 px + 10
    assert Image.open(out).size == (2 * 3 * 18 + 16 + 8, 28 + 2 * (22 + 16 + 10))
    assert strip_main(["--model", str(tiny_t2v_dir), "--prompts", str(prompts), "--out", str(out)]) == 2
