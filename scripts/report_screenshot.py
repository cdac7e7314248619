#!/usr/bin/env python3
"""Full-page screenshot of a campaign report (report.html) in headless Chromium.

    .venv/bin/python scripts/report_screenshot.py RUN_DIR/report/report.html [--out docs/screenshots/report.png]
    .venv/bin/python scripts/report_screenshot.py --demo 6000 [--work DIR]

``--demo N`` builds the report it shoots: ``write_sample_data`` for N members,
a run against the test suite's fake OpenAI server (copywriter responder), and
the sample outcomes re-paired to the run's assignment. (The sample generator
draws its own 95/5 treated flag, independent of the run's hash holdout; so
that the demo shows an effect, each run-holdout member takes the outcomes of a
sample row with ``treated`` 0 and each sent member those of a row with
``treated`` 1, drawn within the same segment with a fixed seed. Demo only: a
real report uses the real outcomes file as is.)

Uses Playwright for Python driving Debian's /usr/bin/chromium (no `playwright
install`): 1280x800 viewport, full-page PNG. Prints the number of SVG charts it
found, and exits 1 if there are none.
"""

from __future__ import annotations

import argparse
import os
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


def demo_report(n: int, work: Path) -> Path:
    """Sample data -> fake-server run -> re-paired outcomes -> report; returns report.html."""
    import json

    import numpy as np
    import pandas as pd

    root = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(root))
    from contentgen.pipeline import RunOptions, run_campaign
    from contentgen.report import build_report, write_report
    from contentgen.sample_data import write_sample_data
    from tests import responders
    from tests.fake_openai import FakeOpenAI

    paths = write_sample_data(work / "data", n)
    os.environ.setdefault("CONTENTGEN_LINK_SECRET", "screenshot-link-secret-not-for-real-sends")
    with FakeOpenAI() as fake:
        fake.responder = responders.copywriter
        res = run_campaign(paths["campaign"], RunOptions(out=work / "run", base_url=fake.base_url, api_key="k",
                                                         restart=True))
    if res.status != "complete":
        raise SystemExit(f"demo run did not complete: {res.status} {res.message}")
    recs = [json.loads(x) for x in (work / "run" / "messages.jsonl").read_text(encoding="utf-8").splitlines()]
    # holdout members may be sent the basic message (send true): the arm is the outcome, as in the report
    assign = pd.DataFrame([(r["member_id"], r["segment"], int(r["outcome"] != "holdout")) for r in recs
                           if r["outcome"] == "holdout" or (r["send"] and r["outcome"] in
                                                            ("approved", "repaired", "fallback"))],
                          columns=["member_id", "segment", "treated"])
    sample = pd.read_csv(paths["outcomes"], dtype={"member_id": str})
    members = pd.read_csv(paths["members"], dtype=str, usecols=["member_id", "segment"]).drop_duplicates("member_id")
    sample = sample.merge(members, on="member_id", how="left")
    rng = np.random.default_rng(0)
    rows = []
    for (segment, treated), grp in assign.groupby(["segment", "treated"]):
        pool = sample[(sample["segment"] == segment) & (sample["treated"] == treated)]
        if pool.empty:
            pool = sample[sample["treated"] == treated]
        pick = pool.iloc[rng.choice(len(pool), size=len(grp), replace=len(pool) < len(grp))].copy()
        pick["member_id"] = grp["member_id"].to_numpy()
        rows.append(pick.drop(columns=["segment"]))
    out = pd.concat(rows).sort_values("member_id")
    out.to_csv(work / "outcomes-paired.csv", index=False)
    rep = build_report(work / "run", work / "outcomes-paired.csv",
                       title=f"Campaign report: {res.manifest.get('campaign_id')} (demo: sample data, fake model)")
    return write_report(rep, work / "run" / "report")["html"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("html", type=Path, nargs="?")
    ap.add_argument("--demo", type=int, metavar="N", help="build a demo report for N sample members first")
    ap.add_argument("--work", type=Path, default=Path("/tmp/contentgen-report-demo"))
    ap.add_argument("--out", type=Path, default=Path("docs/screenshots/report.png"))
    a = ap.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} is missing: apt-get install -y chromium", file=sys.stderr)
        return 2
    if a.demo:
        a.html = demo_report(a.demo, a.work)
    elif a.html is None:
        ap.error("give a report.html or --demo N")
    info = screenshot(a.html, a.out)
    print(f"{a.out}: {info['charts']} charts, {info['bars']} bars, {info['whiskers']} CI whiskers, "
          f"page {info['scroll_width']}x{info['height']}")
    return 0 if info["charts"] else 1


if __name__ == "__main__":
    sys.exit(main())
