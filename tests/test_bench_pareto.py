"""bench/pareto.py: the front bench/cache.py prints, and its plot keeps every label inside."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from bench.pareto import COLOURS, matched_speedup, pareto_front, plot


def test_front_keeps_only_undominated_points_sorted_by_speed():
    points = [(1.0, 60.0), (2.0, 40.0), (1.5, 39.0), (3.0, 30.0), (2.0, 45.0)]
    assert pareto_front(points) == [0, 4, 3]


def test_matched_speedup_compares_each_peer_with_our_best_that_is_at_least_as_fast():
    row = lambda name, family, x, y: {"name": name, "family": family, "speedup": x, "psnr": y}
    rows = [row("uncached", "baseline", 1.0, 99.0), row("a", "ours", 1.2, 50.0), row("b", "ours", 2.0, 40.0),
            row("c", "ours", 3.0, 30.0), row("p1", "diffusers", 1.5, 45.0), row("p2", "cache-dit", 1.1, 55.0),
            row("p3", "diffusers", 3.5, 20.0)]
    got = {m["peer"]["name"]: (m["ours"] and m["ours"]["name"], m["margin_db"], m["ahead"]) for m in matched_speedup(rows)}
    assert got == {"p1": ("b", -5.0, False),  # 2.0x is the slowest of ours at >= 1.5x
                   "p2": ("a", -5.0, False), "p3": (None, None, False)}
    rows[2]["psnr"] = 46.0
    assert [m["ahead"] for m in matched_speedup(rows)] == [True, False, False]


def test_label_of_the_fastest_point_stays_inside_the_image(tmp_path):
    rows = [{"name": "uncached", "family": "baseline", "speedup": 1.0, "psnr": 60.0},
            {"name": "cg-taylor d=0.3 (a long label)", "family": "ours", "speedup": 3.2, "psnr": 34.0}]
    plot(rows, tmp_path / "p.png", "test")
    plot([rows[0], {**rows[1], "name": ""}], tmp_path / "unlabelled.png", "test")
    alone = Image.new("RGB", (400, 40), "white")
    ImageDraw.Draw(alone).text((10, 10), rows[1]["name"], fill=COLOURS["ours"])

    def ink(image):  # pixels in the label's colour
        return int(np.all(np.abs(np.asarray(image, dtype=int) - np.array(COLOURS["ours"])) < 40, axis=-1).sum())

    shown = ink(Image.open(tmp_path / "p.png").convert("RGB")) - ink(Image.open(tmp_path / "unlabelled.png").convert("RGB"))
    assert shown == ink(alone), "the label is cut off at the image's edge"
