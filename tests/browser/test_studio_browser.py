"""The studio in headless Chromium (Playwright, Debian's /usr/bin/chromium) against a real uvicorn server.

Scenarios: a copywriter compares the campaign's variants with an edited one;
a reviewer filters the queue by rule, lands on the failing model text, edits
and re-checks it, is stopped without a reason, approves, walks on to the next
message and goes Back without re-posting; a price typed into the words needs
an override that only the override role can give (the approve button waits
for every rule to be ticked); keyboard shortcuts walk the filter; a revoked
or signed-out session stops at the sign-in page; a message whose text
contains <script> renders inert.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path

import pytest

from contentgen.store import SqliteStore
from tests.browser.studio_data import PASSWORD, XSS, crafted_row, pipeline_run, serve, users_file

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} missing: apt-get install -y chromium")
playwright = pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install -e .[dev])")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A real run (pipeline on 60 sample members, fake OpenAI, two campaign variants) plus a <script> message."""
    from tests.fake_openai import FakeOpenAI

    d = tmp_path_factory.mktemp("studio-browser")
    fake = FakeOpenAI().start()
    try:
        run_dir, campaign = pipeline_run(d, fake, 60, variants=True)
        store = SqliteStore(run_dir / "run.db")
        body = f"Hi there,\n\nBig news {XSS} inside.\n\n— The AthenaPlus team"
        row = crafted_row(999, "review", segment="Browsers", tier=2, body=body)
        row["record"]["message"]["subject"] = f"Hello {XSS}"
        store.save_members([dict(row, seq=999_999)])
        store.close()
        users_file(d / "users.yaml")
        from contentgen.web.app import create_app
        from contentgen.web.auth import Accounts

        app = create_app(run_dir, accounts=Accounts.load(d / "users.yaml"), campaign_path=campaign,
                         base_url=fake.base_url, api_key="test")
        with serve(app) as base:
            yield {"base": base, "run": run_dir, "app": app, "fake": fake}
    finally:
        fake.stop()


@pytest.fixture(scope="module")
def browser(world):
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = ctx.new_page()
    dialogs: list[str] = []
    pg.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    pg.dialogs = dialogs
    yield pg
    ctx.close()


def sign_in(page, base: str, user: str, start: str = "/queue") -> None:
    page.goto(base + start)
    assert "/login" in page.url
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(".*" + re.escape(start.split("?")[0])))


def db_of(world):
    return SqliteStore(world["run"] / "run.db").db


def test_copywriter_compares_the_campaigns_variants_with_an_edited_one(world, page):
    base = world["base"]
    sign_in(page, base, "cole")
    page.click("text=Preview")
    assert page.locator("input[value='campaign:warm']").count() == 1
    page.click("text=New variant from the campaign's templates")
    page.fill("input[name=name]", "warmer")
    box = page.locator("textarea[name='file:message.j2']")
    box.fill(box.input_value().replace("Write this week's message.", "Write this week's message, warmly."))
    page.click("#save-variant")
    page.wait_for_url(re.compile(r".*/preview\?variant="))
    assert page.locator("input[name=variant]:checked").count() == 2
    page.select_option("select[name=tier]", "2")
    page.click("text=Find members")
    page.wait_for_url(re.compile(r".*tier=2.*"))
    page.check("input[value='campaign:warm']")
    boxes = page.locator("input[name=member]")
    boxes.nth(2).wait_for(state="attached")
    for i in range(3):
        boxes.nth(i).check()
    page.fill("input[name=label]", "warm vs campaign")
    page.click("#generate")
    page.wait_for_url(re.compile(r".*/preview/c/\d+"))
    assert page.locator(".cmp-row[data-member]").count() == 3
    assert page.locator(".cmp-row[data-member] .cmp-cell").count() == 9
    heads = page.locator(".vhead h2").all_inner_texts()
    assert any("warmer" in h for h in heads) and any("warm (campaign variant)" in h for h in heads)
    frame = page.locator("iframe.email").first
    assert frame.get_attribute("sandbox") == ""
    page.goto(base + "/preview/history")
    page.click("a:has-text('warm vs campaign')")
    page.wait_for_url(re.compile(r".*/preview/c/\d+"))
    assert page.locator(".cmp-row[data-member] .cmp-cell").count() == 9


