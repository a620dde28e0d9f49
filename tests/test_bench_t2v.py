"""bench/t2v.py --quick end to end, plain and with a cache: the time table gains the alternating
plain/accelerated row and the oracle table the accelerated splits; bad acceleration flags are
refused by name before any model loads."""

from __future__ import annotations

import pytest

from bench import t2v


def table_rows(printed: str) -> list[str]:
    return [line for line in printed.splitlines() if line.startswith("| ")]


def test_quick_run_with_a_cache_times_both_and_scores_both(capsys):
    t2v.main(["--quick", "--cache", "fbcache", "--cache-threshold", "0.2"])
    rows = table_rows(capsys.readouterr().out)
    timing = [r for r in rows if r.startswith("| 1 clip plain / fbcache threshold=0.2, alternating")]
    assert len(timing) == 1, rows
    plain, fast = (float(part.split(" s")[0]) for part in timing[0].split("|")[2].split("/"))
    assert plain > 0 and fast > 0
    splits = [r.split("|")[1].strip() for r in rows if r.startswith(("| heldout", "| any"))]
    assert splits == ["heldout", "heldout, fbcache threshold=0.2", "any", "any, fbcache threshold=0.2"]


def test_quick_run_without_acceleration_scores_the_plain_splits_only(capsys):
    t2v.main(["--quick"])
    rows = table_rows(capsys.readouterr().out)
    assert not [r for r in rows if "alternating" in r]
    assert [r.split("|")[1].strip() for r in rows if r.startswith(("| heldout", "| any"))] == ["heldout", "any"]
    header = [c.strip() for c in next(r for r in rows if r.startswith("| prompts")).split("|")[1:-1]]
    # the strict reader's figures follow the joint: no tolerant last-frame column any more
    assert header[header.index("joint"):] == ["joint", "shape frames", "template IoU", "noise", "clean frames",
                                              "strays"], header
    for row in (r for r in rows if r.startswith(("| heldout", "| any"))):
        values = dict(zip(header, (c.strip() for c in row.split("|")[1:-1])))
        for share in ("joint", "shape frames", "template IoU", "clean frames"):
            assert 0.0 <= float(values[share]) <= 1.0, row
        assert float(values["noise"]) >= 0.0 and float(values["strays"]) >= 0.0, row


def test_quality_only_skips_the_timing_rows_and_grid_dir_writes_the_strips(tmp_path, capsys):
    t2v.main(["--quick", "--quality-only", "--grid-dir", str(tmp_path)])
    rows = table_rows(capsys.readouterr().out)
    assert not [r for r in rows if r.startswith(("| measure", "| 1 clip", "| peak RSS"))], rows
    assert [r.split("|")[1].strip() for r in rows if r.startswith(("| heldout", "| any"))] == ["heldout", "any"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t2v_any.png", "t2v_heldout.png"]


@pytest.mark.parametrize("argv, message", [
    (["--cache", "nope"], "unknown --cache 'nope'"),
    (["--cache", "fbcache", "--cache-threshold", "-1"], "--cache-threshold must be >= 0, got -1"),
    (["--cache", "fbcache", "--cache-interval", "3"], "takes no --cache-interval"),
    (["--quality-target", "30"], "--quality-target is not benchmarked here"),
])
def test_bad_acceleration_flags_are_refused_by_name(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        t2v.parse_args(["--quick", *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
