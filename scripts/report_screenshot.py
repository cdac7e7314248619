#!/usr/bin/env python3
"""Full-page screenshot of a campaign report (report.html) in headless Chromium.

    .venv/bin/python scripts/report_screenshot.py RUN_DIR/report/report.html [--out docs/screenshots/report.png]

Uses Playwright for Python driving Debian's /usr/bin/chromium (no `playwright
install`): 1280x800 viewport, full-page PNG. Prints the number of SVG charts it
found, and exits 1 if there are none.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def screenshot(html: Path, out: Path, *, width: int = 1280, height: int = 800) -> dict:
    """Render html, save a full-page screenshot to out; returns what the page holds (charts, bars, overflow)."""
    from playwright.sync_api import sync_playwright

    out.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(html.resolve().as_uri(), wait_until="load")
            info = page.evaluate("""() => ({
                charts: document.querySelectorAll('svg.chart').length,
                bars: document.querySelectorAll('svg.chart rect.bar').length,
                whiskers: document.querySelectorAll('svg.chart g.whisker').length,
                stacked: document.querySelectorAll('svg.chart rect.seg').length,
                chart_titles: Array.from(document.querySelectorAll('svg.chart > title')).map(t => t.textContent),
                scroll_width: document.documentElement.scrollWidth,
                height: document.documentElement.scrollHeight,
                title: document.title,
            })""")
            page.screenshot(path=str(out), full_page=True)
        finally:
            browser.close()
    return info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("html", type=Path)
    ap.add_argument("--out", type=Path, default=Path("docs/screenshots/report.png"))
    a = ap.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} is missing: apt-get install -y chromium", file=sys.stderr)
        return 2
    info = screenshot(a.html, a.out)
    print(f"{a.out}: {info['charts']} charts, {info['bars']} bars, {info['whiskers']} CI whiskers, "
          f"page {info['scroll_width']}x{info['height']}")
    return 0 if info["charts"] else 1


if __name__ == "__main__":
    sys.exit(main())
