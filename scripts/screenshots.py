"""Screenshots of each studio screen at 1280x800 into docs/screenshots/.

    .venv/bin/python scripts/screenshots.py            # real pipeline run on sample data (fake OpenAI server)
    .venv/bin/python scripts/screenshots.py --crafted  # crafted store rows only (no gates or model needed)

Drives Debian's /usr/bin/chromium headless through Playwright against a studio
served on a free loopback port.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

os.environ.setdefault("CONTENTGEN_LINK_SECRET", "screenshot-link-secret-not-for-real-sends")  # run signs links
from tests.browser.studio_data import (PASSWORD, crafted_row, crafted_run, pipeline_run,  # noqa: E402
                                       serve, users_file)

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def build(work: Path, crafted: bool):
    from contentgen.store import SqliteStore

    if crafted:
        return crafted_run(work / "run", 240), None, None
    from tests.fake_openai import FakeOpenAI

    fake = FakeOpenAI().start()
    run_dir, campaign = pipeline_run(work, fake, members=120)
    store = SqliteStore(run_dir / "run.db")
    try:  # a few crafted edge cases next to the real rows (one message carries <script>)
        store.save_members([dict(crafted_row(900000 + i, o), seq=900000 + i)
                            for i, o in enumerate(("review", "rejected", "review"))])
    finally:
        store.close()
    return run_dir, campaign, fake


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--crafted", action="store_true")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    from contentgen.web.app import create_app
    from contentgen.web.auth import Accounts

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        run_dir, campaign, fake = build(work, args.crafted)
        app = create_app(run_dir, accounts=Accounts.load(users_file(work / "users.yaml")), campaign_path=campaign,
                         base_url=fake.base_url if fake else None, api_key="test")
        try:
            with serve(app) as base, sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.goto(base + "/login")
                page.screenshot(path=str(args.out / "login.png"))
                page.fill("input[name=username]", "ada")
                page.fill("input[name=password]", PASSWORD)
                page.click("button[type=submit]")
                page.goto(base + "/dashboard")
                page.screenshot(path=str(args.out / "dashboard.png"))
                page.goto(base + "/queue")
                page.screenshot(path=str(args.out / "queue.png"))
                href = page.locator("table.queue a.mid").first.get_attribute("href")
                for outcome in ("fallback", "rejected", "review"):
                    page.goto(base + f"/queue?outcome={outcome}")
                    links = page.locator("table.queue a.mid")
                    if links.count():
                        href = links.first.get_attribute("href")
                        break
                page.goto(base + href)
                page.screenshot(path=str(args.out / "detail.png"))
                page.goto(base + "/queue?outcome=review")
                page.click("table.queue a.mid >> nth=0")
                page.locator(".tab[data-tab=text]").first.click()
                page.screenshot(path=str(args.out / "detail-review.png"))
                page.goto(base + "/audit")
                page.screenshot(path=str(args.out / "audit.png"))
                if campaign is not None:
                    page.goto(base + "/preview/variants/new")
                    page.fill("input[name=name]", "warmer, shorter")
                    box = page.locator("textarea[name='file:message.j2']")
                    box.fill(box.input_value().replace("Write this week's message.",
                                                       "Write this week's message: warm, short, one product."))
                    page.click("#save-variant")
                    page.screenshot(path=str(args.out / "preview-pick.png"))
                    boxes = page.locator("input[name=member]")
                    for i in range(min(3, boxes.count())):
                        boxes.nth(i).check()
                    page.fill("input[name=label]", "warmer tone vs campaign prompts")
                    page.click("#generate")
                    page.wait_for_url(re.compile(r".*/preview/c/\d+"))
                    page.screenshot(path=str(args.out / "preview.png"))
                browser.close()
        finally:
            if fake:
                fake.stop()
    print(f"screenshots in {args.out}")


if __name__ == "__main__":
    main()
