"""Studio queue page at scale: 50,000 messages in the queue, server time per page.

    .venv/bin/python benchmarks/bench_queue.py [--members 50000] [--repeat 7]

Builds a run store with synthetic rows (executemany: members, attempts,
findings across four gates and a dozen rules), then times the queue page
through Starlette's TestClient (routing, session, SQL, Jinja rendering: the
whole server side) for several filters, sorts and pages, and the SQL alone.
Prints the median and worst time in ms. Target: < 300 ms a page.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from starlette.testclient import TestClient  # noqa: E402

from contentgen.store import SqliteStore  # noqa: E402
from contentgen.web import queue as Q  # noqa: E402
from contentgen.web.app import create_app  # noqa: E402
from contentgen.web.auth import Accounts  # noqa: E402

SEGMENTS = ("Enthusiasts", "Routine Buyers", "Bargain Hunters", "Lapsed VIPs", "New Members", "Gift Givers", "Browsers")
OUTCOMES = ("review", "rejected", "fallback", "repaired")
RULES = [("compliance.creepy-time", "compliance"), ("compliance.surveillance", "compliance"),
         ("compliance.tier2-browsing", "compliance"), ("compliance.tier1-personal", "compliance"),
         ("brand.superlatives", "brand"), ("brand.shouting-caps", "brand"), ("brand.exclamations", "brand"),
         ("facts.claims", "facts"), ("facts.price", "facts"), ("facts.offer-dates", "facts"),
         ("schema.invalid-json", "schema"), ("compliance.sensitive-inference", "compliance")]


def build(run_dir: Path, n: int, seed: int = 7) -> float:
    rng = random.Random(seed)
    t0 = time.perf_counter()
    store = SqliteStore(run_dir / "run.db")
    store.set_meta("campaign_id", "bench-queue")
    db = store.db
    body = "Hi there,\n\nWe gathered a few things for the season ahead. Have a look when you have a minute."
    members, attempts, findings = [], [], []
    now = time.time()
    for i in range(n):
        key = f"M{i:07d}"
        seg, tier, outcome = rng.choice(SEGMENTS), rng.randint(1, 3), rng.choice(OUTCOMES)
        rec = {"member_id": key, "outcome": outcome, "segment": seg, "tier": tier, "send": outcome != "rejected",
               "message": {"subject": f"A few picks for the weeks ahead ({i})", "preheader": "Useful things",
                           "body": body, "text": body, "html": "", "explanations": []}, "findings": []}
        members.append((key, i, key, "decided", outcome, seg, tier, json.dumps(rec), now))
        for a in range(2 if outcome in ("repaired", "fallback", "rejected") else 1):
            fs = rng.sample(RULES, rng.randint(1, 3))
            attempts.append((key, a, "generate" if a == 0 else "repair", "prompt", "{}", "[]", 900, 120, 0))
            for rule, gate in fs:
                s = rng.randint(0, 60)
                findings.append((key, a, rule, gate, rng.choice(("error", "error", "warning")), "body", s, s + 12,
                                 body[s:s + 12], f"{rule} fired"))
    db.execute("BEGIN")
    db.executemany("INSERT INTO members VALUES (?,?,?,?,?,?,?,?,?)", members)
    db.executemany("INSERT INTO attempts VALUES (?,?,?,?,?,?,?,?,?)", attempts)
    db.executemany("INSERT INTO findings VALUES (?,?,?,?,?,?,?,?,?,?)", findings)
    db.execute("COMMIT")
    db.execute("ANALYZE")
    store.close()
    return time.perf_counter() - t0


CASES = [
    ("first page, default sort", "/queue"),
    ("page 500 of 1,000 (offset 24,950)", "/queue?page=500"),
    ("last page", "/queue?page=1000"),
    ("filter rule", "/queue?rule=compliance.surveillance"),
    ("filter rule, deep page", "/queue?rule=compliance.surveillance&page=200"),
    ("filter gate + segment + tier", "/queue?gate=brand&segment=Lapsed+VIPs&tier=3"),
    ("filter outcome, sort by segment desc", "/queue?outcome=rejected&sort=segment&order=desc"),
    ("sort by error count", "/queue?sort=errors&order=desc"),
    ("open only (no decision)", "/queue?status=open&page=50"),
    ("member id prefix", "/queue?q=M00123"),
    ("200 per page", "/queue?per_page=200&page=10"),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--members", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        build_s = build(run, args.members)
        db = SqliteStore(run / "run.db").db
        nf = db.execute("SELECT COUNT(*) FROM findings").fetchone()[0]
        print(f"store: {args.members:,} messages in the queue, {nf:,} findings (built in {build_s:.1f}s)")
        app = create_app(run, accounts=Accounts.single("bench", "bench-password"))
        c = TestClient(app)
        tok = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
        c.post("/login", data={"csrf": tok, "username": "bench", "password": "bench-password"})
        c.get("/queue")  # warm: facets cache, page cache
        print(f"{'case':44s} {'page median':>12s} {'page max':>9s} {'SQL median':>11s}  rows")
        worst = 0.0
        for name, url in CASES:
            times = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                r = c.get(url)
                times.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200, (url, r.status_code)
            total = re.search(r'<b id="total">(\d+)</b>', r.text).group(1)
            qs = url.split("?", 1)[1] if "?" in url else ""
            f = Q.QueueFilter.from_query(dict(p.split("=", 1) for p in qs.split("&") if p))
            f.segment = f.segment.replace("+", " ")
            sql = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                Q.query(db, f)
                sql.append((time.perf_counter() - t) * 1000)
            worst = max(worst, max(times))
            print(f"{name:44s} {statistics.median(times):9.1f} ms {max(times):6.1f} ms {statistics.median(sql):8.1f} ms"
                  f"  {int(total):,}")
        t = time.perf_counter()
        Q.facets(db)
        print(f"filter menus (facets, cached until the store changes): {(time.perf_counter() - t) * 1000:.1f} ms")
        print(f"worst page: {worst:.1f} ms (target < 300 ms)")


if __name__ == "__main__":
    main()