def test_reviewer_lands_on_the_failing_text_edits_approves_and_walks_on(world, page):
    base, run = world["base"], world["run"]
    db = db_of(world)
    rule = db.execute("SELECT f.rule_id FROM findings f JOIN members m USING (member_key) WHERE m.outcome='fallback' "
                      "AND f.severity='error' GROUP BY 1 ORDER BY COUNT(*) DESC").fetchone()[0]
    sign_in(page, base, "rita")
    page.uncheck("input[name=outcome][value=review]")
    page.uncheck("input[name=outcome][value=rejected]")
    page.uncheck("input[name=outcome][value=repaired]")
    page.select_option("select[name=rule]", rule)
    page.select_option("select[name=status]", "open")
    page.click("text=Filter")
    page.wait_for_url(re.compile(r".*[?&]rule="))
    rows = page.locator("table.queue tbody tr")
    rows.first.wait_for(state="attached")
    assert rows.count() >= 2
    assert all("fallback" in rows.nth(i).inner_text() for i in range(rows.count()))
    ids = page.locator("table.queue a.mid").all_inner_texts()
    page.locator("table.queue a.mid").first.click()
    page.wait_for_url(re.compile(r".*/review/"))
    # the editor holds the failing model words, the verdict and findings are beside it
    assert page.locator(".sources .src.on").inner_text().startswith("attempt")
    assert page.locator("#recheck-result .verdict").inner_text().lower() == "fail"
    assert page.locator(".findingscard code.rule", has_text=rule).count() >= 1
    assert page.locator("#overrides").count() == 1 and page.locator("#no-override").count() == 1
    assert page.locator("#approve").is_disabled()  # rita may not override
    page.fill("input[name=subject]", "A few picks for the weeks ahead")
    page.fill("textarea[name=body]", "We picked a few useful things for the season ahead. Have a look when you "
                                     "have a minute.")
    page.click("#recheck")
    page.wait_for_url(re.compile(r".*from=edit:\d+"))
    assert page.locator("#recheck-result .verdict").inner_text().lower() == "pass"
    assert page.locator("#overrides").count() == 0 and page.locator("#approve").is_enabled()
    # no reason: the browser refuses to send the form, nothing is recorded
    before = page.url
    page.click("#approve")
    assert page.url == before and page.evaluate("document.querySelector('textarea[name=reason]').matches(':invalid')")
    # a dot is not a reason: the server says so and keeps the words
    page.fill("textarea[name=reason]", ".")
    page.click("#approve")
    assert "in words (three or more)" in page.locator("#error").inner_text()
    assert page.locator("input[name=subject]").input_value() == "A few picks for the weeks ahead"
    page.fill("textarea[name=reason]", "Rewritten without observation language; facts come from the catalog.")
    with page.expect_navigation():
        page.click("#approve")
    # on to the next message in the same filter, with the decision confirmed
    assert f"Approved {ids[0]}" in page.locator("#flash").inner_text()
    assert page.locator("h1").inner_text().startswith(ids[1])
    # Back is a plain GET of the page before: no form re-post, no browser prompt
    page.go_back()
    assert "/review/" in page.url and "/decide" not in page.url and page.dialogs == []
    assert page.locator("h1").inner_text().startswith(ids[0])
    page.click("text=Audit log")
    page.click("#reexport")
    assert "Re-exported" in page.locator("#exported").inner_text()
    with page.expect_download() as dl:
        page.click("text=Download CSV")
    rows = list(csv.DictReader(io.StringIO(Path(dl.value.path()).read_text())))
    assert any(r["member_id"] == ids[0] and r["action"] == "approve" and r["verdict"] == "pass" for r in rows)
    assert any(r["member_id"] == ids[0] and r["action"] == "edit" for r in rows)
    rec = next(json.loads(x) for x in (run / "messages.jsonl").open() if json.loads(x).get("member_id") == ids[0])
    assert rec["outcome"] == "approved" and rec["send"] is True
    assert rec["message"]["subject"] == "A few picks for the weeks ahead"


