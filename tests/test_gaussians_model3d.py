"""The `.ply` that `gaussians.write_ply` writes opens in Gradio's `gr.Model3D` as Gaussian splats:
a real headless Chromium (Debian's `chromium`, driven by Playwright) loads a page with a red sphere
of 400 Gaussians and a screenshot of the viewer's canvas shows a red disc on the splat viewer's
black background.

Why the file is a 3DGS `.ply`: Gradio 6 reads a `.ply`'s header and sends it to gsplat.js only when
its vertices carry x y z, scale_0..2, opacity, rot_0..3 and three colour properties (f_dc_0..2 or
red green blue); anything else goes to Babylon.js as a mesh or point cloud. The same points written
as a plain point cloud (x, y, z only) show up as uncoloured dots on a white canvas: the check below
finds no red there, so it can fail. (The issue saw such a file render blank; Gradio 6.31 draws dots.)

WebGL in headless Chromium needs no flags here: Chromium falls back to SwiftShader (software GL).
"""

from __future__ import annotations

import io
import math
import os
import shutil
import socket
import time

import numpy as np
import pytest
import torch
from PIL import Image
from plyfile import PlyData, PlyElement

from gaussians import Gaussians, read_ply, write_ply

POINTS = 400
RED = (1.0, 0.0, 0.0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sphere_points(n: int, radius: float) -> torch.Tensor:
    """n points spread evenly over a sphere (a Fibonacci lattice) → [n, 3]."""
    i = torch.arange(n, dtype=torch.float32) + 0.5
    polar = torch.acos(1 - 2 * i / n)
    azimuth = math.pi * (1 + 5 ** 0.5) * i
    return radius * torch.stack([polar.sin() * azimuth.cos(), polar.sin() * azimuth.sin(), polar.cos()], -1)


def write_point_cloud(path, points: torch.Tensor) -> None:
    """A plain point-cloud `.ply`: x, y, z and nothing else."""
    vertex = np.empty(len(points), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4")])
    for k, name in enumerate("xyz"):
        vertex[name] = points[:, k].numpy()
    PlyData([PlyElement.describe(vertex, "vertex")], byte_order="<").write(str(path))


def red_share(pixels: np.ndarray) -> float:
    """Share of clearly red pixels (R > 180, G and B < 60) in an [H, W, 3] uint8 image."""
    r, g, b = (pixels[..., c].astype(int) for c in range(3))
    return float(((r > 180) & (g < 60) & (b < 60)).mean())


def dark_share(pixels: np.ndarray) -> float:
    """Share of near-black pixels (every channel < 40)."""
    return float((pixels.max(-1) < 40).mean())


def ink_share(pixels: np.ndarray) -> float:
    """Share of pixels visibly darker than a white page (every channel < 200)."""
    return float((pixels.max(-1) < 200).mean())


def canvas_pixels(canvas) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(canvas.screenshot())).convert("RGB"))


def wait_for_canvas(canvas, done, seconds: float) -> np.ndarray:
    """Screenshots of `canvas` until `done(pixels)` holds or `seconds` pass; the last one."""
    deadline = time.monotonic() + seconds
    while True:
        pixels = canvas_pixels(canvas)
        if done(pixels) or time.monotonic() > deadline:
            return pixels
        time.sleep(0.25)


def test_ply_opens_in_model3d_as_splats(tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("DITKIT_REQUIRE_BROWSER"):
            pytest.fail("DITKIT_REQUIRE_BROWSER is set but no chromium is installed")
        pytest.skip("no system chromium (apt-get install chromium); .ci/run installs it")
    import gradio as gr
    from playwright.sync_api import sync_playwright

    points = sphere_points(POINTS, radius=0.5)
    splats = Gaussians.from_points(points, torch.tensor([RED]).expand(POINTS, 3), scale=0.05, opacity=0.95)
    write_ply(tmp_path / "sphere.ply", splats)
    assert len(read_ply(tmp_path / "sphere.ply")) == POINTS
    write_point_cloud(tmp_path / "points.ply", points)

    with gr.Blocks() as demo:
        gr.Model3D(value=str(tmp_path / "sphere.ply"), label="splats", elem_id="splats")
        gr.Model3D(value=str(tmp_path / "points.ply"), label="point cloud", elem_id="points")
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                allowed_paths=[str(tmp_path)])
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage"])
            try:
                page = browser.new_page(viewport={"width": 1000, "height": 900})
                page.goto(f"http://127.0.0.1:{port}/")
                canvas = page.locator("#splats canvas").first
                canvas.wait_for(state="visible", timeout=30_000)
                seen = wait_for_canvas(canvas, lambda px: red_share(px) > 0.05, seconds=20)
                cloud = page.locator("#points canvas").first
                cloud.wait_for(state="visible", timeout=15_000)
                dots = wait_for_canvas(cloud, lambda px: ink_share(px) > 0.001, seconds=15)
                page.screenshot(path=tmp_path / "page.png", full_page=True)
            finally:
                browser.close()
    finally:
        demo.close()
    Image.fromarray(seen).save(tmp_path / "splats.png")
    Image.fromarray(dots).save(tmp_path / "points.png")

    # the splats: a red disc (the sphere fills about a fifth of the canvas) on a black background
    assert red_share(seen) > 0.05, f"no red splats in the Model3D canvas ({tmp_path / 'splats.png'})"
    assert dark_share(seen) > 0.3, f"the canvas is not the splat viewer's black background ({tmp_path})"
    # the same points as a plain point cloud: dots are drawn, but no splats and no colour
    assert ink_share(dots) > 0.001, f"the point cloud drew nothing ({tmp_path / 'points.png'})"
    assert red_share(dots) < 0.001 and ink_share(dots) < 0.1
