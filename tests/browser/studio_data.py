"""Test data and servers for the studio tests (TestClient and browser).

``crafted_run(dir, n)`` writes a run store through the store API: members in
every queue outcome, attempts with findings at real spans, one message whose
text carries ``<script>``; ``pipeline_run(dir, base_url)`` runs the real
pipeline on sample data against the fake OpenAI server (needs the gates).
``serve(app)`` starts uvicorn on a free loopback port in a thread.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from contentgen.export import message_hash  # noqa: F401  (re-exported for tests)
from contentgen.store import SqliteStore

SEGMENTS = ("Enthusiasts", "Routine Buyers", "Bargain Hunters", "Lapsed VIPs")
PASSWORD = "correct horse battery"
XSS = "<script>alert('x')</script>"


def message(subject: str, body: str, expl: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    import html as _html

    expl = expl or []
    footer = "You're receiving this because you're an AthenaPlus member. | Unsubscribe: https://athenaplus.example/u"
    parts = [body] + [f"Why was this recommended? {t}" for _, t in expl] + \
        ["Shop your picks: https://athenaplus.example/picks", footer.replace(" | ", "\n")]
    html = ("<!doctype html><html><body>" + "".join(f"<p>{_html.escape(p)}</p>" for p in body.split("\n\n"))
            + "</body></html>")
    return {"subject": subject, "preheader": "Fresh picks for the season", "text": "\n\n".join(parts), "html": html,
            "body": body, "cta_text": "Shop your picks", "cta_url": "https://athenaplus.example/picks",
            "footer": footer, "explanations": [{"product_id": p, "text": t} for p, t in expl]}


def finding(rule: str, gate: str, field: str, text: str, needle: str, severity: str = "error") -> dict[str, Any]:
    a = text.index(needle)
    return {"rule_id": rule, "gate": gate, "severity": severity, "field": field, "span": [a, a + len(needle)],
            "excerpt": needle, "message": f"{rule} fired on '{needle}'"}


def crafted_row(i: int, outcome: str, *, segment: str | None = None, tier: int | None = None,
                body: str | None = None) -> dict[str, Any]:
    mid = f"M{i:06d}"
    segment = segment or SEGMENTS[i % len(SEGMENTS)]
    tier = tier or (i % 3) + 1
    body = body or f"Hi there,\n\nWe noticed you browsed trail shoes last night. Guaranteed best prices!\n\n— The AthenaPlus team"
    msg = message(f"Picks for you, member {i}", body, [("P100", "Because you bought running socks in March.")])
    rule, gate, needle = (("compliance.creepy-observation", "compliance", "We noticed you browsed") if i % 2 == 0
                          else ("brand.hype", "brand", "Guaranteed best prices!"))
    f_body = finding(rule, gate, "body", body, needle) if needle in body else None
    findings = [f_body] if f_body else []
    if i % 5 == 0:
        findings.append(finding("facts.price-claim", "facts", "explanations[0].text",
                                msg["explanations"][0]["text"], "running socks", "warning"))
    draft = json.dumps({"subject": msg["subject"], "preheader": msg["preheader"], "body": body,
                        "explanations": msg["explanations"]})
    attempts = [{"n": 0, "kind": "generate", "prompt": f"Write this week's email.\nFraming: value ({mid})",
                 "response": draft, "findings": findings, "prompt_tokens": 900, "completion_tokens": 120}]
    if outcome in ("repaired",):
        attempts.append({"n": 1, "kind": "repair", "prompt": "Fix these problems: ...", "response": draft,
                         "findings": [], "prompt_tokens": 1100, "completion_tokens": 118})
    if outcome in ("fallback", "rejected"):
        attempts.append({"n": 1, "kind": "fallback", "prompt": None, "response": "{}", "findings": []})
    rec = {"member_id": mid, "member_key": mid, "outcome": outcome, "segment": segment, "tier": tier,
           "channel": "email", "variant": "default", "send": outcome in ("approved", "repaired", "fallback"),
           "reason": "", "message": msg, "findings": [] if outcome in ("approved", "repaired") else findings,
           "attempts": 1,
           "plan": {"framing": "value-first", "offers": ["O3"],
                    "products": [{"product_id": "P100", "name": "TrailLite Running Socks", "offer_id": None,
                                  "evidence": [{"source": "purchase", "detail": "bought running socks", "weight": 1}],
                                  "withheld": [{"source": "browsing", "detail": "viewed trail shoes twice",
                                                "weight": 1}]}]}}
    return {"member_key": mid, "seq": i, "member_id": mid, "outcome": outcome, "segment": segment, "tier": tier,
            "record": rec, "attempts": attempts}


OUTCOME_CYCLE = ("review", "rejected", "fallback", "repaired", "approved", "approved", "suppressed")


def _open(run_dir: Path, url: str | None):
    if url is None:
        return SqliteStore(run_dir / "run.db")
    from contentgen.store import open_run_store

    return open_run_store(run_dir, url)


def crafted_run(run_dir: Path, n: int = 60, *, xss: bool = True, url: str | None = None) -> Path:
    """``url``: a PostgreSQL store for the run (the folder gets its store.json); default OUT/run.db."""
    run_dir = Path(run_dir)
    store = _open(run_dir, url)
    try:
        store.set_meta("campaign_id", "crafted-test")
        store.set_meta("state", "complete")
        rows = [crafted_row(i, OUTCOME_CYCLE[i % len(OUTCOME_CYCLE)]) for i in range(n)]
        if xss:
            body = f"Hi there,\n\nBig news {XSS} inside.\n\n— The AthenaPlus team"
            rows.append(crafted_row(n, "review", segment="Browsers", tier=2, body=body))
            rows[-1]["record"]["message"]["subject"] = f"Hello {XSS}"
        store.save_members(rows)
    finally:
        store.close()
    from contentgen.export import write_export

    store = _open(run_dir, url)
    try:
        write_export(run_dir, store, {"campaign_id": "crafted-test", "model": "gpt-4o-mini",
                                      "usage": {"prompt_tokens": 90000, "completion_tokens": 12000,
                                                "cached_tokens": 30000, "requests": 80}, "cost_usd": 0.0207})
    finally:
        store.close()
    return run_dir


def users_file(path: Path) -> Path:
    from contentgen.web.auth import hash_password

    path.write_text(
        "users:\n"
        f"  rita:\n    password: \"{hash_password(PASSWORD)}\"\n    roles: [reviewer]\n"
        f"  cole:\n    password: \"{hash_password(PASSWORD)}\"\n    roles: [copywriter]\n"
        f"  ada:\n    password: \"{hash_password(PASSWORD)}\"\n"
        f"  olga:\n    password: \"{hash_password(PASSWORD)}\"\n    roles: [reviewer, override]\n", encoding="utf-8")
    return path


def mixed_responder(body: dict[str, Any]) -> str:
    """Per member (hash of its prompt): mostly clean drafts, some that need a repair, some never fixed."""
    import hashlib

    from tests.responders import always_bad, bad_then_good, copywriter, plan_of

    products, _, _ = plan_of(body)
    k = hashlib.sha256(repr(products).encode()).digest()[0] % 5
    return (copywriter, copywriter, bad_then_good, always_bad, always_bad)[k](body)


def pipeline_run(work: Path, fake, members: int = 60, *, channels: tuple[str, ...] | None = ("email",),
                 variants: bool = False, store: str | None = None, shard: tuple[int, int] | None = None,
                 out: Path | None = None) -> tuple[Path, Path]:
    """The real pipeline on sample data against the fake OpenAI server: (run_dir, campaign path).

    ``channels``: the campaign's channels (default: e-mail only, the reviewer scenarios edit e-mail bodies;
    None: every channel the members consented to); ``variants``: the campaign runs two prompt variants."""
    from contentgen.pipeline import RunOptions, run_campaign
    from contentgen.sample_data import write_sample_data

    fake.responder = mixed_responder
    paths = {"members": work / "data" / "members.csv", "campaign": work / "data" / "campaign.yaml"}
    if not paths["campaign"].exists():  # (shards of one run share the data)
        paths = write_sample_data(work / "data", members)
    if channels is None:  # every channel: a share of members prefer push, SMS and in-app
        mix_channels(paths["members"])
    extra = ""
    if channels:
        extra += f"channels: [{', '.join(channels)}]\n"
    if variants:
        extra += ("variants:\n  - {name: control, weight: 0.5}\n"
                  "  - {name: warm, weight: 0.5, template: message_warm.j2}\n")
    if extra and extra not in paths["campaign"].read_text():
        paths["campaign"].write_text(paths["campaign"].read_text() + extra)
    out = out or work / "run"
    res = run_campaign(paths["campaign"], RunOptions(out=out, base_url=fake.base_url, api_key="test", store=store,
                                                     shard=shard))
    assert res.status == "complete", res.message
    return out, paths["campaign"]


def mix_channels(members_csv: Path) -> None:
    """Members 1, 2, 3 (mod 4) consent to every channel and prefer push, SMS and in-app."""
    import csv

    with open(members_csv, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields, rows = reader.fieldnames, list(reader)
    for i, row in enumerate(rows):
        if i % 4 and row.get("status") == "active":
            row["channels"] = "email;push;sms;inapp"
            row["preferred_channel"] = ("", "push", "sms", "inapp")[i % 4]
    with open(members_csv, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)


def csrf_of(html: str) -> str:
    import re

    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def sign_in(client, user: str = "ada", password: str = PASSWORD, next_: str = "/queue"):
    """Sign ``client`` (a TestClient) in; returns the session's CSRF token."""
    r = client.get("/login")
    r = client.post("/login", data={"csrf": csrf_of(r.text), "username": user, "password": password, "next": next_})
    assert r.status_code == 200 and r.url.path == next_, (r.status_code, r.text[:500])
    return csrf_of(r.text)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(app):
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("studio server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        t.join(10)


def run_sql(run_dir: Path):
    """(store, conn): the run folder's store and a connection that takes ``?`` placeholders on either backend
    (autocommit), for tests that look at or shift the studio's rows directly. Close the store."""
    from contentgen.store import open_run_store

    store = open_run_store(Path(run_dir))
    return store, store.studio_conn()


def crafted_copy(request, template: Path, dest: Path, members: int) -> Path:
    """A private copy of a crafted run made from ``template`` (a folder with ``run/`` and ``users.yaml``), for
    a fixture parametrized over the store backends: ``request.param`` "sqlite" copies the folder,
    "postgresql" writes the same crafted run into the ``pg_url`` fixture's database."""
    if request.param == "sqlite":
        shutil.copytree(template, dest)
    else:
        url = request.getfixturevalue("pg_url")
        dest.mkdir()
        shutil.copy(template / "users.yaml", dest / "users.yaml")
        crafted_run(dest / "run", members, url=url)
    return dest
