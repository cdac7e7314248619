"""The studio as an attacker tries it: sign-in, server-side sessions, throttling, CSRF, hosts, parameters, escaping.

Each test names the attack it stops; each fails when the defence is taken out.
Runs against Starlette's TestClient, and against a real uvicorn server on
loopback where the event loop itself is the point.
"""

from __future__ import annotations

import hashlib
import contextlib
import re
import shutil
import threading
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from contentgen.cli import cli
from contentgen.web import auth
from contentgen.web.app import create_app
from contentgen.web.auth import Accounts, SessionPolicy, hash_password, verify_password
from contentgen.web.commands import serve_settings
from contentgen.web.editor import reason_problem
from contentgen.web.highlight import highlight
from tests.browser.studio_data import PASSWORD, XSS, crafted_copy, crafted_run, csrf_of, run_sql, serve, sign_in, users_file

BASE = "http://localhost"


@pytest.fixture(scope="module")
def crafted_template(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("crafted")
    crafted_run(d / "run", 40)
    users_file(d / "users.yaml")
    return d


@pytest.fixture(params=["sqlite", "postgresql"])
def crafted(request, crafted_template, tmp_path) -> Path:
    """A private copy of the crafted run, on each backend (sessions, sign-in failures and decisions are
    the store's)."""
    return crafted_copy(request, crafted_template, tmp_path / "c", 40)


@pytest.fixture
def crafted_sqlite(crafted_template, tmp_path) -> Path:
    """For tests of rendering and headers only: the SQLite copy."""
    shutil.copytree(crafted_template, tmp_path / "c")
    return tmp_path / "c"


@contextlib.contextmanager
def sql(d: Path):
    """A connection to the run's store taking ``?`` placeholders on either backend (autocommit)."""
    store, conn = run_sql(d / "run")
    try:
        yield conn
    finally:
        store.close()


def make_client(d: Path, **kw) -> TestClient:
    app = create_app(d / "run", accounts=Accounts.load(d / "users.yaml"), **kw)
    return TestClient(app, base_url=kw.pop("base_url", BASE))


def decisions(d: Path) -> int:
    with sql(d) as db:
        return db.execute("SELECT COUNT(*) FROM decisions").fetchone()[0]


# ------------------------------------------------------------------------------------------ sign-in and CSRF


def test_every_screen_requires_sign_in(crafted_sqlite):
    c = make_client(crafted_sqlite)
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
    token = sign_in(c)
    posts = [r.path.replace("{key:path}", "M000000").replace("{cid}", "1")
             for r in c.app.routes if getattr(r, "methods", None) and "POST" in r.methods]
    assert {"/login", "/logout", "/export", "/preview/run", "/review/M000000/decide"} <= set(posts)
    for path in posts:
        assert c.post(path, data={"action": "reject", "reason": "not on brand at all"}).status_code == 403, path
        assert c.post(path, data={"csrf": token + "x", "action": "reject"}).status_code == 403, path
    assert decisions(crafted) == 0
    # the right token passes (and the header form works too)
    r = c.post("/review/M000000/decide", headers={"X-CSRF-Token": token},
               data={"action": "reject", "reason": "not on brand at all"}, follow_redirects=False)
    assert r.status_code == 303 and decisions(crafted) == 1


def test_csrf_token_is_per_session(crafted):
    a, b = make_client(crafted), make_client(crafted)
    ta, tb = sign_in(a), sign_in(b)
    assert ta != tb
    assert a.post("/review/M000000/decide", data={"csrf": tb, "action": "reject"}).status_code == 403


def test_sign_in_form_needs_its_own_csrf_cookie(crafted_sqlite):
    c = make_client(crafted_sqlite)
    r = c.get("/login")
    token = csrf_of(r.text)
    other = make_client(crafted_sqlite)  # a cross-site form post carries no matching cookie
    r = other.post("/login", data={"csrf": token, "username": "ada", "password": PASSWORD})
    assert r.status_code == 403


def test_roles(crafted):
    cw = make_client(crafted)
    token = sign_in(cw, "cole")  # copywriter only
    r = cw.post("/review/M000000/decide", data={"csrf": token, "action": "approve", "reason": "fine by me"})
    assert r.status_code == 403
    rv = make_client(crafted)
    sign_in(rv, "rita")  # reviewer only
    assert rv.get("/preview").status_code == 403
    assert rv.get("/queue").status_code == 200


def test_users_file_must_hold_hashes(tmp_path):
    p = tmp_path / "u.yaml"
    p.write_text("users:\n  bob:\n    password: hunter22\n")
    with pytest.raises(Exception, match="must be a hash"):
        Accounts.load(p)
    p.write_text(f"users:\n  bob:\n    password: \"{hash_password('x' * 9)}\"\n    roles: [boss]\n")
    with pytest.raises(Exception, match="unknown role"):
        Accounts.load(p)
    h = hash_password("s3cret-pass")
    assert h.startswith("scrypt$") and verify_password("s3cret-pass", h) and not verify_password("other", h)
    assert hash_password("s3cret-pass") != h  # salted


# ------------------------------------------------------------------------------------------ server-side sessions


def test_the_cookie_is_a_random_token_the_store_keeps_only_hashed(crafted):
    c = make_client(crafted)
    sign_in(c)
    cookie = c.cookies.get("contentgen_studio")
    assert cookie and "ada" not in cookie and len(cookie) >= 40
    with sql(crafted) as db:
        rows = [tuple(r) for r in db.execute("SELECT token_hash, username FROM studio_sessions").fetchall()]
        assert rows == [(hashlib.sha256(cookie.encode()).hexdigest(), "ada")]
        assert not any(cookie in str(v) for r in db.execute("SELECT * FROM studio_sessions") for v in r)
    forged = TestClient(c.app, base_url=BASE, cookies={"contentgen_studio": cookie[:-4] + "AAAA"})
    assert forged.get("/queue", follow_redirects=False).status_code == 303
    r = make_client(crafted).get("/login")
    sc = r.headers["set-cookie"].lower()
    assert "samesite=strict" in sc and "httponly" in sc
    assert "script-src 'self'" in r.headers["content-security-policy"]


def test_sign_out_ends_the_session_on_the_server(crafted):
    c = make_client(crafted)
    token = sign_in(c)
    stolen = c.cookies.get("contentgen_studio")
    r = c.post("/logout", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 303
    replay = TestClient(c.app, base_url=BASE, cookies={"contentgen_studio": stolen})
    r = replay.get("/queue", follow_redirects=False)
    assert r.status_code == 303 and "ended=signed%20out" in r.headers["location"]
    r = replay.post("/review/M000000/decide", data={"csrf": token, "action": "reject", "reason": "old cookie here"})
    assert r.status_code == 401 and decisions(crafted) == 0
    assert "Your session ended (signed out)" in replay.get("/queue").text


def test_a_new_password_ends_the_old_sessions(crafted):
    c = make_client(crafted)
    sign_in(c, "ada")
    other = make_client(crafted)
    sign_in(other, "rita")
    users = crafted / "users.yaml"
    old = users.read_text()
    new_hash = hash_password("a brand new passphrase")
    ada_line = re.search(r'  ada:\n    password: "([^"]+)"', old).group(1)
    users.write_text(old.replace(ada_line, new_hash))
    c.app.state.accounts._checked = 0.0  # re-read now rather than within the second
    r = c.get("/queue", follow_redirects=False)
    assert r.status_code == 303 and "password%20changed" in r.headers["location"]
    other.app.state.accounts._checked = 0.0
    assert c.app.state.accounts is not other.app.state.accounts
    assert other.get("/queue", follow_redirects=False).status_code == 200  # rita's password did not change
    sign_in(c, "ada", "a brand new passphrase")


def test_an_admin_can_end_sessions_from_the_command_line(crafted):
    a, b = make_client(crafted), make_client(crafted)
    sign_in(a, "ada")
    sign_in(b, "rita")
    runner = CliRunner()
    out = runner.invoke(cli, ["sessions", str(crafted / "run")])
    assert out.exit_code == 0 and "ada" in out.output and "rita" in out.output
    out = runner.invoke(cli, ["sessions", str(crafted / "run"), "--revoke", "ada"])
    assert out.exit_code == 0 and "ended 1 session(s) of ada" in out.output
    assert a.get("/queue", follow_redirects=False).status_code == 303
    assert b.get("/queue", follow_redirects=False).status_code == 200
    out = runner.invoke(cli, ["sessions", str(crafted / "run"), "--revoke-all"])
    assert out.exit_code == 0 and b.get("/queue", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("column, why", [("last_seen", "idle%20timeout"), ("created_at", "session%20too%20old")])
def test_sessions_end_when_idle_or_too_old(crafted, column, why):
    c = make_client(crafted, policy=SessionPolicy(idle_s=1800, max_s=12 * 3600))
    sign_in(c)
    shift = 1801 if column == "last_seen" else 12 * 3600 + 1
    with sql(crafted) as db:
        db.execute(f"UPDATE studio_sessions SET {column} = {column} - ?", (shift,))
    r = c.get("/queue", follow_redirects=False)
    assert r.status_code == 303 and why in r.headers["location"]
    with sql(crafted) as db:
        assert db.execute("SELECT revoked_at IS NOT NULL FROM studio_sessions").fetchone()[0] in (1, True)


# ------------------------------------------------------------------------------------------ throttling


def test_sign_in_failures_lock_the_name_and_the_address(crafted):
    c = make_client(crafted, policy=SessionPolicy(user_failures=5, ip_failures=12))
    tok = csrf_of(c.get("/login").text)

    def attempt(name, pw):
        return c.post("/login", data={"csrf": tok, "username": name, "password": pw}, follow_redirects=False)

    for _ in range(5):
        assert attempt("ada", "wrong guess").status_code == 401
    r = attempt("ada", PASSWORD)  # locked: even the right password waits
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 60 and "Too many failed sign-ins" in r.text
    for _ in range(5):  # an unknown name is counted and locked the same way
        assert attempt("nobody", "wrong guess").status_code == 401
    assert attempt("nobody", "wrong guess").status_code == 429
    for i in range(2):
        assert attempt(f"guess{i}", "x").status_code == 401
    assert attempt("rita", PASSWORD).status_code == 429  # 12 failures from this address: it waits too
    with sql(crafted) as db:
        db.execute("DELETE FROM studio_login_failures WHERE subject LIKE 'ip:%'")
    assert attempt("rita", PASSWORD).status_code == 303


def test_an_unknown_name_costs_one_hash_like_a_known_one(crafted_sqlite, monkeypatch):
    calls: list[tuple] = []
    real = hashlib.scrypt

    def counting(password, *, salt, n, r, p, dklen, **kw):
        calls.append((n, r, p, dklen))
        return real(password, salt=salt, n=n, r=r, p=p, dklen=dklen, **kw)

    acc = Accounts.load(crafted_sqlite / "users.yaml")
    acc.authenticate("nobody", "warm-up")  # the stand-in hash is made once, at first use
    monkeypatch.setattr(auth.hashlib, "scrypt", counting)
    assert acc.authenticate("ada", "wrong") is None
    known = list(calls)
    calls.clear()
    assert acc.authenticate("no-such-user", "wrong") is None
    assert calls == known and len(known) == 1
    calls.clear()
    assert acc.authenticate("x" * 500, "wrong") is None and len(calls) == 1


def test_password_hashing_never_blocks_the_event_loop(crafted_sqlite, monkeypatch):
    gate = threading.Event()
    entered = threading.Event()
    real = auth.verify_password

    def slow_verify(password, stored):
        entered.set()
        gate.wait(30)
        return real(password, stored)

    monkeypatch.setattr(auth, "verify_password", slow_verify)
    app = create_app(crafted_sqlite / "run", accounts=Accounts.load(crafted_sqlite / "users.yaml"))
    with serve(app) as base, httpx.Client(base_url=base, timeout=20) as hc:
        tok = csrf_of(hc.get("/login").text)
        results: list[int] = []
        t = threading.Thread(target=lambda: results.append(
            hc.post("/login", data={"csrf": tok, "username": "ada", "password": "wrong"}).status_code))
        t.start()
        try:
            assert entered.wait(10), "the sign-in never reached the password check"
            # the hash is still running: the event loop must still serve everyone else
            with httpx.Client(base_url=base, timeout=5) as other:
                assert other.get("/static/studio.css").status_code == 200
                assert other.get("/login").status_code == 200
            assert not results
        finally:
            gate.set()
            t.join(20)
        assert results == [401]


# ------------------------------------------------------------------------------------------ cookies and hosts


def test_secure_cookies_and_allowed_hosts(crafted_sqlite):
    c = make_client(crafted_sqlite, secure_cookies=True, allowed_hosts=["studio.example"],
                    base_url="https://studio.example")
    r = c.get("/login")
    assert "secure" in r.headers["set-cookie"].lower()
    token = sign_in(c)
    assert token and c.cookies.get("__Host-contentgen_studio") and c.cookies.get("contentgen_studio") is None
    assert "max-age" in c.get("/queue").headers["strict-transport-security"]
    for host in ("evil.example", "studio.example.evil.example", "localhost"):
        assert c.get("/login", headers={"host": host}).status_code == 400, host
    plain = make_client(crafted_sqlite)
    assert plain.get("/login", headers={"host": "evil.example"}).status_code == 400
    assert plain.get("/login", headers={"host": "127.0.0.1:8700"}).status_code == 200


@pytest.mark.parametrize("host, flag, secure, extra", [
    ("127.0.0.1", None, False, None), ("localhost", None, False, None), ("::1", None, False, None),
    ("0.0.0.0", None, True, None), ("10.1.2.3", None, True, "10.1.2.3"), ("studio.internal", None, True,
                                                                          "studio.internal"),
    ("10.1.2.3", False, False, "10.1.2.3"), ("127.0.0.1", True, True, None)])
def test_serve_turns_secure_cookies_on_beyond_loopback(host, flag, secure, extra):
    got_secure, hosts = serve_settings(host, flag, ())
    assert got_secure is secure
    assert "localhost" in hosts and (extra is None or extra in hosts) and "0.0.0.0" not in hosts


# ------------------------------------------------------------------------------------------ parameters


BAD = [
    "/queue?per_page=99999999999999999999999", "/queue?per_page=7", "/queue?tier=99999999999999999999",
    "/queue?tier=abc", "/queue?sort=drop%20table", "/queue?order=x", "/queue?outcome=nope", "/queue?gate=other",
    "/queue?after=AAAA", "/queue?after=WyJ4IiwyXQ", "/queue?before=" + "9" * 40, "/queue?end=yes",
    "/queue?status=maybe", "/queue?rule=" + "r" * 300, "/queue?q=%00", "/queue?after=WzEsMTE4MDU5MTYyMDcxNzQxMTMwMzQyNF0",
    "/audit?before=99999999999999999999999", "/audit?before=-1",
    "/review/M000000?from=attempt:99999999999999999999", "/review/M000000?from=attempt:7", "/review/M000000?from=x",
    "/review/M000000?from=edit:99999", "/review/NOPE", "/review/M000000?per_page=3",
    "/preview/c/99999999999999999999999", "/preview/c/abc", "/preview/variants/nope",
]


@pytest.mark.parametrize("url", BAD)
def test_malformed_parameters_answer_400_or_404(crafted_template, url):
    c = make_client(crafted_template)
    sign_in(c, "ada")
    r = c.get(url)
    assert r.status_code in (400, 404, 409), (url, r.status_code)
    if r.status_code == 400:
        assert "not valid" in r.text or "at most one" in r.text


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["outcome", "rule", "gate", "severity", "segment", "tier", "status", "q",
                                           "sort", "order", "per_page", "after", "before", "end", "page", "from"]),
                          st.one_of(st.text(max_size=30), st.integers().map(str),
                                    st.sampled_from(["review", "all", "error", "open", "errors", "desc", "25", "1"]))),
                max_size=5))
