"""The Gradio app served over HTTP: the `/t2i` and `/t2v` API through `gradio_client`, a real
headless Chromium driven by Playwright, and a load test — 8 concurrent clients × 2 requests,
every answer present and matching its own prompt by the Shapes World oracle.

The load test runs on the shipped model once it is trained; until then on a stand-in that
renders each prompt's scene (tests/world_stand_in.py), so "none mixed up" is checked exactly.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

import world
from apps.app import build_app, launch
from apps.handlers import Handlers
from apps.models import ModelRegistry, add_folders
from apps.outputs import OutputFolder
from pipelines.t2i.default_model import SHIPPED_T2I
from tests.world_stand_in import WorldRenderPipeline, WorldShapePipeline

REPO = Path(__file__).resolve().parents[1]
CLIENTS, REQUESTS = 8, 2
SHIPPED_TRAINED = (SHIPPED_T2I / "model_index.json").is_file()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app(tiny_model_dir, tmp_path_factory):
    """The app on a free local port: tiny-t2i (the default), tiny-t2v, the world stand-in and, when
    trained, the shipped model. Yields (url, stand-in)."""
    from pipelines.t2i import load_t2i_pipeline

    registry = ModelRegistry()
    add_folders(registry, tiny_model_dir)
    stand_in = WorldRenderPipeline(step_seconds=0.02)
    registry.add("world-render", "t2i", lambda: stand_in, "test stand-in: renders the prompt's scene")
    registry.add("world-shape", "t23d", WorldShapePipeline, "test stand-in: draws the prompt's world sample")
    if SHIPPED_TRAINED:
        registry.add("shapes-t2i", "t2i", load_t2i_pipeline, "shipped Shapes World model")
    demo = build_app(handlers=Handlers(registry, OutputFolder(tmp_path_factory.mktemp("served"))), concurrency=2)
    _, url, _ = launch(demo, port=free_port(), prevent_thread_lock=True, quiet=True)
    yield url, stand_in
    demo.close()


def client(url):
    from gradio_client import Client

    return Client(url, verbose=False)


def rgb(path) -> np.ndarray:
    return np.array(Image.open(path).convert("RGB"))


# ---------------------------------------------------------------- API

def test_api_with_only_a_prompt(app):
    from gradio_client.exceptions import AppError

    url, _ = app
    c = client(url)
    image, report = c.predict("a red circle", api_name="/t2i")
    assert rgb(image).shape == (8, 8, 3) and "Generated in" in report
    video, gif, report = c.predict("a red circle moving left", steps=3, api_name="/t2v")
    assert video.endswith(".mp4") and gif.endswith(".gif") and "4 frames" in report
    with pytest.raises(AppError, match="the prompt is empty"):
        c.predict("", api_name="/t2i")
    with pytest.raises(AppError, match="steps must be between 1 and 1000, got 5000"):
        c.predict("a red circle", steps=5000, api_name="/t2i")


def test_t23d_api_returns_the_mesh_the_points_and_the_obj(app):
    from gradio_client.exceptions import AppError

    from pipelines.t23d.files import read_point_cloud
    from world.reader3d import read_shape3d

    url, _ = app
    c = client(url)
    glb, ply, obj, report = c.predict("a wide blue pyramid", points=512, api_name="/t23d")
    assert glb.endswith(".glb") and obj.endswith(".obj") and "512 points" in report
    points, colours = read_point_cloud(ply)
    reading = read_shape3d(points, colours)
    assert (reading.shape, reading.proportion, reading.colour) == ("pyramid", "wide", "blue")
    with pytest.raises(AppError, match="points must be between 256 and 16384"):
        c.predict("a cone", points=5, api_name="/t23d")


def test_python_m_apps_serves_shipped_and_model_dir_models(tiny_model_dir, tmp_path):
    """The README's command in a fresh process: the shipped models and --model-dir's in the picker."""
    from gradio_client import Client

    from apps.__main__ import main

    assert main(["--model-dir", str(tiny_model_dir / "missing")]) == 2
    port = free_port()
    log = tmp_path / "app.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "apps", "--port", str(port), "--model-dir", str(tiny_model_dir)],
                                cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    try:
        url, deadline = f"http://127.0.0.1:{port}/", time.monotonic() + 180
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                urllib.request.urlopen(url, timeout=5)
                break
            except OSError:
                assert time.monotonic() < deadline, "the app did not start within 180 s"
                time.sleep(0.5)
        c = Client(url, verbose=False)
        models = c.view_api(print_info=False, return_format="dict")["named_endpoints"]["/t2i"]["parameters"][7]
        assert models["parameter_default"] == "shapes-t2i"
        image, _ = c.predict("a red circle", steps=2, model="tiny-t2i", api_name="/t2i")
        assert rgb(image).shape == (8, 8, 3)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# ---------------------------------------------------------------- load

def load_prompts() -> list[str]:
    """16 prompts, each a different (colour, background) pair: a response given to the wrong
    request shows the wrong colour or background, even from a model that gets shapes wrong."""
    pairs = [(c, b) for b in world.BACKGROUNDS for c in world.COLOURS][:CLIENTS * REQUESTS]
    return [f"a large {c} {world.SHAPES[i % len(world.SHAPES)]} in the center on a {b} background"
            for i, (c, b) in enumerate(pairs)]


def test_load_every_request_answered_by_its_own_prompt(app):
    url, stand_in = app
    model = "shapes-t2i" if SHIPPED_TRAINED else "world-render"
    checked = ("colour", "background") if SHIPPED_TRAINED else ("colour", "shape", "size", "position", "background")
    prompts = load_prompts()
    calls_before = stand_in.calls

    def user(k: int) -> list[tuple[str, str]]:
        c = client(url)
        mine = prompts[k * REQUESTS:(k + 1) * REQUESTS]
        return [(p, c.predict(p, seed=k, steps=10, model=model, api_name="/t2i")[0]) for p in mine]

    start = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        answers = [pair for user_answers in pool.map(user, range(CLIENTS)) for pair in user_answers]
    seconds = time.perf_counter() - start
    assert [p for p, _ in answers] == prompts, "every request answered"
    assert len({path for _, path in answers}) == len(prompts), "every answer its own file"
    wrong = []
    for prompt, path in answers:
        wanted, seen = world.parse_caption(prompt), world.read_image(rgb(path))
        if any(wanted[a] != seen[a] for a in checked):
            wrong.append((prompt, {a: seen[a] for a in checked}))
    assert not wrong, f"answers not matching their own prompt ({model}): {wrong}"
    if not SHIPPED_TRAINED:
        assert stand_in.calls - calls_before == len(prompts) and stand_in.max_inside == 1
    print(f"load: {len(prompts)} requests from {CLIENTS} clients on {model} in {seconds:.1f} s")


# ---------------------------------------------------------------- a real browser

def test_browser_generates_an_image(app, tmp_path):
    """Headless Chromium (Debian's `chromium`; .ci/run installs it) types a prompt, clicks Generate,
    waits for the image and saves a screenshot; then the same on the Text to 3D tab (its mesh viewer
    and downloads)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("DITKIT_REQUIRE_BROWSER"):
            pytest.fail("DITKIT_REQUIRE_BROWSER is set but no chromium is installed")
        pytest.skip("no system chromium (apt-get install chromium); .ci/run installs it")
    from playwright.sync_api import expect, sync_playwright

    url, _ = app
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(url)
            prompt = page.locator("#t2i-prompt textarea")
            prompt.fill("a large red circle in the center on a white background")
            page.locator("#t2i-generate").click()
            image = page.locator("#t2i-image img")
            expect(image).to_be_visible(timeout=60_000)
            expect(page.locator("#t2i-info")).to_contain_text("Generated in", timeout=30_000)
            expect(page.locator("#history img")).to_have_count(1, timeout=30_000)
            expect(page.locator("#t2i-download")).to_be_enabled()
            page.screenshot(path=tmp_path / "app.png", full_page=True)
            prompt.press("Enter")  # Enter generates too
            expect(page.locator("#history img")).to_have_count(2, timeout=60_000)
            # text to 3D: the mesh shows in the 3D viewer (a canvas) and the downloads turn on
            page.get_by_role("tab", name="Text to 3D").click()
            page.locator("#t23d-prompt textarea").fill("a tall red cone")
            page.locator("#t23d-generate").click()
            expect(page.locator("#t23d-info")).to_contain_text("Generated in", timeout=60_000)
            expect(page.locator("#t23d-model canvas")).to_be_visible(timeout=30_000)
            for suffix in ("ply", "glb", "obj"):
                expect(page.locator(f"#t23d-download-{suffix}")).to_be_enabled(timeout=30_000)
            red, deadline = 0.0, time.monotonic() + 30  # the viewer draws the mesh in its colour (WebGL)
            while red < 0.01 and time.monotonic() < deadline:
                time.sleep(0.5)
                page.locator("#t23d-model").screenshot(path=tmp_path / "model3d.png")
                view = rgb(tmp_path / "model3d.png").astype(int)
                red = float(np.mean((view[..., 0] > 150) & (view[..., 1] < 80) & (view[..., 2] < 80)))
            assert red >= 0.01, "the red cone's mesh never showed in the 3D viewer"
            page.screenshot(path=tmp_path / "app-3d.png", full_page=True)
        finally:
            browser.close()
    assert Image.open(tmp_path / "app.png").size[0] == 1280
