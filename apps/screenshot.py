"""Retakes the README's screenshot of the app (docs/app.png): the real app with the shipped models,
served on 127.0.0.1, driven by a headless system Chromium through Playwright.

    python -m apps.screenshot --out docs/app.png [--port N]

The browser test's flow (tests/test_app_served.py): on the Text to image tab, type a prompt and
generate once without acceleration, then again with a caching method, so the report shows the
measured speed-up and the session gallery holds both images. The model's first run carries
warm-up and never becomes a baseline (apps.speedup), so it is done in-process before the page
opens. Rerun it when the shipped model or the layout changes.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path

from pipelines.core.allocator import keep_freed_memory
from pipelines.core.cli import ArgumentParser, quiet_libraries, run_cli
from pipelines.core.errors import UserError

from .app import build_app, launch
from .handlers import Handlers
from .models import default_registry

PROMPT = "a large red circle in the center on a white background"
TIMEOUT_MS = 600_000  # a generation on a busy CPU


def parse_args(argv=None):
    p = ArgumentParser(prog="python -m apps.screenshot", description="Retake the README's screenshot of the app.")
    p.add_argument("--out", default="docs/app.png", help="PNG to write (default docs/app.png)")
    p.add_argument("--port", type=int, default=None, help="port to serve the app on (default: a free one)")
    p.add_argument("--prompt", default=PROMPT, help="the prompt typed into the Text to image tab")
    p.add_argument("--method", default="fbcache", help="caching method of the second run (default fbcache)")
    return p.parse_args(argv)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_chromium() -> str:
    """The system Chromium and Playwright, or a UserError saying how to get them."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        raise UserError("playwright is not installed: pip install playwright") from None
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise UserError("no system chromium found (apt-get install chromium)")
    return chromium


def shoot(url: str, chromium: str, out: Path, prompt: str, method: str) -> None:
    """Baseline run, cached run, full-page screenshot written atomically to `out`."""
    from playwright.sync_api import Error, expect, sync_playwright

    fd, tmp = tempfile.mkstemp(prefix=f".{out.stem}-", suffix=".png", dir=out.parent)
    os.close(fd)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage"])
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 1000})
                page.goto(url)
                page.locator("#t2i-prompt textarea").fill(prompt)
                page.locator("#t2i-generate").click()
                expect(page.locator("#history img")).to_have_count(1, timeout=TIMEOUT_MS)
                expect(page.locator("#t2i-info")).to_contain_text("Now try an acceleration method", timeout=30_000)
                page.get_by_text("Acceleration", exact=True).first.click()  # the t2i tab's accordion
                page.locator("#t2i-method input").click()
                page.get_by_role("option", name=method, exact=True).click()
                page.locator("#t2i-generate").click()
                expect(page.locator("#history img")).to_have_count(2, timeout=TIMEOUT_MS)
                expect(page.locator("#t2i-info")).to_contain_text("the speed of the last run", timeout=30_000)
                page.screenshot(path=tmp, full_page=True)
            finally:
                browser.close()
        os.replace(tmp, out)
    except (Error, AssertionError) as err:  # playwright's errors, and expect()'s timeouts
        raise UserError(f"browser: {(str(err).strip().splitlines() or [''])[0]}") from None
    finally:
        Path(tmp).unlink(missing_ok=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

    def body() -> int:
        out = Path(args.out)
        if not out.parent.is_dir():
            raise UserError(f"{out.parent} is not a folder")
        chromium = find_chromium()
        quiet_libraries()
        keep_freed_memory()
        handlers = Handlers(default_registry())
        if handlers.registry.get("shapes-t2i", "t2i").untrained:
            raise UserError("the shipped text-to-image model is not trained: nothing worth a screenshot")
        print("warming up shapes-t2i …", flush=True)
        handlers.t2i(args.prompt, progress=lambda *a, **k: None)  # the warm-up run, kept out of the page
        demo = build_app(handlers=handlers)
        try:
            try:
                _, url, _ = launch(demo, port=args.port or free_port(), prevent_thread_lock=True, quiet=True)
            except OSError as err:  # the port is taken …
                raise UserError(str(err).strip().splitlines()[0]) from None
            shoot(url, chromium, out, args.prompt, args.method)
        finally:
            demo.close()
        print(f"wrote {out}")
        return 0

    return run_cli(body)


if __name__ == "__main__":
    raise SystemExit(main())
