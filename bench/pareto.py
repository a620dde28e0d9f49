"""The speed/quality trade-off of a benchmark's rows: the Pareto front and a scatter plot of it.

The plot is drawn with PIL (matplotlib is not a dependency): speed-up on x, PSNR on y, one
colour per family, the front joined by a line.
"""

from __future__ import annotations

from PIL import Image, ImageDraw

COLOURS = {"baseline": (0, 0, 0), "ours": (31, 119, 180), "diffusers": (255, 127, 14), "cache-dit": (44, 160, 44)}


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both axes (higher is better on both), by x."""
    front = []
    for i, (x, y) in enumerate(points):
        dominated = any((x2 >= x and y2 >= y) and (x2 > x or y2 > y) for j, (x2, y2) in enumerate(points) if j != i)
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def matched_speedup(rows: list[dict], ours: str = "ours") -> list[dict]:
    """Each peer setting against our best at a matched speed-up: the highest-PSNR row of family
    `ours` that is at least as fast. → one dict per peer row: peer, ours (None if none of ours is
    that fast), margin_db (ours − peer PSNR), ahead (margin > 0)."""
    mine = [r for r in rows if r["family"] == ours]
    out = []
    for peer in (r for r in rows if r["family"] not in (ours, "baseline")):
        fast_enough = [r for r in mine if r["speedup"] >= peer["speedup"]]
        best = max(fast_enough, key=lambda r: r["psnr"], default=None)
        margin = best["psnr"] - peer["psnr"] if best else None
        out.append({"peer": peer, "ours": best, "margin_db": margin, "ahead": margin is not None and margin > 0})
    return out


def plot(rows: list[dict], path, title: str, size: tuple[int, int] = (900, 600)) -> None:
    """rows: dicts with name, family, speedup, psnr; the front's rows are labelled."""
    w, h = size
    left, right, top, bottom = 70, 30, 40, 60
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    xs, ys = [r["speedup"] for r in rows], [r["psnr"] for r in rows]
    x0, x1 = min(1.0, min(xs)) * 0.95, max(xs) * 1.05
    y0, y1 = min(ys) - 2, max(ys) + 2
    x1, y1 = max(x1, x0 + 1e-6), max(y1, y0 + 1e-6)

    def at(x, y):
        return left + (x - x0) / (x1 - x0) * (w - left - right), h - bottom - (y - y0) / (y1 - y0) * (h - top - bottom)

    draw.rectangle([left, top, w - right, h - bottom], outline=(160, 160, 160))
    for k in range(6):  # ticks
        tx, ty = x0 + (x1 - x0) * k / 5, y0 + (y1 - y0) * k / 5
        px, _ = at(tx, y0)
        _, py = at(x0, ty)
        draw.line([px, h - bottom, px, h - bottom + 5], fill=(120, 120, 120))
        draw.text((px - 12, h - bottom + 8), f"{tx:.2f}", fill=(60, 60, 60))
        draw.line([left - 5, py, left, py], fill=(120, 120, 120))
        draw.text((8, py - 6), f"{ty:.1f}", fill=(60, 60, 60))
    draw.text((w // 2 - 60, h - 25), "speed-up vs uncached (x)", fill=(0, 0, 0))
    draw.text((8, 10), f"{title}   (y: PSNR dB vs uncached, same seed)", fill=(0, 0, 0))
    front = pareto_front(list(zip(xs, ys)))
    if len(front) > 1:
        draw.line([at(xs[i], ys[i]) for i in front], fill=(200, 60, 60), width=2)
    for i, r in enumerate(rows):
        px, py = at(xs[i], ys[i])
        colour = COLOURS.get(r["family"], (120, 120, 120))
        draw.ellipse([px - 4, py - 4, px + 4, py + 4], fill=colour)
        if i in front:  # right of the point, or left of it where the label would leave the image
            width = draw.textlength(r["name"])
            lx = px + 6 if px + 6 + width <= w - 4 else px - 6 - width
            draw.text((lx, py - 12), r["name"], fill=colour)
    for k, (family, colour) in enumerate(COLOURS.items()):  # legend
        draw.ellipse([w - 150, top + 10 + 16 * k, w - 142, top + 18 + 16 * k], fill=colour)
        draw.text((w - 136, top + 8 + 16 * k), family, fill=(0, 0, 0))
    image.save(path)
