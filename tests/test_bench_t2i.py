"""bench/t2i.py on a tiny random model: the strict reader's table (accuracy per attribute, joint,
then the fidelity columns) for held-out and random prompts, no timing rows with --quality-only,
and the scored images written as grids."""

from __future__ import annotations

from PIL import Image

from bench import t2i


def test_quality_only_prints_the_strict_table_and_writes_the_grids(tiny_t2i_dir, tmp_path, capsys):
    t2i.main(["--model", str(tiny_t2i_dir), "--steps", "2", "--prompts", "2", "--quality-only",
              "--grid-dir", str(tmp_path / "grids")])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert not [r for r in rows if r.startswith(("| measure", "| 1 image", "| peak RSS"))], rows
    header = [c.strip() for c in rows[0].split("|")[1:-1]]
    assert header == ["prompts", "n", "background", "colour", "shape", "size", "position", "joint", "template IoU",
                      "noise", "clean", "strays"], header
    assert [r.split("|")[1].strip() for r in rows[1:]] == ["heldout", "any"]
    for row in rows[1:]:
        values = dict(zip(header, (c.strip() for c in row.split("|")[1:-1])))
        assert values["n"] == "2" and 0.0 <= float(values["clean"]) <= 1.0 and float(values["noise"]) >= 0.0, row
    assert sorted(p.name for p in (tmp_path / "grids").iterdir()) == ["t2i_any.png", "t2i_heldout.png"]
    assert Image.open(tmp_path / "grids" / "t2i_heldout.png").size[0] == 8 * 150  # 8 columns
