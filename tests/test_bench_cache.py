"""bench/cache.py: the report it prints, checked on small synthetic rows, and one `--quick --no-peers`
smoke run on tiny random models that proves the command runs end to end (cache.json, plots)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from bench import cache

ATTRIBUTES = ("colour", "shape")


def row(name, family, speedup, psnr, **extra):
    return {"name": name, "family": family, "knobs": {}, "time": 2.0 / speedup, "speedup": speedup,
            "skipped": 0.25, "skipped_counted": 0.25, "psnr": psnr, "ssim": 0.95,
            "oracle": {"colour": 0.5, "shape": None, "joint": 0.25, "clean": 0.125, "template_iou": 0.8125}, **extra}


def printed_table(rows, capsys, quality_only=False) -> str:
    task = cache.Task("t2i", SimpleNamespace(transformer=torch.nn.Linear(4, 4)), ["a", "b"], ATTRIBUTES,
                      call=None, score=None)
    args = SimpleNamespace(quick=True, split="any", steps=6, guidance=4.0, batch=2, repeats=2, quality_only=quality_only)
    cache.print_table(task, rows, args)
    return capsys.readouterr().out


def test_table_front_and_matched_speedup_on_synthetic_rows(capsys):
    rows = [row("none (uncached)", "baseline", 1.0, 100.0), row("a", "ours", 1.5, 40.0),
            row("b", "ours", 2.0, 30.0), row("diffusers p1", "diffusers", 1.4, 35.0),
            row("cache-dit p2", "cache-dit", 2.5, 25.0),
            {"name": "diffusers p3", "family": "diffusers", "knobs": {}, "error": "not attached: TypeError: no"},
            row(cache.REPEAT, "baseline", 1.1, 100.0)]  # faster than the first: it would top the front
    out = printed_table(rows, capsys)
    lines = out.splitlines()
    assert "## t2i: tiny random (--quick)  2 prompts (any)  steps=6 cfg=4.0 batch=2" in out
    # the strict joint, share clean and template IoU beside PSNR, then the attributes
    header = ("| method | family | time s | speed-up | skipped | PSNR dB | SSIM | joint | clean | template IoU | colour "
              "| shape |")
    table = lines[lines.index(header):]
    table = table[:next(i for i, line in enumerate(table) if not line.startswith("|"))]
    assert table[2:] == [  # every row that ran, in order; the failed one is listed below instead
        "| none (uncached) | baseline | 2.00 | 1.00x | 25% | 100.0 | 0.950 | 0.25 | 0.12 | 0.81 | 0.50 | — |",
        "| a | ours | 1.33 | 1.50x | 25% | 40.0 | 0.950 | 0.25 | 0.12 | 0.81 | 0.50 | — |",
        "| b | ours | 1.00 | 2.00x | 25% | 30.0 | 0.950 | 0.25 | 0.12 | 0.81 | 0.50 | — |",
        "| diffusers p1 | diffusers | 1.43 | 1.40x | 25% | 35.0 | 0.950 | 0.25 | 0.12 | 0.81 | 0.50 | — |",
        "| cache-dit p2 | cache-dit | 0.80 | 2.50x | 25% | 25.0 | 0.950 | 0.25 | 0.12 | 0.81 | 0.50 | — |",
        f"| {cache.REPEAT} | baseline | 1.82 | 1.10x | 25% | 100.0 | 0.950 | 0.25 | 0.12 | 0.81 | 0.50 | — |"]
    assert "- diffusers p3 (diffusers): not attached: TypeError: no" in lines
    # the repeated uncached run is kept off the front; p1 is dominated by a
    assert ("Pareto front (speed-up vs PSNR): none (uncached) (1.00x, 100.0 dB)  ->  a (1.50x, 40.0 dB)  ->  "
            "b (2.00x, 30.0 dB)  ->  cache-dit p2 (2.50x, 25.0 dB)") in lines
    matched = out.split("Matched speed-up")[1].split("ours ahead at")[0]
    assert [line for line in matched.splitlines() if line.startswith("| ") and "peer" not in line] == [
        "| diffusers p1 | 1.40x | 35.0 | a | 1.50x | 40.0 | +5.0 |",  # one line per peer that ran
        "| cache-dit p2 | 2.50x | 25.0 | none as fast |  |  |  |"]
    assert "ours ahead at 1 of 2 peer settings" in out


def test_without_peers_there_is_no_matched_speedup_section(capsys):
    out = printed_table([row("none (uncached)", "baseline", 1.0, 100.0), row("a", "ours", 1.5, 40.0)], capsys)
    assert "| a | ours |" in out and "Pareto front" in out
    assert "Matched speed-up" not in out and "ours ahead" not in out


def test_quality_only_table_leaves_out_every_timing_figure(capsys):
    out = printed_table([row("none (uncached)", "baseline", 1.0, 100.0), row("a", "ours", 1.5, 40.0),
                         row("diffusers p1", "diffusers", 1.4, 35.0)], capsys, quality_only=True)
    assert "(quality only: no timing)" in out
    assert ("| method | family | skipped | PSNR dB | SSIM | joint | clean | template IoU | colour | shape |"
            in out.splitlines())
    assert "| a | ours | 25% | 40.0 | 0.950 | 0.25 | 0.12 | 0.81 | 0.50 | — |" in out.splitlines()
    assert "Pareto front" not in out and "Matched speed-up" not in out and "x |" not in out


def test_quick_run_without_peers_writes_the_report(tmp_path, capsys):
    threads = torch.get_num_threads()
    cache.main(["--quick", "--no-peers", "--out-dir", str(tmp_path)])
    assert torch.get_num_threads() == threads, "the bench left the caller on its own thread count"
    captured = capsys.readouterr()
    assert captured.err.count("timing pass 2 of 2 done") == 2  # --quick times every row twice, pass by pass
    report = json.loads((tmp_path / "cache.json").read_text())
    for name in ("t2i", "t2v"):
        rows = report["models"][name]["rows"]
        failed = {r["name"]: r["error"] for r in rows if "error" in r}
        assert not failed, failed
        assert {r["family"] for r in rows} == {"baseline", "ours"}
        ours = {r["name"].split(" ")[0] for r in rows if r["family"] == "ours"}
        assert ours == {"interval", "bwcache", "fbcache", "taylorseer", "cg-taylor", "bottleneck"}, ours
        assert rows[-1]["psnr"] == rows[0]["psnr"], "the uncached run at the end differs: a method did not detach"
        assert (tmp_path / f"cache_{name}.png").stat().st_size > 0
        assert f"## {name}: tiny random (--quick)" in captured.out
    assert "Matched speed-up" not in captured.out


def test_methods_filter_picks_rows_and_names_the_choices(capsys):
    only_bottleneck = cache.parse_args(["--quick", "--methods", "bottleneck", "--no-peers"])
    assert [s.name for s in cache.settings_in_order(only_bottleneck)] == ["none (uncached)"]  # bottleneck rows follow
    some = cache.parse_args(["--quick", "--methods", "bwcache,bottleneck", "--no-peers"])
    assert {s.name.split(" ")[0] for s in cache.settings_in_order(some)} == {"none", "bwcache"}
    with pytest.raises(SystemExit):
        cache.parse_args(["--methods", "bwcahe"])
    err = capsys.readouterr().err
    assert "unknown bwcahe" in err and "bottleneck" in err