def test_a_price_in_the_words_needs_each_rule_overridden(world, page):
    base, run = world["base"], world["run"]
    key = db_of(world).execute("SELECT member_key FROM members WHERE outcome IN ('approved','repaired') "
                               "AND json_extract(record, '$.message.body') LIKE '%$%' ORDER BY seq DESC").fetchone()[0]
    sign_in(page, base, "olga")
    page.goto(f"{base}/review/{key}?outcome=all")
    body = page.locator("textarea[name=body]")
    assert "$" not in body.input_value()  # price lines are the engine's, outside the words
    assert "$" in page.locator("pre.frame").last.inner_text()
    body.fill(body.input_value() + " Everything here is now just $4.99.")
    page.click("#recheck")
    page.wait_for_url(re.compile(r".*from=edit:\d+"))
    assert page.locator("#recheck-result .verdict").inner_text().lower() == "fail"
    boxes = page.locator("#overrides input[type=checkbox]")
    assert boxes.count() >= 1 and page.locator("#approve").is_disabled()
    page.fill("textarea[name=reason]", "The member was promised this price by the store.")
    rules = []
    for i in range(boxes.count()):
        boxes.nth(i).check()
        assert page.locator("#approve").is_disabled() or i == boxes.count() - 1
        page.locator("#overrides input[name^='override_reason:']").nth(i).fill("price confirmed in writing today")
        rules.append(boxes.nth(i).get_attribute("name").split(":", 1)[1])
    assert page.locator("#approve").is_enabled()
    with page.expect_navigation():
        page.click("#approve")
    assert "over " in page.locator("#flash").inner_text()
    dec = SqliteStore(run / "run.db").latest_decisions()[key]
    assert sorted(o["rule_id"] for o in dec["overrides"]) == sorted(rules) and "$4.99" in dec["message"]["body"]
    page.goto(f"{base}/review/{key}")
    assert "override" in page.locator("h1").inner_text()


def test_keyboard_walks_the_filter(world, page):
    base = world["base"]
    sign_in(page, base, "rita")
    page.goto(base + "/queue?outcome=fallback")
    ids = page.locator("table.queue a.mid").all_inner_texts()
    assert len(ids) >= 3
    page.keyboard.press("j")
    page.keyboard.press("j")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.locator("h1").inner_text().startswith(ids[1])
    with page.expect_navigation():
        page.keyboard.press("j")
    assert page.locator("h1").inner_text().startswith(ids[2])
    with page.expect_navigation():
        page.keyboard.press("k")
    assert page.locator("h1").inner_text().startswith(ids[1])
    page.keyboard.press("e")
    assert page.evaluate("document.activeElement.name") in ("body", "subject")
    page.locator("body").click(position={"x": 5, "y": 300})
    page.keyboard.press("r")
    assert page.evaluate("document.activeElement.name") == "reason"  # asks why first
    page.keyboard.type("Not for this member this week.")
    with page.expect_navigation():
        page.keyboard.press("Control+Enter")
    assert f"Rejected {ids[1]}" in page.locator("#flash").inner_text()


def test_a_revoked_or_signed_out_session_stops_at_sign_in(world, page):
    base, app = world["base"], world["app"]
    sign_in(page, base, "ada")
    page.goto(base + "/dashboard")
    app.state.studio.sdb.sessions_revoke("revoked by an admin", "ada")
    page.goto(base + "/queue")
    assert "/login" in page.url
    assert "revoked by an admin" in page.locator("#ended").inner_text()
    sign_in(page, base, "ada")
    page.click("button:has-text('Sign out')")
    page.wait_for_url(re.compile(r".*/login"))
    page.go_back()  # no cached page after sign-out
    page.reload()
    assert "/login" in page.url
    cookies = page.context.cookies()
    assert all(c["sameSite"] == "Strict" and c["httpOnly"] for c in cookies)


def test_script_in_a_message_renders_inert(world, page):
    base = world["base"]
    sign_in(page, base, "ada")
    page.goto(base + "/queue?segment=Browsers&outcome=review")
    assert XSS in page.locator("table.queue").inner_text()
    page.click("table.queue a.mid >> nth=0")
    page.wait_for_url(re.compile(r".*/review/"))
    assert f"Hello {XSS}" in page.locator(".envelope .subject").first.inner_text()
    page.locator(".tab[data-tab=text]").first.click()
    assert XSS in page.locator("pre.text").first.inner_text()
    inner = page.frame_locator("iframe.email").first.locator("body").inner_text()
    assert XSS in inner
    assert page.locator("script:not([src])").count() == 0
    page.wait_for_timeout(200)
    assert page.dialogs == []
    assert page.evaluate("document.querySelectorAll('iframe.email')[0].contentDocument") is None