def test_no_query_string_makes_the_queue_fail(queue_client, params):
    c = queue_client
    for path in ("/queue", "/review/M000000"):
        r = c.get(path, params=params)
        assert r.status_code in (200, 400, 404), (path, params, r.status_code)


@pytest.fixture(scope="module")
def queue_client(crafted_template):
    c = make_client(crafted_template)
    sign_in(c, "ada")
    return c


# ------------------------------------------------------------------------------------------ reasons and escaping


@pytest.mark.parametrize("reason", [".", "", "   ", "\u200b\u200b\u200b", "ok", "ok ok ok", "a b c d", "1234 5678 999",
                                    "!!! ??? ...", "\u200bfine\u200b", "x" * 3000, "Ok\u200b ok\u200b ok"])
def test_a_reason_must_be_words(reason):
    assert reason_problem(reason) is not None


@pytest.mark.parametrize("reason", ["fine by me", "The member asked for this in writing.",
                                    "Preis stimmt mit dem Katalog überein", "価格 は カタログ 通り です ok fine"])
def test_reasons_in_words_pass(reason):
    assert reason_problem(reason) is None


def test_script_in_model_text_renders_as_text(crafted_sqlite):
    c = make_client(crafted_sqlite)
    sign_in(c)
    for path in ("/review/M000040", "/queue?segment=Browsers"):
        html = c.get(path).text
        assert "<script>alert" not in html, path
        assert "&lt;script&gt;" in html, path
    html = c.get("/review/M000040").text
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
    assert out.count("<mark") == 2
    assert "&lt;not&gt;" in out and "<not>" not in out
    xss = highlight(XSS, [{"span": [0, 8], "severity": "error", "rule_id": "r"}])
    assert "<script>" not in str(xss) and "&lt;script&gt;" in str(xss)


