"""The studio (contentgen serve) through Starlette's TestClient: auth, CSRF, escaping, queue, decisions, preview."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from contentgen import gates
from contentgen.export import message_hash
from contentgen.pipeline import reexport
from contentgen.store import SqliteStore
from contentgen.web.app import create_app
from contentgen.web.auth import Accounts, hash_password, verify_password
from contentgen.web.highlight import highlight, message_view
from tests.browser.studio_data import PASSWORD, XSS, crafted_run, pipeline_run, users_file

HAS_GATES = hasattr(gates, "run_gates") and hasattr(gates, "load_rules")
needs_gates = pytest.mark.skipif(not HAS_GATES, reason="contentgen.gates (run_gates/load_rules) not available yet")


@pytest.fixture(scope="module")
def crafted_template(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("crafted")
    crafted_run(d / "run", 60)
    users_file(d / "users.yaml")
    return d


@pytest.fixture
def crafted(crafted_template, tmp_path) -> Path:
    """A private copy of the crafted run (tests record decisions in it)."""
    shutil.copytree(crafted_template, tmp_path / "c")
    return tmp_path / "c"


def make_client(d: Path, **kw) -> TestClient:
    app = create_app(d / "run", accounts=Accounts.load(d / "users.yaml"), **kw)
    return TestClient(app)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def login(c: TestClient, user: str = "ada") -> str:
    r = c.get("/login")
    r = c.post("/login", data={"csrf": csrf_of(r.text), "username": user, "password": PASSWORD, "next": "/queue"})
    assert r.status_code == 200 and r.url.path == "/queue", r.text[:500]
    return csrf_of(r.text)


# ------------------------------------------------------------------------------------------ auth and CSRF


def test_every_screen_requires_sign_in(crafted):
    c = make_client(crafted)
    for path in ("/", "/dashboard", "/queue", "/review/M000000", "/audit", "/audit.csv", "/preview"):
        r = c.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login"), path
    assert c.post("/review/M000000/decide", data={}).status_code in (401, 403)


def test_wrong_password_is_refused(crafted):
    c = make_client(crafted)
    r = c.get("/login")
    r = c.post("/login", data={"csrf": csrf_of(r.text), "username": "ada", "password": "nope"})
    assert r.status_code == 401 and "Wrong user name or password" in r.text
    assert c.get("/queue", follow_redirects=False).status_code == 303


def test_every_post_route_checks_csrf(crafted):
    c = make_client(crafted)
    token = login(c)
    posts = [r.path.replace("{key:path}", "M000000").replace("{cid:int}", "1")
             for r in c.app.routes if getattr(r, "methods", None) and "POST" in r.methods]
    assert {"/login", "/logout", "/export", "/preview/run", "/review/M000000/decide"} <= set(posts)
    for path in posts:
        assert c.post(path, data={"action": "reject", "reason": "x"}).status_code == 403, path
        assert c.post(path, data={"csrf": token + "x", "action": "reject"}).status_code == 403, path
    with SqliteStore(crafted / "run" / "run.db").db as db:
        assert db.execute("SELECT COUNT(*) FROM decisions").fetchone()[0] == 0
    # the right token passes (and the header form works too)
    r = c.post("/review/M000000/decide", headers={"X-CSRF-Token": token}, data={"action": "reject", "reason": "no"})
    assert r.status_code == 200 and "Decision recorded" in r.text


def test_csrf_token_is_per_session(crafted):
    a, b = make_client(crafted), make_client(crafted)
    ta, tb = login(a), login(b)
    assert ta != tb
    assert a.post("/review/M000000/decide", data={"csrf": tb, "action": "reject"}).status_code == 403


def test_roles(crafted):
    cw = make_client(crafted)
    token = login(cw, "cole")  # copywriter only
    r = cw.post("/review/M000000/decide", data={"csrf": token, "action": "approve", "reason": "fine"})
    assert r.status_code == 403
    rv = make_client(crafted)
    login(rv, "rita")  # reviewer only
    assert rv.get("/preview").status_code == 403
    assert rv.get("/queue").status_code == 200


def test_users_file_must_hold_hashes(tmp_path):
    p = tmp_path / "u.yaml"
    p.write_text("users:\n  bob:\n    password: hunter22\n")
    with pytest.raises(Exception, match="must be a hash"):
        Accounts.load(p)
    h = hash_password("s3cret-pass")
    assert h.startswith("scrypt$") and verify_password("s3cret-pass", h) and not verify_password("other", h)
    assert hash_password("s3cret-pass") != h  # salted


def test_session_cookie_is_signed_and_strict(crafted):
    c = make_client(crafted)
    login(c)
    cookie = c.cookies.get("contentgen_studio")
    assert cookie and "ada" not in cookie
    good = TestClient(c.app, cookies={"contentgen_studio": cookie})
    assert good.get("/queue", follow_redirects=False).status_code == 200
    forged = TestClient(c.app, cookies={"contentgen_studio": cookie[:-6] + ("AAAAAA" if cookie[-6:] != "AAAAAA" else "BBBBBB")})
    assert forged.get("/queue", follow_redirects=False).status_code == 303
    r = make_client(crafted).get("/login")
    assert "samesite=strict" in r.headers["set-cookie"].lower() and "httponly" in r.headers["set-cookie"].lower()
    assert "script-src 'self'" in r.headers["content-security-policy"]


# ------------------------------------------------------------------------------------------ escaping


def test_script_in_model_text_renders_as_text(crafted):
    c = make_client(crafted)
    login(c)
    for path in ("/review/M000060", "/queue?segment=Browsers"):
        html = c.get(path).text
        assert "<script>alert" not in html, path
        assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html or "&lt;script&gt;" in html, path
    html = c.get("/review/M000060").text
    # the e-mail HTML goes into a sandboxed iframe's srcdoc, escaped once more as an attribute
    frame = re.search(r'<iframe class="email" sandbox="" [^>]*srcdoc="([^"]*)"', html)
    assert frame and "<" not in frame.group(1) and "&amp;lt;script&amp;gt;" in frame.group(1)


def test_highlight_escapes_segments_then_marks():
    text = "Hi <b>you</b>, we noticed you browsed & bought."
    a = text.index("we noticed")
    f = {"rule_id": "compliance.creepy", "gate": "compliance", "severity": "error", "field": "body",
         "span": [a, a + len("we noticed you browsed")], "message": 'say "why" <not> what'}
    out = str(highlight(text, [f, dict(f, span=[a + 3, a + 30]), dict(f, span=[0, 999])]))
    assert out.startswith("Hi &lt;b&gt;you&lt;/b&gt;, <mark class=\"sev-error\" data-rule=\"compliance.creepy\"")
    assert ">we noticed you browsed</mark>" in out and "> &amp; bough</mark>t." in out
    assert out.count("<mark") == 2  # the overlapping span is clipped, the out-of-range one ignored
    assert "&lt;not&gt;" in out and "<not>" not in out
    xss = highlight(XSS, [{"span": [0, 8], "severity": "error", "rule_id": "r"}])
    assert "<script>" not in str(xss) and "&lt;script&gt;" in str(xss)


def test_message_view_maps_spans_into_the_text_version():
    from tests.browser.studio_data import finding, message

    body = "Hi there,\n\nWe noticed you browsed shoes."
    msg = message("S", body, [("P1", "Because you bought socks.")])
    f1 = finding("c.creepy", "compliance", "body", body, "We noticed you browsed")
    f2 = finding("f.fact", "facts", "explanations[0].text", "Because you bought socks.", "bought socks", "warning")
    v = message_view(msg, [f1, f2], {"P1": "Socks"})
    assert "<mark class=\"sev-error\" data-rule=\"c.creepy\"" in str(v["text"])
    assert ">bought socks<sup class=\"fn\">2</sup></mark>" in str(v["text"])
    assert v["explanations"][0]["name"] == "Socks" and "<mark" in str(v["explanations"][0]["html"])


# ------------------------------------------------------------------------------------------ queue


def queue_ids(html: str) -> list[str]:
    return re.findall(r'<a class="mid" href="/review/[^"]+">([^<]+)</a>', html)


def test_queue_filters_sorting_and_pages(crafted):
    c = make_client(crafted)
    login(c)
    db = SqliteStore(crafted / "run" / "run.db").db
    all_q = c.get("/queue?per_page=200").text
    want = {r[0] for r in db.execute("SELECT member_id FROM members WHERE outcome IN "
                                     "('review','rejected','fallback','repaired')")}
    assert set(queue_ids(all_q)) == want and f'<b id="total">{len(want)}</b>' in all_q
    rule = {r[0] for r in db.execute("SELECT DISTINCT m.member_id FROM members m JOIN findings f USING (member_key) "
                                     "WHERE f.rule_id='brand.hype' AND m.outcome IN "
                                     "('review','rejected','fallback','repaired')")}
    assert rule and set(queue_ids(c.get("/queue?rule=brand.hype&per_page=200").text)) == rule
    gate = set(queue_ids(c.get("/queue?gate=facts&per_page=200").text))
    assert gate and gate < want
    for mid in queue_ids(c.get("/queue?outcome=rejected&tier=2&segment=Enthusiasts").text):
        seg, tier, out = db.execute("SELECT segment, tier, outcome FROM members WHERE member_id=?", (mid,)).fetchone()
        assert (seg, tier, out) == ("Enthusiasts", 2, "rejected")
    p1 = queue_ids(c.get("/queue?per_page=25").text)
    p2 = queue_ids(c.get("/queue?per_page=25&page=2").text)
    assert len(p1) == 25 and p2 and not set(p1) & set(p2)
    assert "Page 2 of" in c.get("/queue?per_page=25&page=2").text
    desc = queue_ids(c.get("/queue?sort=member&order=desc&per_page=200").text)
    assert desc == sorted(want, reverse=True)
    assert queue_ids(c.get("/queue?q=M00001").text) == sorted(m for m in want if m.startswith("M00001"))
    # nonsense parameters fall back to defaults instead of failing
    assert c.get("/queue?sort=drop%20table&order=x&page=-3&per_page=7&tier=abc").status_code == 200


def test_queue_status_filter_follows_decisions(crafted):
    c = make_client(crafted)
    token = login(c)
    c.post("/review/M000001/decide", data={"csrf": token, "action": "reject", "reason": "tone"})
    assert "M000001" in queue_ids(c.get("/queue?status=decided").text)
    assert "M000001" not in queue_ids(c.get("/queue?status=open&per_page=200").text)


# ------------------------------------------------------------------------------------------ decisions


def test_approve_needs_a_reason(crafted):
    c = make_client(crafted)
    token = login(c)
    for reason in ("", "   "):
        r = c.post("/review/M000000/decide", data={"csrf": token, "action": "approve", "reason": reason})
        assert r.status_code == 400 and "needs a written reason" in r.text
    assert c.post("/review/M000000/decide", data={"csrf": token, "action": "ship-it"}).status_code == 400
    assert not list(SqliteStore(crafted / "run" / "run.db").iter_decisions())


def test_decision_audit_csv_and_reexport(crafted):
    c = make_client(crafted)
    token = login(c, "rita")
    store = SqliteStore(crafted / "run" / "run.db")
    rec = json.loads(store.db.execute("SELECT record FROM members WHERE member_key='M000000'").fetchone()[0])
    assert rec["outcome"] == "review"
    r = c.post("/review/M000000/decide", data={"csrf": token, "action": "approve",
                                                "reason": "=HYPERLINK(\"x\") observation is the member's own note"})
    assert r.status_code == 200 and "Decision recorded" in r.text and "approved by rita" in r.text
    c.post("/review/M000001/decide", data={"csrf": token, "action": "reject", "reason": "off-brand"})
    rows = list(csv.DictReader(io.StringIO(c.get("/audit.csv").text)))
    assert [(x["member_id"], x["action"], x["reviewer"]) for x in rows] == [("M000000", "approve", "rita"),
                                                                           ("M000001", "reject", "rita")]
    assert rows[0]["reason"].startswith("'=HYPERLINK")  # spreadsheet formulas neutralised
    assert rows[0]["message_hash"] == message_hash(rec["message"])
    assert "attachment" in c.get("/audit.csv").headers["content-disposition"]
    # the re-export (button on the audit page) applies the decisions
    r = c.post("/export", data={"csrf": token})
    assert r.status_code == 200 and "Re-exported: 2" in r.text
    out = {json.loads(x)["member_id"]: json.loads(x) for x in (crafted / "run" / "messages.jsonl").open()}
    assert out["M000000"]["outcome"] == "approved" and out["M000000"]["send"] is True
    assert out["M000000"]["review"]["reviewer"] == "rita"
    assert out["M000001"]["outcome"] == "rejected" and out["M000001"]["send"] is False
    assert json.loads((crafted / "run" / "manifest.json").read_text())["review_overrides"] == 2
    # the CLI path (contentgen export RUN_DIR) gives the same
    assert reexport(crafted / "run")["counts"]["approved"] >= 1


def test_detail_shows_the_trail(crafted):
    c = make_client(crafted)
    login(c)
    html = c.get("/review/M000002").text  # a fallback
    assert "The fallback sent instead" in html
    assert "Withheld by tier" in html and "viewed trail shoes twice" in html
    assert "Write this week&#39;s email." in html  # the prompt
    assert "#1 fallback" in html and "#0 generate" in html
    assert "compliance.creepy-observation" in html  # the failed attempt's finding, listed with its excerpt
    html = c.get("/review/M000000").text  # in review: the message itself, marked at the finding's span
    assert '<mark class="sev-error" data-rule="compliance.creepy-observation"' in html
    assert c.get("/review/NOPE").status_code == 404


def test_recheck_without_campaign_says_what_to_do(crafted):
    c = make_client(crafted)
    token = login(c)
    r = c.post("/review/M000000/check", data={"csrf": token, "basis": "record", "subject": "x", "body": "y"})
    assert r.status_code == 409 and "--campaign" in r.text


def test_dashboard_charts(crafted):
    c = make_client(crafted)
    login(c)
    html = c.get("/dashboard").text
    assert html.count("<svg") >= 4 and "brand.hype" in html and "$0.0207" in html
    assert 'href="/queue?rule=brand.hype"' in html


def test_migration_is_recorded(crafted):
    db = SqliteStore(crafted / "run" / "run.db").db
    assert ("m002_studio",) in db.execute("SELECT name FROM migrations").fetchall()
    names = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    assert {"studio_variants", "studio_comparisons", "studio_previews", "studio_findings_rule_member"} <= names


# ------------------------------------------------------------------------------------------ with the real pipeline


@pytest.fixture(scope="module")
def pipeline_template(tmp_path_factory):
    if not HAS_GATES:
        pytest.skip("contentgen.gates not available yet")
    from tests.fake_openai import FakeOpenAI

    d = tmp_path_factory.mktemp("pipeline")
    fake = FakeOpenAI().start()
    try:
        run_dir, campaign = pipeline_run(d, fake, 60)
        users_file(d / "users.yaml")
        yield d, campaign, fake
    finally:
        fake.stop()


@pytest.fixture
def real(pipeline_template, tmp_path):
    d, campaign, fake = pipeline_template
    shutil.copytree(d / "run", tmp_path / "run")
    shutil.copy(d / "users.yaml", tmp_path / "users.yaml")
    return tmp_path, campaign, fake


@needs_gates
def test_edit_recheck_approve_flows_into_export(real):
    d, campaign, fake = real
    c = make_client(d, base_url=fake.base_url, api_key="test")
    token = login(c, "rita")
    store = SqliteStore(d / "run" / "run.db")
    key = store.db.execute("SELECT member_key FROM members WHERE outcome='rejected' ORDER BY seq").fetchone()
    key = key[0] if key else store.db.execute("SELECT member_key FROM members WHERE outcome='fallback'").fetchone()[0]
    html = c.get(f"/review/{key}").text
    assert "Edit from this attempt" in html and "data-rule=" in html
    # start from the model's first attempt, rewrite the words, re-check with the gates
    html = c.get(f"/review/{key}?from=attempt:0").text
    import html as h

    body = h.unescape(re.search(r'<textarea name="body"[^>]*>(.*?)</textarea>', html, re.S).group(1))
    lines = body.split("\n")
    lines[2] = "We picked a few useful things for the season ahead. Have a look when you have a minute."
    edited = {"csrf": token, "basis": "attempt:0", "subject": "A few picks for the weeks ahead",
              "preheader": "Useful things for the season", "body": "\n".join(lines)}
    for i, m in enumerate(re.findall(r'name="explanation_(\d+)"', html)):
        edited[f"explanation_{m}"] = "It's popular with members this season."
    r = c.post(f"/review/{key}/check", data=edited)
    assert r.status_code == 200
    verdict = re.search(r'class="verdict v-(\w+)"', r.text).group(1)
    assert verdict in ("pass", "review", "fail")
    edits = [d_ for d_ in store.iter_decisions() if d_["action"] == "edit"]
    assert edits and edits[-1]["reason"].startswith(f"re-checked: {verdict}")
    # the same findings as calling the gates directly on that text
    r = c.post(f"/review/{key}/decide", data={**edited, "action": "approve", "reason": "rewritten without tracking"})
    assert r.status_code == 200 and "Decision recorded" in r.text
    dec = store.latest_decisions()[key]
    assert dec["message"]["subject"] == "A few picks for the weeks ahead"
    assert dec["message_hash"] == message_hash(dec["message"])
    assert "We picked a few useful things" in dec["message"]["text"] and dec["message"]["html"].startswith("<!doctype")
    reexport(d / "run")
    out = {json.loads(x)["member_key"] if "member_key" in json.loads(x) else json.loads(x)["member_id"]: json.loads(x)
           for x in (d / "run" / "messages.jsonl").open()}
    rec = out[key]
    assert rec["outcome"] == "approved" and rec["message"]["subject"] == "A few picks for the weeks ahead"


@needs_gates
def test_recheck_uses_the_same_gates_as_check(real):
    d, campaign, fake = real
    c = make_client(d, base_url=fake.base_url, api_key="test")
    token = login(c, "rita")
    key = SqliteStore(d / "run" / "run.db").db.execute(
        "SELECT member_key FROM members WHERE outcome IN ('approved','repaired') ORDER BY seq").fetchone()[0]
    page = c.get(f"/review/{key}").text
    import html as h

    body = h.unescape(re.search(r'<textarea name="body"[^>]*>(.*?)</textarea>', page, re.S).group(1))
    creepy = body.replace("\n\n", "\n\nWe noticed you looked at this 4 times last night at 11:47 PM.\n\n", 1)
    r = c.post(f"/review/{key}/check", data={"csrf": token, "basis": "record", "body": creepy})
    assert re.search(r'class="verdict v-fail"', r.text)
    app = c.app
    ctx = app.state.studio.campaign()
    plan = ctx.plan(key)
    base = json.loads(SqliteStore(d / "run" / "run.db").db.execute(
        "SELECT record FROM members WHERE member_key=?", (key,)).fetchone()[0])["message"]
    _msg, findings, verdict = ctx.recheck(plan, base, {"body": creepy})
    assert verdict == "fail"
    for f in findings:
        assert f'data-rule="{f["rule_id"]}"' in r.text or f["span"] is None


@needs_gates
def test_preview_compares_variants_and_saves_them(real):
    d, campaign, fake = real
    c = make_client(d, base_url=fake.base_url, api_key="test")
    token = login(c, "cole")
    page = c.get("/preview?tier=2").text
    members = re.findall(r'name="member" value="([^"]+)"', page)
    assert members
    import html as h

    form = c.get("/preview/variants/new").text
    tpl = h.unescape(re.search(r'name="file:message.j2"[^>]*>(.*?)</textarea>', form, re.S).group(1))
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
    assert r.text.count('class="cmp-cell"') == 4 and "passed the gates" in r.text
    assert r.text.count('sandbox=""') >= 4 and "Why was this recommended?" in r.text
    db = SqliteStore(d / "run" / "run.db").db
    rows = db.execute("SELECT variant_id, member_id, prompt_tokens FROM studio_previews").fetchall()
    assert len(rows) == 4 and all(pt > 0 for *_, pt in rows)
    assert {v for v, *_ in rows} == set(variants)
    # a copywriter can come back to it later
    assert "warm" in c.get("/preview/history").text
    again = c.get(str(r.url.path)).text
    assert again.count('class="cmp-cell"') == 4
    # the variant's prompt really differed
    prompts = [json.loads(x)["prompt"] for (x,) in db.execute("SELECT result FROM studio_previews")]
    assert sum("warmly" in (p or "") for p in prompts) == 2
