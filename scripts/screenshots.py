"""Screenshots of each studio screen at 1280 px wide into docs/screenshots/.

    .venv/bin/python scripts/screenshots.py            # real pipeline run on sample data (fake OpenAI server)
    .venv/bin/python scripts/screenshots.py --crafted  # crafted store rows only (no gates or model needed)

Drives Debian's /usr/bin/chromium headless through Playwright against a studio
served on a free loopback port. The real run has every channel and the
campaign's two variants; a reviewer edits a price into a message and the
override screen is shot with the rules ticked.
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
    run_dir, campaign = pipeline_run(work, fake, members=160, channels=None, variants=True)
    store = SqliteStore(run_dir / "run.db")
    try:  # a few crafted edge cases next to the real rows (one message carries <script>)
        store.save_members([dict(crafted_row(900000 + i, o), seq=900000 + i)
                            for i, o in enumerate(("review", "rejected", "review"))])
    finally:
        store.close()
    return run_dir, campaign, fake


def first_href(page, selector: str) -> str | None:
    links = page.locator(selector)
    return links.first.get_attribute("href") if links.count() else None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--crafted", action="store_true")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    from contentgen.web.app import create_app
    from contentgen.web.auth import Accounts

    args.out.mkdir(parents=True, exist_ok=True)
    shot = (lambda page, name, full=False: page.screenshot(path=str(args.out / f"{name}.png"), full_page=full))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        run_dir, campaign, fake = build(work, args.crafted)
        app = create_app(run_dir, accounts=Accounts.load(users_file(work / "users.yaml")), campaign_path=campaign,
                         base_url=fake.base_url if fake else None, api_key="test")
        try:
            with serve(app) as base, sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(base + "/login")
                shot(page, "login")
                page.fill("input[name=username]", "ada")
                page.fill("input[name=password]", PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_url(re.compile(r".*/queue"))
                page.goto(base + "/dashboard")
                shot(page, "dashboard")
                page.goto(base + "/queue")
                shot(page, "queue")
                # a message that fell back: the editor opens on the failing model attempt
                href = first_href(page, "table.queue a.mid")
                page.goto(base + "/queue?outcome=fallback&status=open")
                href = first_href(page, "table.queue a.mid") or href
                page.goto(base + href)
                shot(page, "detail")
                if campaign is not None:
                    # a reviewer types a price into the words and re-checks: the override screen
                    page.goto(base + "/queue?outcome=repaired")
                    page.goto(base + first_href(page, "table.queue a.mid"))
                    body = page.locator("textarea[name=body]")
                    body.fill(body.input_value() + " Everything here is now just $4.99.")
                    page.click("#recheck")
                    page.wait_for_url(re.compile(r".*from=edit:"))
                    boxes = page.locator("#overrides input[type=checkbox]")
                    for i in range(boxes.count()):
                        boxes.nth(i).check()
                        page.locator("#overrides input[name^='override_reason:']").nth(i).fill(
                            "price confirmed by the store manager in writing")
                    page.fill("textarea[name=reason]", "Member was promised this price on the phone.")
                    page.evaluate("window.scrollTo(0, 0)")
                    shot(page, "detail-override")
                    page.goto(base + "/queue?outcome=fallback&outcome=repaired&outcome=review&outcome=rejected"
                                     "&outcome=approved&q=M0")
                    rows = page.locator("table.queue tbody tr", has_text="push")
                    if rows.count():
                        page.goto(base + rows.first.locator("a.mid").get_attribute("href"))
                        shot(page, "detail-push")
                page.goto(base + "/queue?outcome=review")
                page.click("table.queue a.mid >> nth=0")
                page.locator(".tab[data-tab=text]").first.click()
                shot(page, "detail-review")
                page.goto(base + "/audit")
                shot(page, "audit")
                if campaign is not None:
                    page.goto(base + "/preview/variants/new")
                    page.fill("input[name=name]", "warmer, shorter")
                    box = page.locator("textarea[name='file:message.j2']")
                    box.fill(box.input_value().replace("Write this week's message.",
                                                       "Write this week's message: warm, short, one product."))
                    page.click("#save-variant")
                    page.select_option("select[name=tier]", "2")
                    page.click("text=Find members")
                    page.wait_for_url(re.compile(r".*tier=2.*"))
                    page.check("input[value='campaign:warm']")
                    rows = page.locator("table.pick tbody tr", has_text="email")
                    for i in range(min(3, rows.count())):
                        rows.nth(i).locator("input[name=member]").check()
                    shot(page, "preview-pick")
                    page.fill("input[name=label]", "warmer tone vs the campaign's variants")
                    page.click("#generate")
                    page.wait_for_url(re.compile(r".*/preview/c/\d+"))
                    shot(page, "preview")
                browser.close()
        finally:
            if fake:
                fake.stop()
            app.state.studio.close()
    print(f"screenshots in {args.out}")


if __name__ == "__main__":
    main()