def test_a_crash_is_a_plain_500_without_a_traceback(crafted_sqlite, monkeypatch):
    from contentgen.web import dashboard

    def boom(*a, **k):
        raise RuntimeError("secret internals /etc/passwd")

    monkeypatch.setattr(dashboard, "data", boom)
    c = TestClient(create_app(crafted_sqlite / "run", accounts=Accounts.load(crafted_sqlite / "users.yaml")),
                   base_url=BASE, raise_server_exceptions=False)
    sign_in(c)
    r = c.get("/dashboard")
    assert r.status_code == 500 and "secret internals" not in r.text and "Traceback" not in r.text


def test_sessions_survive_a_restart_and_end_everywhere_at_once(crafted):
    a = make_client(crafted)
    sign_in(a)
    cookie = a.cookies.get("contentgen_studio")
    b = TestClient(create_app(crafted / "run", accounts=Accounts.load(crafted / "users.yaml")), base_url=BASE,
                   cookies={"contentgen_studio": cookie})
    assert b.get("/queue", follow_redirects=False).status_code == 200  # another process, same store
    token = csrf_of(a.get("/queue").text)
    a.post("/logout", data={"csrf": token})
    assert b.get("/queue", follow_redirects=False).status_code == 303
    assert time.time()  # (no sleeps: everything above is the store's state)


