"""Screenshots of one e-mail as headless Chromium renders it, into docs/screenshots/.

    .venv/bin/python scripts/email_screenshot.py

Runs the real pipeline on 40 sample members against the fake OpenAI server on
loopback, picks a tier-3 e-mail (the one with the most explanations), and
saves it at 800 px (email.png), at 380 px like a phone (email-mobile.png) and
with every <style> block removed, the way clients that strip them show it
(email-no-style.png). The HTML itself goes next to them (email.html).
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def pick_email(work: Path) -> dict:
    from contentgen.pipeline import RunOptions, run_campaign
    from contentgen.sample_data import write_sample_data
    from tests import responders
    from tests.fake_openai import FakeOpenAI

    paths = write_sample_data(work / "data", 40, seed=11, bad_rows=False)
    with FakeOpenAI() as fake:
        fake.responder = responders.copywriter
        run_campaign(paths["campaign"], RunOptions(out=work / "run", base_url=fake.base_url, api_key="k"))
    best = None
    for line in (work / "run" / "messages.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec.get("send") and rec.get("channel") == "email" and rec.get("message"):
            if best is None or len(rec["message"]["explanations"]) > len(best["message"]["explanations"]):
                best = rec
    if best is None:
        raise SystemExit("no e-mail was sent in the sample run")
    return best


def main() -> None:
    from playwright.sync_api import sync_playwright

    out = ROOT / "docs" / "screenshots"
    with tempfile.TemporaryDirectory() as tmp:
        rec = pick_email(Path(tmp))
    html_doc = rec["message"]["html"]
    (out / "email.html").write_text(html_doc, encoding="utf-8")
    stripped = re.sub(r"<style[^>]*>.*?</style>", "", html_doc, flags=re.S)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        try:
            for name, doc, width in (("email.png", html_doc, 800), ("email-mobile.png", html_doc, 380),
                                     ("email-no-style.png", stripped, 800)):
                page = browser.new_page(viewport={"width": width, "height": 900})
                page.set_content(doc)
                page.screenshot(path=str(out / name), full_page=True)
                page.close()
                print(out / name)
        finally:
            browser.close()
    print(f"member {rec['member_id']} (tier {rec['tier']}, {rec['segment']}): {rec['message']['subject']}")


if __name__ == "__main__":
    main()
