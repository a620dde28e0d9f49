"""bench/cache.py --quick end to end: every method and every peer runs on tiny random models and the
report (tables, Pareto front, matched-speed-up comparison, cache.json, plots) is written."""

from __future__ import annotations

import json

import torch

from bench import cache


def test_quick_run_reports_every_row_and_the_matched_speedup_comparison(tmp_path, capsys):
    threads = torch.get_num_threads()
    cache.main(["--quick", "--out-dir", str(tmp_path)])
    assert torch.get_num_threads() == threads, "the bench left the caller on its own thread count"
    captured = capsys.readouterr()
    printed = captured.out
    assert captured.err.count("timing pass 2 of 2 done") == 2  # --quick times every row twice, pass by pass
    report = json.loads((tmp_path / "cache.json").read_text())
    for name in ("t2i", "t2v"):
        rows = report["models"][name]["rows"]
        failed = {r["name"]: r["error"] for r in rows if "error" in r}
        assert not failed, failed
        families = {r["family"] for r in rows}
        assert families == {"baseline", "ours", "diffusers", "cache-dit"}, families
        ours = {r["name"].split(" ")[0] for r in rows if r["family"] == "ours"}
        assert ours == {"interval", "bwcache", "fbcache", "taylorseer", "cg-taylor", "bottleneck"}, ours
        assert rows[-1]["psnr"] == rows[0]["psnr"], "the uncached run at the end differs: a method did not detach"
        assert (tmp_path / f"cache_{name}.png").stat().st_size > 0
    sections = printed.split("Matched speed-up")[1:]
    assert len(sections) == 2
    for name, section in zip(("t2i", "t2v"), sections):
        table = section.split("ours ahead at")[0]
        compared = [line for line in table.splitlines() if line.startswith(("| diffusers", "| cache-dit"))]
        peers = [r for r in report["models"][name]["rows"] if r["family"] in ("diffusers", "cache-dit")]
        assert len(compared) == len(peers), table


def test_methods_filter_picks_rows_and_names_the_choices(capsys):
    import pytest

    only_bottleneck = cache.parse_args(["--quick", "--methods", "bottleneck", "--no-peers"])
    assert [s.name for s in cache.settings_in_order(only_bottleneck)] == ["none (uncached)"]  # bottleneck rows follow
    some = cache.parse_args(["--quick", "--methods", "bwcache,bottleneck", "--no-peers"])
    assert {s.name.split(" ")[0] for s in cache.settings_in_order(some)} == {"none", "bwcache"}
    with pytest.raises(SystemExit):
        cache.parse_args(["--methods", "bwcahe"])
    err = capsys.readouterr().err
    assert "unknown bwcahe" in err and "bottleneck" in err
