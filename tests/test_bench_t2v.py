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
    header = next(r for r in rows if r.startswith("| prompts"))
    assert header.split("|")[-2].strip() == "last shape", header
    for row in (r for r in rows if r.startswith(("| heldout", "| any"))):
        assert 0.0 <= float(row.split("|")[-2]) <= 1.0, row


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
