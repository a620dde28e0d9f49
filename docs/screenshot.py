"""Retakes the README's screenshot of the app (docs/app.png) with a headless system Chromium.

    python -m apps --port 7860 &
    python docs/screenshot.py --url http://127.0.0.1:7860 --out docs/app.png

The browser test's flow (tests/test_app_served.py: type a prompt, click Generate, wait for the
image), run three times: warm-up, the baseline, then with a caching method, so the report shows a
measured speed-up. Rerun it when the shipped model or the layout changes.
"""

from __future__ import annotations

import argparse
import shutil


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", default="http://127.0.0.1:7860")
    p.add_argument("--out", default="docs/app.png")
    p.add_argument("--prompt", default="a large red circle in the top left on a white background")
    p.add_argument("--method", default="fbcache", help="caching method of the last run")
    p.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"))
    args = p.parse_args()

    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, args=["--no-sandbox", "--disable-dev-shm-usage"])
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(args.url)
        page.locator("#t2i-prompt textarea").fill(args.prompt)
        for run in range(3):
            if run == 2:
                page.get_by_text("Acceleration", exact=True).first.click()
                page.locator("#t2i-method input").click()
                page.get_by_role("option", name=args.method, exact=True).click()
            page.locator("#t2i-generate").click()
            expect(page.locator("#history img")).to_have_count(run + 1, timeout=300_000)
        expect(page.locator("#t2i-info")).to_contain_text("the speed of the last run", timeout=30_000)
        page.screenshot(path=args.out, full_page=True)
        browser.close()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
