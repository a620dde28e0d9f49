"""bench/t23d.py: a --quick run end to end on a tiny random model, a stand-in model that draws the
world itself (read back perfectly, 1-NNA near 50 %), and the table rows from synthetic metrics."""

from __future__ import annotations

import numpy as np
import pytest

from bench import t23d
from world.metrics3d import SetMetrics
from world.shapes3d import Shape3DSpec, sample_shape3d

from .world_stand_in import WorldShapePipeline


def table(printed: str, first_header: str) -> list[dict[str, str]]:
    """The rows of the printed markdown table whose first header is `first_header`, as dicts."""
    lines = printed.splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith(f"| {first_header} |"))
    header = [c.strip() for c in lines[start].split("|")[1:-1]]
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("| "):
            break
        rows.append(dict(zip(header, (c.strip() for c in line.split("|")[1:-1]))))
    return rows


def test_quick_run_prints_time_readback_and_set_metrics(capsys):
    assert t23d.main(["--quick"]) == 0
    out = capsys.readouterr().out
    measures = [r["measure"] for r in table(out, "measure")]
    assert measures[0].startswith("1 shape (128 points, 2 steps)") and measures[1].startswith("its mesh")
    assert [r["prompts"] for r in table(out, "prompts")] == ["heldout", "any"]
    metrics = table(out, "class")
    assert [r["class"] for r in metrics] == ["sphere", "cube", "mean"]
    assert all(r["1-NNA-CD"].endswith("%") and r["1-NNA-EMD"].endswith("%") for r in metrics)


def test_a_model_drawing_the_world_reads_back_perfectly_and_is_indistinguishable(monkeypatch, capsys):
    monkeypatch.setattr(t23d, "load", lambda args: WorldShapePipeline())
    assert t23d.main(["--per-class", "24", "--classes", "cone,torus", "--readback", "8", "--emd-points", "0",
                      "--num-points", "512", "--repeats", "1", "--steps", "1"]) == 0
    out = capsys.readouterr().out
    for row in table(out, "prompts"):
        assert row["shape"] == row["proportion"] == row["joint"] == "1.000", row
        assert row["colour"].startswith("1.000") or row["colour"].startswith("–"), row
    rows = {r["class"]: r for r in table(out, "class")}
    for shape in ("cone", "torus"):
        nna = float(rows[shape]["1-NNA-CD"].rstrip(" %"))
        assert 25 <= nna <= 75, rows[shape]  # one distribution: near 50 %
        assert rows[shape]["MMD-EMD (×10²)"] == "–"


def test_metric_rows_format_each_class_and_the_mean():
    cd = lambda nna: SetMetrics("CD", 0.0021, 0.5, nna, 64, 64)
    emd = SetMetrics("EMD", 0.05, 0.25, 0.75, 64, 64)
    rows = t23d.metric_rows({"cone": {"CD": cd(0.5), "EMD": emd}, "cube": {"CD": cd(0.6), "EMD": emd}})
    assert rows[0] == ["cone", "64/64", "2.10", "50.0 %", "50.0 %", "5.00", "25.0 %", "75.0 %"]
    assert rows[2][:5] == ["mean", "", "2.10", "50.0 %", "55.0 %"]
    assert t23d.metric_rows({"cone": {"CD": cd(0.5)}})[0][5:] == ["–", "–", "–"]


def test_readback_scores_count_colour_only_where_a_prompt_names_one():
    specs = [Shape3DSpec("cube", "tall", "red"), Shape3DSpec("torus")]
    samples = [sample_shape3d(s, 5) for s in specs]
    scores = t23d.readback_scores([s.points for s in samples], [s.colours for s in samples], specs)
    chamfer = scores.pop("chamfer")
    assert scores == {"n": 2, "shape": 1.0, "proportion": 1.0, "colour": 1.0, "coloured": 1, "joint": 1.0, "clean": 1.0}
    assert 0 < chamfer < 0.0075
    fuzzy = t23d.readback_scores([s.points + np.random.default_rng(0).normal(size=s.points.shape) * 0.08
                                  for s in samples], [s.colours for s in samples], specs)
    assert fuzzy["clean"] == 0.0 and fuzzy["chamfer"] > chamfer
    wrong = t23d.readback_scores([samples[1].points], [None], [Shape3DSpec("torus", None, "red")])
    assert wrong["shape"] == 1.0 and wrong["colour"] == 0.0 and wrong["joint"] == 0.0
    assert len(t23d.readback_specs("heldout", 20)) == 20 and len(t23d.class_specs("cone", 7)) == 7


def test_bad_options_are_refused():
    for argv in (["--classes", "teapot"], ["--per-class", "1"], ["--steps", "0"]):
        with pytest.raises(SystemExit):
            t23d.parse_args(argv)
