"""The studio (contentgen serve) as reviewers and copywriters use it, through Starlette's TestClient.

Decisions bound to the gates (words only, engine lines rebuilt, overrides of
failing rules by role, reasons in words), post/redirect/get, the reviewer's
walk through a filter, the queue (keyset pages, what each row sends), the
dashboard's figures reproduced by the queue links, the audit log and CSV,
push/SMS/in-app editing, and the copywriter's preview (campaign variants,
failing text next to its findings, bounded templates). Security is in
test_web_security.py.

The tests that touch the store run on both backends (``crafted`` and the
decision-to-export flow: SQLite and PostgreSQL); a sharded PostgreSQL run is
reviewed in one studio.
"""

from __future__ import annotations

import csv
import html as H
import io
import json
import re
import shutil
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from starlette.testclient import TestClient

from contentgen.export import message_hash
from contentgen.pipeline import reexport
from contentgen.store import open_run_store
from contentgen.web import audit as audit_mod
from contentgen.web.app import create_app
from contentgen.web.auth import Accounts
from contentgen.web.highlight import message_view
from tests.browser.studio_data import crafted_copy, crafted_run, pipeline_run, run_sql, sign_in, users_file

BASE = "http://localhost"


@pytest.fixture(scope="module")
def crafted_template(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("crafted")
    crafted_run(d / "run", 60)
    users_file(d / "users.yaml")
    return d


@pytest.fixture(params=["sqlite", "postgresql"])
def crafted(request, crafted_template, tmp_path) -> Path:
    """A private copy of the crafted run (tests record decisions in it), on each backend."""
    return crafted_copy(request, crafted_template, tmp_path / "c", 60)


@pytest.fixture
def crafted_sqlite(crafted_template, tmp_path) -> Path:
    """For tests of rendering only: the SQLite copy."""
    shutil.copytree(crafted_template, tmp_path / "c")
    return tmp_path / "c"


_opened: list = []


@pytest.fixture(autouse=True)
def _close_stores():
    yield
    while _opened:
        _opened.pop().close()


def make_client(d: Path, **kw) -> TestClient:
    app = create_app(d / "run", accounts=Accounts.load(d / "users.yaml"), **kw)
    return TestClient(app, base_url=BASE)


def store_of(d: Path):
    """The run's store (either backend); closed after the test."""
    store = open_run_store(d / "run")
    _opened.append(store)
    return store


def sql_of(d: Path):
    """A connection to the run's store taking ``?`` placeholders on either backend; closed after the test."""
    store, conn = run_sql(d / "run")
    _opened.append(store)
    return conn


def queue_ids(html: str) -> list[str]:
    return re.findall(r'<a class="mid" href="/review/[^"]+">([^<]+)</a>', html)


def total_of(html: str) -> int:
    return int(re.search(r'<b id="total">([\d,]+)</b>', html).group(1).replace(",", ""))


def textarea(html: str, name: str) -> str:
    return H.unescape(re.search(rf'<textarea name="{re.escape(name)}"[^>]*>(.*?)</textarea>', html, re.S).group(1))


def form_of(html: str) -> dict[str, str]:
    """The decide form's editable fields, as the browser would post them."""
    out = {}
    for name, value in re.findall(r'<input name="(subject|preheader)" value="([^"]*)"', html):
        out[name] = H.unescape(value)
    for name in re.findall(r'<textarea name="(body|explanation_\d+)"', html):
        out[name] = textarea(html, name)
    out["basis"] = re.search(r'name="basis" value="([^"]*)"', html).group(1)
    out["f"] = H.unescape(re.search(r'name="f" value="([^"]*)"', html).group(1))
    return out


def verdict_of(html: str) -> str:
    return re.search(r'<span class="verdict v-(\w+)">', html.split('id="recheck-result"', 1)[1]).group(1)


def failing_rules(html: str) -> list[str]:
    bar = html.split('id="recheck-result"', 1)[1].split("</div>", 1)[0]
    return re.findall(r'<code class="rulechip sev-error">([^<]+)</code>', bar)


# ------------------------------------------------------------------------------------------ decisions (stored findings)


def test_approving_a_failing_message_needs_an_override_of_each_rule(crafted):
    c = make_client(crafted)
    token = sign_in(c, "olga")  # reviewer with the override role
    page = c.get("/review/M000000").text  # in review: compliance.creepy-observation (error) in the body
    assert verdict_of(page) == "fail" and failing_rules(page) == ["compliance.creepy-observation"]
    assert 'name="override:compliance.creepy-observation"' in page and 'data-needs-overrides="1"' in page
    r = c.post("/review/M000000/decide", data={"csrf": token, "action": "approve", "basis": "record",
                                                "reason": "The member asked for this wording."},
               follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/review/M000000")
    page = c.get(r.headers["location"]).text
    assert "overrides failing rule(s): tick each one" in page and "compliance.creepy-observation" in page
    assert "The member asked for this wording." in page  # the reason is kept for the next try
    assert not list(store_of(crafted).iter_decisions())
    # ticked, but the rule's reason is a dot: refused
    data = {"csrf": token, "action": "approve", "basis": "record", "reason": "The member asked for this wording.",
            "override:compliance.creepy-observation": "1", "override_reason:compliance.creepy-observation": "."}
    c.post("/review/M000000/decide", data=data)
    assert not list(store_of(crafted).iter_decisions())
    data["override_reason:compliance.creepy-observation"] = "quoted from the member's own note"
    r = c.post("/review/M000000/decide", data=data, follow_redirects=False)
    assert r.status_code == 303
    dec = store_of(crafted).latest_decisions()["M000000"]
    assert dec["verdict"] == "fail" and dec["overrides"] == [
        {"rule_id": "compliance.creepy-observation", "reason": "quoted from the member's own note"}]
    # shown as such: the page, the audit log, the CSV and the export
    assert "override: compliance.creepy-observation" in c.get("/review/M000000").text
    assert 'class="dec d-override">override' in c.get("/audit").text
    rows = list(csv.DictReader(io.StringIO(c.get("/audit.csv").text)))
    assert rows[0]["override_rules"] == "compliance.creepy-observation" and rows[0]["verdict"] == "fail"
    reexport(crafted / "run")
    out = {json.loads(x)["member_id"]: json.loads(x) for x in (crafted / "run" / "messages.jsonl").open()}
    assert out["M000000"]["outcome"] == "approved" and out["M000000"]["send"] is True
    assert out["M000000"]["override"] == ["compliance.creepy-observation"]
    assert out["M000000"]["review"]["override"][0]["reason"] == "quoted from the member's own note"
    assert json.loads((crafted / "run" / "manifest.json").read_text())["gate_overrides"] == 1


def test_a_reviewer_without_the_override_role_cannot_approve_a_failing_message(crafted):
    c = make_client(crafted)
    token = sign_in(c, "rita")  # reviewer only
    page = c.get("/review/M000000").text
    assert 'id="no-override"' in page
    r = c.post("/review/M000000/decide", data={
        "csrf": token, "action": "approve", "basis": "record", "reason": "looks fine to me",
        "override:compliance.creepy-observation": "1",
        "override_reason:compliance.creepy-observation": "quoted from the member's note"})
    assert not list(store_of(crafted).iter_decisions())
    assert "may not approve over failing rules" in r.text
    # rejecting is always possible (with a reason in words)
    r = c.post("/review/M000000/decide", data={"csrf": token, "action": "reject", "basis": "record",
                                                "reason": "creepy observation language"}, follow_redirects=False)
    assert r.status_code == 303 and store_of(crafted).latest_decisions()["M000000"]["action"] == "reject"


def test_a_passing_message_is_approved_without_overrides(crafted):
    c = make_client(crafted)
    token = sign_in(c, "rita")
    # M000003 repaired: its stored findings (the record's) are empty
    r = c.post("/review/M000003/decide", data={"csrf": token, "action": "approve", "basis": "record",
                                                "reason": "repair reads well now"}, follow_redirects=False)
    assert r.status_code == 303
    dec = store_of(crafted).latest_decisions()["M000003"]
    assert dec["verdict"] == "pass" and dec["overrides"] == []


@pytest.mark.parametrize("reason", ["", ".", "\u200b\u200b\u200b\u200b", "ok", "yes yes yes"])
def test_decisions_need_a_reason_in_words(crafted, reason):
    c = make_client(crafted)
    token = sign_in(c, "olga")
    for action in ("approve", "reject"):
        r = c.post("/review/M000003/decide", data={"csrf": token, "action": action, "basis": "record",
                                                    "reason": reason})
        assert "in words (three or more)" in r.text  # the redirect's page says why
    assert not list(store_of(crafted).iter_decisions())
    assert c.post("/review/M000003/decide", data={"csrf": token, "action": "ship-it"}).status_code == 400


def test_no_decision_for_members_the_run_sends_nothing_by_design(crafted):
    c = make_client(crafted)
    token = sign_in(c, "olga")
    r = c.post("/review/M000006/decide", data={"csrf": token, "action": "approve", "basis": "record",
                                                "reason": "send it anyway please"})  # suppressed
    assert not list(store_of(crafted).iter_decisions())
    assert "No decision is possible for a suppressed member" in r.text


def test_every_post_redirects_and_a_decision_walks_to_the_next_in_the_filter(crafted):
    c = make_client(crafted)
    token = sign_in(c, "olga")
    q = c.get("/queue?outcome=rejected&status=open").text
    ids = queue_ids(q)
    assert len(ids) >= 3
    page = c.get(f"/review/{ids[0]}?outcome=rejected&status=open").text
    assert f'href="/review/{ids[1]}?outcome=rejected&amp;status=open"' in page  # next in this filter
    form = form_of(page)
    assert form["f"] == "outcome=rejected&status=open"
    r = c.post(f"/review/{ids[0]}/decide", data={**form, "csrf": token, "action": "reject",
                                                  "reason": "fallback failed and model text is creepy"},
               follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/review/{ids[1]}?outcome=rejected&status=open"
    nxt = c.get(r.headers["location"]).text
    assert f"Rejected {ids[0]}" in nxt and "This is the next message in your filter" in nxt
    # the decided one left the open filter; the walk goes on from where it was
    assert ids[0] not in queue_ids(c.get("/queue?outcome=rejected&status=open").text)
    assert f'href="/review/{ids[2]}?' in nxt
    # back / previous from the second skips the decided one (no longer open)
    assert f'id="prev" href="/review/{ids[0]}' not in nxt


def test_queue_rows_say_what_will_be_sent(crafted):
    c = make_client(crafted)
    token = sign_in(c, "olga")
    html = c.get("/queue?outcome=all&per_page=200").text
    rows = dict(re.findall(r'<a class="mid" href="[^"]+">([^<]+)</a>.*?<span class="sends s-(\w+)"', html, re.S))
    assert rows["M000002"] == "fallback" and rows["M000000"] == "nothing" and rows["M000003"] == "model"
    assert rows["M000001"] == "nothing"  # rejected: even the fallback failed
    c.post("/review/M000003/decide", data={"csrf": token, "action": "approve", "basis": "record",
                                            "reason": "repair reads well now"})
    c.post("/review/M000002/decide", data={"csrf": token, "action": "reject", "basis": "record",
                                            "reason": "no mail this week for this member"})
    html = c.get("/queue?outcome=all&per_page=200").text
    rows = dict(re.findall(r'<a class="mid" href="[^"]+">([^<]+)</a>.*?<span class="sends s-(\w+)"', html, re.S))
    assert rows["M000003"] == "reviewed" and rows["M000002"] == "nothing"


# ------------------------------------------------------------------------------------------ queue


def test_queue_filters_and_keyset_pages(crafted):
    c = make_client(crafted)
    sign_in(c)
    db = sql_of(crafted)
    want = {r[0] for r in db.execute("SELECT member_id FROM members WHERE outcome IN "
                                     "('review','rejected','fallback','repaired')")}
    all_q = c.get("/queue?per_page=200").text
    assert set(queue_ids(all_q)) == want and total_of(all_q) == len(want)
    rule = {r[0] for r in db.execute("SELECT DISTINCT m.member_id FROM members m JOIN findings f USING (member_key) "
                                     "WHERE f.rule_id='brand.hype' AND m.outcome IN "
                                     "('review','rejected','fallback','repaired')")}
    assert rule and set(queue_ids(c.get("/queue?rule=brand.hype&per_page=200").text)) == rule
    gate = set(queue_ids(c.get("/queue?gate=facts&per_page=200").text))
    assert gate and gate < want
    errs = set(queue_ids(c.get("/queue?gate=facts&severity=error&per_page=200").text))
    assert errs == set()  # the crafted facts findings are warnings
    for mid in queue_ids(c.get("/queue?outcome=rejected&tier=2&segment=Enthusiasts").text):
        seg, tier, out = db.execute("SELECT segment, tier, outcome FROM members WHERE member_id=?", (mid,)).fetchone()
        assert (seg, tier, out) == ("Enthusiasts", 2, "rejected")
    # walk every page forward, then back from the end: each member once, same order
    seen, url = [], "/queue?per_page=25"
    while url:
        page = c.get(url).text
        seen += queue_ids(page)
        m = re.search(r'href="(/queue\?[^"]*after=[^"]*)" rel="next"', page)
        url = H.unescape(m.group(1)) if m else None
    assert seen == sorted(want) and len(seen) == len(set(seen))
    back, url = [], "/queue?per_page=25&end=1"
    while url:
        page = c.get(url).text
        back = queue_ids(page) + back
        m = re.search(r'href="(/queue\?[^"]*before=[^"]*)" rel="prev"', page)
        url = H.unescape(m.group(1)) if m else None
    assert back == seen
    desc = queue_ids(c.get("/queue?sort=member&order=desc&per_page=200").text)
    assert desc == sorted(want, reverse=True)
    by_errors = queue_ids(c.get("/queue?sort=errors&per_page=200").text)
    n_err = {mid: db.execute("SELECT COUNT(*) FROM findings WHERE member_key=? AND severity='error'",
                             (mid,)).fetchone()[0] for mid in want}
    assert [n_err[m] for m in by_errors] == sorted(n_err.values(), reverse=True)
    assert queue_ids(c.get("/queue?q=M00001").text) == sorted(m for m in want if m.startswith("M00001"))


def test_queue_status_filter_follows_decisions(crafted):
    c = make_client(crafted)
    token = sign_in(c, "olga")
    c.post("/review/M000001/decide", data={"csrf": token, "action": "reject", "basis": "record",
                                            "reason": "tone is off brand"})
    assert "M000001" in queue_ids(c.get("/queue?status=decided").text)
    assert "M000001" not in queue_ids(c.get("/queue?status=open&per_page=200").text)


def test_dashboard_figures_open_the_filters_that_reproduce_them(crafted):
    from tests.browser.studio_data import crafted_row

    extra = []  # members whose only findings are warnings: "with error findings" must leave them out
    for i, (outcome, seg, tier) in enumerate([("repaired", "Enthusiasts", 1), ("fallback", "Browsers", 2),
                                               ("approved", "Lapsed VIPs", 3), ("review", "Enthusiasts", 2)]):
        row = crafted_row(500 + i, outcome, segment=seg, tier=tier)
        for a in row["attempts"]:
            a["findings"] = [dict(f, severity="warning") for f in a["findings"]]
        extra.append(row)
    store = store_of(crafted)
    store.save_members(extra)
    store.close()
    c = make_client(crafted)
    token = sign_in(c, "olga")
    c.post("/review/M000001/decide", data={"csrf": token, "action": "reject", "basis": "record",
                                            "reason": "tone is off brand"})
    html = c.get("/dashboard").text
    assert html.count("<svg") >= 4 and "brand.hype" in html and "$0.0207" in html
    pairs = []
    # KPIs: the number next to its link
    for href, n in re.findall(r'<a href="(/queue\?[^"]+)"(?: id="[^"]+")?><span class="n"[^>]*>([\d,]+)</span>', html):
        pairs.append((href, int(n.replace(",", ""))))
    m = re.search(r'<a href="(/queue\?[^"]+)" class="small" id="kpi-open">([\d,]+) not decided', html)
    pairs.append((m.group(1), int(m.group(2).replace(",", ""))))
    # bars: <a href><text>label</text><rect/><text class="val">n</text></a>
    for href, n in re.findall(r'<a href="(/queue\?[^"]+)">(?:(?!</a>).)*?class="val"[^>]*>([\d,]+)</text></a>', html,
                              re.S):
        pairs.append((href, int(n.replace(",", ""))))
    # heat cells: "hits/total"
    for href, hits in re.findall(r'<a href="(/queue\?[^"]+)"><rect[^>]*class="heat".*?>(\d+)/\d+</text></a>', html,
                                 re.S):
        pairs.append((href, int(hits)))
    assert len(pairs) >= 15
    kinds = {tuple(sorted(k for k, _ in parse_qsl(urlsplit(H.unescape(h)).query))) for h, _ in pairs}
    assert ("outcome", "outcome", "segment", "severity", "tier") in {tuple(sorted(k)) for k in kinds} or any(
        "tier" in k for k in kinds)
    for href, n in pairs:
        assert total_of(c.get(H.unescape(href)).text) == n, href
    assert 'href="/queue?outcome=review&amp;outcome=rejected"' in html  # "for review / rejected" is both


def test_audit_csv_streams_in_chunks(crafted, monkeypatch):
    monkeypatch.setattr(audit_mod, "CHUNK", 3)
    c = make_client(crafted)
    token = sign_in(c, "olga")
    keys = ["M000001", "M000002", "M000008", "M000009", "M000015", "M000016", "M000022"]
    for k in keys:
        c.post(f"/review/{k}/decide", data={"csrf": token, "action": "reject", "basis": "record",
                                             "reason": "=cmd|' /C calc'!A0 not for this member"})
    studio = c.app.state.studio
    chunks = list(audit_mod.csv_lines(studio))
    assert len(chunks) == 3  # 7 decisions, 3 a chunk
    rows = list(csv.DictReader(io.StringIO(c.get("/audit.csv").text)))
    assert [r["member_id"] for r in rows] == keys and all(r["reason"].startswith("'=") for r in rows)
    assert "attachment" in c.get("/audit.csv").headers["content-disposition"]
    assert "Re-exported: 7" in c.post("/export", data={"csrf": token}).text


def test_detail_shows_the_trail(crafted):
    c = make_client(crafted)
    sign_in(c)
    html = c.get("/review/M000002").text  # a fallback
    assert "What the member gets now: the fallback" in html
    assert "Withheld by tier" in html and "viewed trail shoes twice" in html
    assert "Write this week&#39;s email." in html  # the prompt
    assert "#1 fallback" in html and "#0 generate" in html
    assert "compliance.creepy-observation" in html
    html = c.get("/review/M000000").text
    assert '<mark class="sev-error" data-rule="compliance.creepy-observation"' in html
    assert "Editing and re-checking need the campaign" in html
    assert c.get("/review/NOPE").status_code == 404


def test_recheck_without_campaign_says_what_to_do(crafted):
    c = make_client(crafted)
    token = sign_in(c)
    r = c.post("/review/M000000/check", data={"csrf": token, "basis": "attempt:0", "subject": "x", "body": "y"},
               follow_redirects=False)
    assert r.status_code == 303
    assert "--campaign" in c.get(r.headers["location"]).text


def test_migrations_are_recorded(crafted):
    db = sql_of(crafted)
    done = {r[0] for r in db.execute("SELECT name FROM migrations")}
    assert ({"p003_studio"} if db.pg else {"m002_studio", "m005_studio_review"}) <= done
    names = {r[0] for r in db.execute("SELECT table_name FROM information_schema.tables" if db.pg else
                                      "SELECT name FROM sqlite_master")}
    assert {"studio_variants", "studio_sessions", "studio_queue", "studio_queue_rules", "studio_counts"} <= names


def test_message_view_maps_spans_into_the_text_version():
    from tests.browser.studio_data import finding, message

    body = "Hi there,\n\nWe noticed you browsed shoes."
    msg = message("S", body, [("P1", "Because you bought socks.")])
    f1 = finding("c.creepy", "compliance", "body", body, "We noticed you browsed")
    f2 = finding("f.fact", "facts", "explanations[0].text", "Because you bought socks.", "bought socks", "warning")
    v = message_view(msg, [f1, f2], {"P1": "Socks"})
    assert "<mark class=\"sev-error\" data-rule=\"c.creepy\"" in str(v["text"])
    assert ">bought socks<sup class=\"fn\">2</sup></mark>" in str(v["text"])


# ------------------------------------------------------------------------------------------ with the real pipeline


@pytest.fixture(scope="module")
def pipeline_template(tmp_path_factory):
    from tests.fake_openai import FakeOpenAI

    d = tmp_path_factory.mktemp("pipeline")
    fake = FakeOpenAI().start()
    try:
        run_dir, campaign = pipeline_run(d, fake, 80, channels=None, variants=True)
        users_file(d / "users.yaml")
        yield d, campaign, fake
    finally:
        fake.stop()


@pytest.fixture
def real(pipeline_template, tmp_path):
    d, campaign, fake = pipeline_template
    shutil.copytree(d / "run", tmp_path / "run")
    shutil.copy(d / "users.yaml", tmp_path / "users.yaml")
    c = make_client(tmp_path, base_url=fake.base_url, api_key="test")
    yield tmp_path, c, fake
    c.app.state.studio.close()  # the template worker process, the store connections


def member_where(d: Path, sql: str) -> str:
    db = sql_of(d)
    if db.pg:
        sql = sql.replace(EMAIL, "(m.record::jsonb ->> 'channel') = 'email'")
    row = db.execute(f"SELECT m.member_key FROM members m WHERE {sql} ORDER BY m.seq").fetchone()
    assert row, sql
    return row[0]


EMAIL = "json_extract(m.record, '$.channel') = 'email'"


def test_detail_opens_on_the_failing_model_text_with_its_findings(real):
    d, c, _ = real
    sign_in(c, "rita")
    key = member_where(d, f"m.outcome = 'fallback' AND {EMAIL}")
    attempts = sql_of(d).execute("SELECT n, response, findings FROM attempts WHERE member_key=? AND "
                                      "kind != 'fallback' ORDER BY n", (key,)).fetchall()
    last_n, response, findings = attempts[-1]
    page = c.get(f"/review/{key}").text
    assert form_of(page)["basis"] == f"attempt:{last_n}"
    assert textarea(page, "body") == json.loads(response)["body"]  # the model's words, not the fallback's
    assert verdict_of(page) == "fail"
    errors = sorted({f["rule_id"] for f in json.loads(findings) if f["severity"] == "error"})
    assert failing_rules(page) == errors
    side = page.split('class="card findingscard"', 1)[1].split("</section>", 1)[0]
    assert all(f'<code class="rule">{r}</code>' in side for r in errors)
    # the editor and its verdict come before the trail on the page
    assert page.index('id="editor"') < page.index("What the member gets now")


def test_engine_lines_are_not_editable_and_a_price_edit_needs_an_override(real):
    d, c, _ = real
    token = sign_in(c, "olga")
    key = member_where(d, f"m.outcome IN ('approved', 'repaired') AND {EMAIL} AND json_extract(m.record, "
                          "'$.message.body') LIKE '%$%'")
    page = c.get(f"/review/{key}").text
    form = form_of(page)
    rec = json.loads(sql_of(d).execute("SELECT record FROM members WHERE member_key=?", (key,)).fetchone()[0])
    price_lines = [ln for ln in rec["message"]["body"].split("\n") if "$" in ln]
    assert price_lines and not any(ln in form["body"] for ln in price_lines)  # not in the editable words
    assert all(H.escape(ln, quote=False) in page.split('class="frame"', 1)[1] for ln in price_lines[:1])
    # a reviewer types a price into the words: the facts gate fails it; the engine's price line stays
    product = rec["plan"]["products"][0]["name"]
    edited = {**form, "csrf": token, "body": f"{product} is now just $4.99 this week only."}
    r = c.post(f"/review/{key}/check", data=edited, follow_redirects=False)
    assert r.status_code == 303 and "from=edit:" in r.headers["location"]
    page = c.get(r.headers["location"]).text
    assert verdict_of(page) == "fail"
    rules = failing_rules(page)
    assert any(x.startswith("facts.") for x in rules), rules
    # even posting the whole old body with the price line changed keeps the engine's line
    forged = rec["message"]["body"].replace(price_lines[0], re.sub(r"\$[\d,.]+", "$4.99", price_lines[0], count=1))
    assert forged != rec["message"]["body"]
    r = c.post(f"/review/{key}/decide", data={**edited, "body": forged, "action": "approve",
                                               "reason": "the member was promised this price"},
               follow_redirects=False)
    assert r.status_code == 303 and key not in store_of(d).latest_decisions()
    page = c.get(r.headers["location"]).text
    assert "tick each one" in page
    # with every failing rule overridden it is recorded, and the message still carries the catalog line
    again = {**edited, "action": "approve", "reason": "the member was promised this price in writing"}
    for rule in rules:
        again[f"override:{rule}"] = "1"
        again[f"override_reason:{rule}"] = "store manager confirmed the price in writing"
    r = c.post(f"/review/{key}/decide", data=again, follow_redirects=False)
    dec = store_of(d).latest_decisions()[key]
    assert dec["action"] == "approve" and sorted(o["rule_id"] for o in dec["overrides"]) == rules
    assert all(ln in dec["message"]["body"] for ln in price_lines)
    assert "$4.99" in dec["message"]["body"] and dec["message_hash"] == message_hash(dec["message"])
    reexport(d / "run")
    out = {json.loads(x)["member_id"]: json.loads(x) for x in (d / "run" / "messages.jsonl").open()}
    assert out[key]["outcome"] == "approved" and out[key]["override"] == rules


def test_recheck_uses_the_same_gates_as_check(real):
    d, c, _ = real
    token = sign_in(c, "rita")
    key = member_where(d, f"m.outcome IN ('approved','repaired') AND {EMAIL}")
    form = form_of(c.get(f"/review/{key}").text)
    creepy = form["body"] + "\n\nWe noticed you looked at this 4 times last night at 11:47 PM."
    r = c.post(f"/review/{key}/check", data={**form, "csrf": token, "body": creepy})
    assert verdict_of(r.text) == "fail"
    ctx = c.app.state.studio.campaign()
    from contentgen.web.editor import Words

    plan = ctx.plan(key)
    words = Words(form["subject"], form["preheader"], creepy,
                  [{"product_id": p.product.product_id, "text": form.get(f"explanation_{i}", "")}
                   for i, p in enumerate(plan.products) if f"explanation_{i}" in form])
    from contentgen import gates
    from contentgen.repair import gate_context

    msg = ctx.reassemble(plan, words.draft())
    direct = gates.run_gates(msg, gate_context(plan, ctx.campaign, ctx.offers, ctx.catalog), ctx.rules)
    assert sorted({f.rule_id for f in direct if f.severity == "error"}) == failing_rules(r.text)
    edits = [x for x in store_of(d).iter_decisions() if x["action"] == "edit"]
    assert edits and edits[-1]["reason"].startswith("re-checked: fail")


def test_edit_recheck_approve_flows_into_export(real):
    d, c, _ = real
    token = sign_in(c, "rita")
    key = member_where(d, f"m.outcome IN ('fallback','rejected') AND {EMAIL}")
    form = form_of(c.get(f"/review/{key}").text)
    edited = {**form, "csrf": token, "subject": "A few picks for the weeks ahead",
              "preheader": "Useful things for the season",
              "body": "We picked a few useful things for the season ahead. Have a look when you have a minute."}
    r = c.post(f"/review/{key}/check", data=edited, follow_redirects=False)
    page = c.get(r.headers["location"]).text
    assert verdict_of(page) == "pass" and "nothing fails" in page
    # the re-check result sits at the top of the editor, above the fields
    assert page.index('id="recheck-result"') < page.index('name="subject"')
    r = c.post(f"/review/{key}/decide", data={**form_of(page), "csrf": token, "action": "approve",
                                               "reason": "rewritten without tracking language"},
               follow_redirects=False)
    assert r.status_code == 303
    dec = store_of(d).latest_decisions()[key]
    assert dec["message"]["subject"] == "A few picks for the weeks ahead" and dec["verdict"] == "pass"
    assert "We picked a few useful things" in dec["message"]["text"] and dec["message"]["html"].startswith("<!doctype")
    reexport(d / "run")
    out = {json.loads(x)["member_id"]: json.loads(x) for x in (d / "run" / "messages.jsonl").open()}
    assert out[key]["outcome"] == "approved" and out[key]["send"] is True and "override" not in out[key]


@pytest.mark.parametrize("channel, fields, absent", [
    ("push", ["subject", "body"], ["preheader"]),
    ("sms", ["body"], ["subject", "preheader"]),
    ("inapp", ["subject", "body"], ["preheader"]),
])
def test_push_sms_and_inapp_edit_in_their_own_shapes(real, channel, fields, absent):
    d, c, _ = real
    token = sign_in(c, "olga")
    key = member_where(d, f"json_extract(m.record, '$.channel') = '{channel}' AND m.outcome IN "
                          "('approved','repaired','fallback','review','rejected')")
    page = c.get(f"/review/{key}").text
    form = form_of(page)
    for f in fields:
        assert f in form, (channel, f)
    for f in absent:
        assert f not in form, (channel, f)
    words = "Fresh picks for the season are in the app now."
    r = c.post(f"/review/{key}/check", data={**form, "csrf": token, "body": words}, follow_redirects=False)
    page = c.get(r.headers["location"]).text
    again = {**form_of(page), "csrf": token, "action": "approve", "reason": "short and true to the plan"}
    for rule in failing_rules(page):
        again[f"override:{rule}"] = "1"
        again[f"override_reason:{rule}"] = "checked against the catalog by hand"
    c.post(f"/review/{key}/decide", data=again)
    msg = store_of(d).latest_decisions()[key]["message"]
    if channel == "sms":
        assert set(msg) == {"text"} and msg["text"].startswith("AthenaPlus: " + words)
        assert msg["text"].endswith("Reply STOP to opt out.")
    else:
        assert {"title", "body", "url"} <= set(msg) and msg["body"] == words and "subject" not in msg


def test_preview_offers_the_campaigns_variants_and_shows_failing_text(real, monkeypatch):
    d, c, fake = real
    token = sign_in(c, "cole")
    page = c.get("/preview?tier=2").text
    members = re.findall(r'name="member" value="([^"]+)"', page)
    assert members
    assert 'value="campaign:warm"' in page and 'value="campaign:control"' in page
    from tests.responders import always_bad

    fake.responder = always_bad  # every variant fails: the preview shows the model's text and why
    base = re.search(r'name="variant" value="([0-9a-f]{12})"', page).group(1)
    r = c.post("/preview/run", data={"csrf": token, "variant": [base, "campaign:warm"], "member": members[:1],
                                     "label": "warm vs campaign"})
    assert re.search(r"/preview/c/\d+$", str(r.url)), r.text[:300]
    assert r.text.count('class="cmp-cell"') == 2
    plain = re.sub(r"<[^>]+>", "", re.sub(r'<sup class="fn">\d+</sup>', "", r.text))
    assert r.text.count('class="failedtext"') == 2 and plain.count("We noticed you looked at this 4 times") >= 2
    failed = r.text.split('class="failedtext"', 1)[1].split("</ol>", 1)[0]
    assert 'data-rule="compliance.' in failed  # its findings, marked in the text and listed
    assert "The fallback the member would get" in r.text
    db = sql_of(d)
    prompts = [json.loads(x)["prompt"] for (x,) in db.execute("SELECT result FROM studio_previews")]
    warm = (Path("prompts") / "message_warm.j2").read_text()
    assert len(prompts) == 2 and prompts[0] != prompts[1]
    assert "warm" in warm.lower() or prompts[0] != prompts[1]


def test_preview_compares_variants_and_saves_them(real):
    d, c, fake = real
    from tests.browser.studio_data import mixed_responder

    fake.responder = mixed_responder
    token = sign_in(c, "cole")
    page = c.get("/preview?tier=2").text
    members = [m.group(1) for row in page.split("<tr>")
               if (m := re.search(r'name="member" value="([^"]+)"', row)) and '<td class="ch">email</td>' in row]
    assert len(members) >= 2
    form = c.get("/preview/variants/new").text
    tpl = H.unescape(re.search(r'name="file:message.j2"[^>]*>(.*?)</textarea>', form, re.S).group(1))
    bad = c.post("/preview/variants", data={"csrf": token, "name": "broken", "file:message.j2": tpl + "{% if %}"})
    assert bad.status_code == 400 and "message.j2" in bad.text
    r = c.post("/preview/variants", data={"csrf": token, "name": "warmer",
                                          "file:message.j2": tpl.replace("Write this week's message.",
                                                                         "Write this week's message, warmly.")})
    variants = re.findall(r'name="variant" value="([^"]+)" checked', r.text)
    assert len(variants) == 2
    assert (d / "run" / "variants" / variants[1] / "message.j2").read_text().count("warmly") == 1
    r = c.post("/preview/run", data={"csrf": token, "variant": variants, "member": members[:2], "label": "warm"})
    assert re.search(r"/preview/c/\d+$", str(r.url))
    assert r.text.count('class="cmp-cell"') == 4
    assert r.text.count('sandbox=""') >= 2 and "Why was this recommended?" in r.text
    db = sql_of(d)
    rows = db.execute("SELECT variant_id, member_id, prompt_tokens FROM studio_previews").fetchall()
    assert len(rows) == 4 and all(pt > 0 for *_, pt in rows)
    assert "warm" in c.get("/preview/history").text
    assert c.get(str(r.url.path)).text.count('class="cmp-cell"') == 4
    prompts = [json.loads(x)["prompt"] for (x,) in db.execute("SELECT result FROM studio_previews")]
    assert sum("warmly" in (p or "") for p in prompts) == 2


@pytest.mark.parametrize("template, why", [
    ("{% for a in range(99999) %}{% for b in range(99999) %}{% endfor %}{% endfor %}", "took longer than"),
    ("{% for a in range(99999) %}{{ 'x' * 1000 }}{% endfor %}", "KiB"),
])
def test_a_runaway_preview_template_is_stopped_and_the_studio_keeps_serving(real, template, why, monkeypatch):
    from contentgen.web import sandbox

    monkeypatch.setattr(sandbox, "TIMEOUT_S", 1.0)
    d, c, _ = real
    token = sign_in(c, "cole")
    c.app.state.studio.render_worker().timeout = 1.0
    form = c.get("/preview/variants/new").text
    tpl = H.unescape(re.search(r'name="file:message.j2"[^>]*>(.*?)</textarea>', form, re.S).group(1))
    r = c.post("/preview/variants", data={"csrf": token, "name": "runaway", "file:message.j2": tpl + template})
    assert r.status_code == 400 and why in r.text and "message.j2" in r.text
    assert c.get("/queue").status_code == 200
    # and a good variant still saves: the worker was replaced
    r = c.post("/preview/variants", data={"csrf": token, "name": "fine", "file:message.j2": tpl + "\nThanks."})
    assert r.status_code == 200 and len(re.findall(r'name="variant" value="([^"]+)" checked', r.text)) == 2


def test_the_member_index_serves_input_rows_without_reading_the_files(real, monkeypatch):
    import time

    d, c, _ = real
    sign_in(c, "rita")
    ctx = c.app.state.studio.campaign()
    deadline = time.monotonic() + 60
    while not ctx.index.ready():
        assert time.monotonic() < deadline, "the member index was not built"
        time.sleep(0.05)
    key = member_where(d, f"m.outcome = 'fallback' AND {EMAIL}")
    want = next(r for r in ctx.iter_rows() if r.member.member_id == key)
    ctx._rows.clear()

    def no_scan():
        raise AssertionError("read the members file although the index is ready")

    monkeypatch.setattr(ctx, "iter_rows", no_scan)
    got = ctx.member_row(key)
    assert (got.member, got.recommendations, got.recently_bought, got.returned, got.seq) == \
        (want.member, want.recommendations, want.recently_bought, want.returned, want.seq)
    page = c.get(f"/review/{key}").text
    assert verdict_of(page) == "fail" and 'name="body"' in page


# ------------------------------------------------------------------------------------------ PostgreSQL, sharded


def test_a_sharded_postgresql_run_is_reviewed_in_one_studio_and_decisions_reach_the_merged_export(
        tmp_path, fake_openai, pg_url):
    """Two shards of one run on one PostgreSQL database: the studio of either shard's folder shows every
    member of the run (queue, dashboard, detail); a rejection of a shard-1 member and an edited approval of a
    shard-0 member, both made in the studio of shard 0, change the merged export once each shard re-exports."""
    from click.testing import CliRunner

    from contentgen.cli import cli
    from contentgen.export import verify

    shards = [pipeline_run(tmp_path, fake_openai, 40, store=pg_url, shard=(i, 2), out=tmp_path / f"shard{i}")
              for i in range(2)]
    campaign = shards[0][1]
    users_file(tmp_path / "users.yaml")

    def merged(name: str) -> dict[str, dict]:
        r = CliRunner().invoke(cli, ["merge", str(tmp_path / name), str(tmp_path / "shard0"), str(tmp_path / "shard1")])
        assert r.exit_code == 0, r.output
        verify(tmp_path / name)
        return {json.loads(x)["member_id"]: json.loads(x) for x in (tmp_path / name / "messages.jsonl").open()}

    before = merged("merged-before")
    # (one channel, no variants: a member's key is its id)
    by_shard = [{json.loads(x)["member_id"]: json.loads(x) for x in (tmp_path / f"shard{i}" / "messages.jsonl").open()}
                for i in range(2)]
    assert by_shard[0] and by_shard[1] and not set(by_shard[0]) & set(by_shard[1])

    app = create_app(tmp_path / "shard0", accounts=Accounts.load(tmp_path / "users.yaml"), campaign_path=campaign,
                     base_url=fake_openai.base_url, api_key="test")
    c = TestClient(app, base_url=BASE)
    try:
        token = sign_in(c, "rita")
        queued = {k for k, r in before.items() if r["outcome"] in ("review", "rejected", "fallback", "repaired")}
        shown = queue_ids(c.get("/queue?per_page=200").text)
        assert set(shown) == queued and queued & set(by_shard[0]) and queued & set(by_shard[1])
        assert total_of(c.get("/queue").text) == len(queued)
        # a member of shard 1 that the run sends: rejected in shard 0's studio
        k1 = next(k for k in sorted(queued & set(by_shard[1])) if before[k]["send"])
        assert c.get(f"/review/{k1}").status_code == 200
        r = c.post(f"/review/{k1}/decide", data={"csrf": token, "action": "reject", "basis": "record",
                                                  "reason": "the tone is wrong for this member"},
                   follow_redirects=False)
        assert r.status_code == 303
        # a failing e-mail of shard 0: rewritten, re-checked and approved
        k0 = next(k for k in sorted(queued & set(by_shard[0]))
                  if before[k]["outcome"] in ("fallback", "rejected") and before[k]["channel"] == "email")
        form = form_of(c.get(f"/review/{k0}").text)
        edited = {**form, "csrf": token, "subject": "A few picks for the weeks ahead",
                  "preheader": "Useful things for the season",
                  "body": "We picked a few useful things for the season ahead. Have a look when you have a minute."}
        page = c.get(c.post(f"/review/{k0}/check", data=edited, follow_redirects=False).headers["location"]).text
        assert verdict_of(page) == "pass"
        r = c.post(f"/review/{k0}/decide", data={**form_of(page), "csrf": token, "action": "approve",
                                                  "reason": "rewritten without tracking language"},
                   follow_redirects=False)
        assert r.status_code == 303
        assert set(queue_ids(c.get("/queue?status=decided").text)) == {k0, k1}
        audit = c.get("/audit").text
        assert k1 in audit and k0 in audit
        assert 'id="shards"' in audit and "shard-0-of-2" in audit and "Re-export this shard" in audit
        assert c.get("/dashboard").status_code == 200
        metrics = c.get("/metrics").text  # the run's figures, both shards
        members = sum(float(m) for m in re.findall(r'^contentgen_run_members\{outcome="\w+"\} (\S+)$', metrics, re.M))
        assert members == len(before)
        assert 'contentgen_review_decisions_total{action="reject"} 1.0' in metrics
    finally:
        c.app.state.studio.close()
    # each decision is in its member's shard: that shard's export applies it
    for i in range(2):
        r = CliRunner().invoke(cli, ["export", str(tmp_path / f"shard{i}")])
        assert r.exit_code == 0, r.output
    after = merged("merged-after")
    assert set(after) == set(before)
    assert after[k1]["outcome"] == "rejected" and after[k1]["send"] is False and after[k1]["review"]["action"] == "reject"
    assert after[k0]["outcome"] == "approved" and after[k0]["send"] is True
    assert after[k0]["message"]["subject"] == "A few picks for the weeks ahead"
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {k0, k1}


def test_contentgen_serve_on_a_postgresql_run_folder(tmp_path, pg_url):
    """The command itself: `contentgen serve RUN_DIR` on a folder whose store.json points at PostgreSQL serves
    the queue (a real uvicorn in a child process, stopped and reaped here)."""
    import os
    import subprocess
    import sys

    import httpx

    from tests.browser.studio_data import PASSWORD, csrf_of, free_port
    from tests.util import REPO, stop_process, wait_until_ok

    crafted_run(tmp_path / "run", 20, url=pg_url)
    users_file(tmp_path / "users.yaml")
    assert (tmp_path / "run" / "store.json").exists() and not (tmp_path / "run" / "run.db").exists()
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "contentgen.cli", "serve", str(tmp_path / "run"), "--port",
                             str(port), "--users", str(tmp_path / "users.yaml")], cwd=REPO, env=dict(os.environ),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_ok(base + "/login", proc, timeout=60, what="contentgen serve", log=lambda: proc.stderr.read(),
                      every=0.1)
        with httpx.Client(base_url=base, timeout=20, follow_redirects=True) as hc:
            tok = csrf_of(hc.get("/login").text)
            r = hc.post("/login", data={"csrf": tok, "username": "rita", "password": PASSWORD})
            assert r.status_code == 200 and r.url.path == "/queue"
            assert "M000000" in queue_ids(r.text) and total_of(r.text) > 0
    finally:
        stop_process(proc, 20)
        proc.stderr.close()