def test_no_store_query_runs_on_the_event_loop(crafted, monkeypatch):
    """Every page's store work happens in worker threads: a connection opened on the loop's thread fails this."""
    import asyncio

    from contentgen.web import app as app_mod

    on_loop: list[str] = []

    real_open = app_mod.open_run_store

    def watched(*a, **k):
        try:
            asyncio.get_running_loop()
            on_loop.append(threading.current_thread().name)
        except RuntimeError:
            pass
        return real_open(*a, **k)

    monkeypatch.setattr(app_mod, "open_run_store", watched)
    app = create_app(crafted / "run", accounts=Accounts.load(crafted / "users.yaml"))
    with serve(app) as base, httpx.Client(base_url=base, timeout=20, follow_redirects=True) as hc:
        tok = csrf_of(hc.get("/login").text)
        hc.post("/login", data={"csrf": tok, "username": "olga", "password": PASSWORD})
        csrf = csrf_of(hc.get("/queue").text)
        for path in ("/dashboard", "/queue?sort=errors", "/review/M000000", "/audit", "/audit.csv",
                     "/queue?rule=brand.hype&status=open"):
            assert hc.get(path).status_code == 200, path
        r = hc.post("/review/M000001/decide", data={"csrf": csrf, "action": "reject", "basis": "record",
                                                     "reason": "tone is off brand"})
        assert r.status_code == 200
        assert hc.post("/logout", data={"csrf": csrf}).status_code == 200
    assert on_loop == []
