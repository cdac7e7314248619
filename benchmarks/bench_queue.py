"""The studio at scale: queue pages, dashboard, detail, audit CSV, and four reviewers at once.

    flock /work/heavy.lock .venv/bin/python benchmarks/bench_queue.py --members 50000
    flock /work/heavy.lock .venv/bin/python benchmarks/bench_queue.py --members 500000 --repeat 5

Builds a run store with N queued messages straight in SQL (recursive CTEs: members
with realistic records of ~3 KB, two or three attempts each with prompt and answer,
one to three findings per failed attempt over twelve rules and four gates, a
decision on every tenth member), then runs the ``m003`` back-fill that a store
written before the studio's aggregates gets, and ANALYZE.

Then, interleaved and repeated (each repetition shuffles the cases; median and
range are printed):

- every queue case, the dashboard, a detail page and the audit page through
  Starlette's TestClient (routing, session, SQL, rendering: the server's whole time);
- the same SQL through the old queries (LIMIT/OFFSET, a correlated error count,
  GROUP BY over findings for the dashboard) next to the new ones, as ratios;
- a real ``uvicorn`` server in its own process, driven by 1 and then 4 reviewer
  threads (queue page, message, decision with redirect to the next): latency p50/p90;
- ``/audit.csv`` from that server: time to first byte and to the last row.

Targets (issue 15): worst queue page <= 150 ms, dashboard <= 200 ms, 4 concurrent
reviewers p90 <= 300 ms, audit.csv streamed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from contentgen.store import SqliteStore  # noqa: E402
from contentgen.store import queue_index as QI  # noqa: E402
from contentgen.web.app import create_app  # noqa: E402
from contentgen.web.auth import Accounts, hash_password  # noqa: E402
from contentgen.web.queue import encode_cursor  # noqa: E402

SEGMENTS = ("Enthusiasts", "Routine Buyers", "Bargain Hunters", "Lapsed VIPs", "New Members", "Gift Givers", "Browsers")
OUTCOMES = ("review", "rejected", "fallback", "repaired")
RULES = [("compliance.creepy-time", "compliance"), ("compliance.surveillance", "compliance"),
         ("compliance.tier2-browsing", "compliance"), ("compliance.tier1-personal", "compliance"),
         ("brand.superlatives", "brand"), ("brand.shouting-caps", "brand"), ("brand.exclamations", "brand"),
         ("facts.claims", "facts"), ("facts.price", "facts"), ("facts.offer-dates", "facts"),
         ("schema.invalid-json", "schema"), ("compliance.sensitive-inference", "compliance")]
PASSWORD = "bench-password"
BODY = ("Hi Ana,\n\nThe season's turning, and we've gathered a few things you'll actually use. Have a look when you "
        "have a minute.\n\nTempo Running Socks: $22.99, 15% off until November 30 ($19.54 for members)\n"
        "Wren Ornament Set: $33.99\nMerrymaker Chocolate Truffle Box: $21.99\n\nOrders over $50 ship free through "
        "December 14.\n\n— The AthenaPlus team")


def _record(outcome: str, variant: int) -> str:
    """A record shaped like the pipeline's, ~3 KB, with @ID@ where the member id goes."""
    html = "<!doctype html><html><body>" + "".join(f"<p>{p}</p>" for p in BODY.split("\n\n")) + \
        "<p>" + "x" * 900 + "</p></body></html>"
    footer = ("You're receiving this because you're an AthenaPlus member. | Unsubscribe: "
              "https://athenaplus.example/unsubscribe?t=@ID@ | Manage your preferences: "
              "https://athenaplus.example/preferences | Athena Retail Group, 400 Market Street, Portland, OR 97204")
    expl = [{"product_id": f"P1{variant}{k}", "text": "We recommended this because: (1) You bought similar gear "
                                                      "before. (2) It's in stock now."} for k in range(3)]
    rec = {"member_id": "@ID@", "outcome": outcome, "segment": "Enthusiasts", "tier": 2, "channel": "email",
           "variant": "default", "send": outcome in ("fallback", "repaired"), "reason": "",
           "message": {"subject": f"A few picks for the weeks ahead ({variant})",
                       "preheader": "Useful things for the season, chosen with care", "text": BODY + "\n\n" + footer,
                       "html": html, "body": BODY, "cta_text": "Shop your picks",
                       "cta_url": "https://athenaplus.example/picks", "footer": footer, "explanations": expl},
           "findings": [], "attempts": 2, "send_at_utc": "2026-11-24T17:00:00Z",
           "plan": {"framing": "value-first", "offers": ["O3"],
                    "products": [{"product_id": f"P1{variant}{k}", "name": f"Product {k}", "offer_id": None,
                                  "evidence": [{"source": "purchase", "detail": "bought running socks", "weight": 1}],
                                  "withheld": [{"source": "browsing", "detail": "viewed trail shoes", "weight": 1}]}
                                 for k in range(3)]}}
    return json.dumps(rec, ensure_ascii=False)


def _r(expr: str, salt: int) -> str:
    """A deterministic pseudo-random non-negative integer from ``expr`` (Knuth's multiplicative hash)."""
    return f"((({expr}) + {salt}) * 2654435761 % 4294967296)"


def build(run_dir: Path, n: int) -> tuple[float, float]:
    """(seconds to bulk-insert the store, seconds for the aggregates' back-fill)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    SqliteStore(run_dir / "run.db").close()  # schema and migrations on an empty store
    import sqlite3

    db = sqlite3.connect(run_dir / "run.db", isolation_level=None)
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-262144")
    t0 = time.perf_counter()
    db.execute("BEGIN")
    db.execute("INSERT INTO meta VALUES ('campaign_id', 'bench-queue'), ('state', 'complete')")
    db.execute("CREATE TEMP TABLE tpl (k INTEGER PRIMARY KEY, record TEXT)")
    db.executemany("INSERT INTO tpl VALUES (?, ?)", [(o * 8 + v, _record(out, v)) for o, out in enumerate(OUTCOMES)
                                                     for v in range(8)])
    db.execute("CREATE TEMP TABLE rules (k INTEGER PRIMARY KEY, rule_id TEXT, gate TEXT)")
    db.executemany("INSERT INTO rules VALUES (?,?,?)", [(i, r, g) for i, (r, g) in enumerate(RULES)])
    # outcome code: 10% review, 5% rejected, 55% fallback, 30% repaired
    oc = (f"(CASE WHEN {_r('i', 1)} % 20 < 2 THEN 0 WHEN {_r('i', 1)} % 20 < 3 THEN 1 "
          f"WHEN {_r('i', 1)} % 20 < 14 THEN 2 ELSE 3 END)")
    db.execute("CREATE TEMP TABLE m (i INTEGER PRIMARY KEY, o INTEGER, seg INTEGER, tier INTEGER)")
    db.execute(f"WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < {n - 1}) "
               f"INSERT INTO m SELECT i, {oc}, {_r('i', 2)} % 7, 1 + {_r('i', 3)} % 3 FROM c")
    segs = " ".join(f"WHEN {k} THEN '{s}'" for k, s in enumerate(SEGMENTS))
    outs = " ".join(f"WHEN {k} THEN '{s}'" for k, s in enumerate(OUTCOMES))
    now = time.time()
    db.execute(f"INSERT INTO members SELECT printf('M%07d', i), i, printf('M%07d', i), 'decided', CASE o {outs} END, "
               f"CASE seg {segs} END, tier, replace(t.record, '@ID@', printf('M%07d', i)), {now} "
               f"FROM m JOIN tpl t ON t.k = m.o * 8 + m.i % 8")
    prompt = ("Write this week's email.\n" + "Products (3):\n- product_id: P1 | name: Tempo Running Socks | ...\n" * 12)
    answer = json.dumps({"subject": "A few picks", "preheader": "Useful things", "body": BODY[:300],
                         "explanations": [{"product_id": "P1", "text": "You bought similar gear before."}] * 3})
    # model attempts: review 1, repaired 2, fallback/rejected 2 (+ the fallback's own attempt)
    db.execute("CREATE TEMP TABLE a (i INTEGER, n INTEGER, kind TEXT)")
    db.execute("INSERT INTO a SELECT i, 0, 'generate' FROM m")
    db.execute("INSERT INTO a SELECT i, 1, 'repair' FROM m WHERE o IN (1, 2, 3)")
    db.execute("INSERT INTO a SELECT i, 2, 'fallback' FROM m WHERE o IN (1, 2)")
    db.execute("INSERT INTO attempts SELECT printf('M%07d', i), n, kind, CASE kind WHEN 'fallback' THEN NULL ELSE ? "
               "END, ?, '[]', 900 + n * 200, 160, 0 FROM a", (prompt, answer))
    # findings: 1-3 per failed model attempt (the repaired member's repair passed)
    db.execute("CREATE TEMP TABLE slot (j INTEGER)")
    db.executemany("INSERT INTO slot VALUES (?)", [(0,), (1,), (2,)])
    db.execute(
        f"INSERT INTO findings SELECT printf('M%07d', a.i), a.n, r.rule_id, r.gate, "
        f"CASE WHEN {_r('a.i * 7 + a.n * 3 + s.j', 5)} % 6 = 0 THEN 'warning' ELSE 'error' END, 'body', "
        f"s.j * 10, s.j * 10 + 8, 'excerpt', 'rule fired' "
        f"FROM a JOIN m ON m.i = a.i JOIN slot s ON s.j <= {_r('a.i + a.n', 4)} % 3 "
        f"JOIN rules r ON r.k = ({_r('a.i', 6)} + a.n * 5 + s.j * 3) % 12 "
        f"WHERE a.kind != 'fallback' AND NOT (m.o = 3 AND a.n = 1)")
    # a decision on every tenth member (60% approve, 40% reject)
    db.execute(
        f"INSERT INTO decisions (member_key, reviewer, action, reason, message_hash, message, created_at, basis, "
        f"verdict) SELECT printf('M%07d', i), 'rev' || (i % 4), CASE WHEN {_r('i', 8)} % 5 < 3 THEN 'approve' "
        f"ELSE 'reject' END, 'checked against the catalog and the brief', 'h' || i, "
        f"'{{\"subject\": \"A few picks\"}}', {now} + i, 'attempt:0', 'pass' FROM m WHERE i % 10 = 0")
    db.execute("COMMIT")
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    db.execute("BEGIN")
    QI.rebuild(db)
    db.execute("COMMIT")
    db.execute("ANALYZE")
    backfill_s = time.perf_counter() - t0
    db.close()
    return build_s, backfill_s


def cases(db, n: int) -> list[tuple[str, str]]:
    """(name, url) for the queue pages; deep cursors come from the data, as the page links would."""
    def mid_cursor(sql: str, args=()) -> str:
        rows = db.execute(sql, args).fetchall()
        return encode_cursor(tuple(rows[len(rows) // 2])) if rows else ""

    popular = db.execute("SELECT value FROM studio_counts WHERE dim = 'rule' GROUP BY value ORDER BY SUM(n) DESC "
                         "LIMIT 1").fetchone()[0]
    rare_rule = db.execute("SELECT value FROM studio_counts WHERE dim = 'rule' GROUP BY value ORDER BY SUM(n) "
                           "LIMIT 1").fetchone()[0]
    seq_mid = encode_cursor((n // 2, n // 2))
    rule_mid = mid_cursor("SELECT seq, seq FROM studio_queue_rules WHERE rule_id = ? ORDER BY seq", (popular,))
    err_mid = mid_cursor("SELECT n_errors, seq FROM studio_queue ORDER BY n_errors DESC, seq DESC")
    open_mid = mid_cursor("SELECT seq, seq FROM studio_queue WHERE decided = 0 ORDER BY seq")
    mem_mid = mid_cursor("SELECT member_id, seq FROM studio_queue ORDER BY member_id, seq")
    return [
        ("first page, run order", "/queue"),
        ("deep page (middle of the queue)", f"/queue?after={seq_mid}"),
        ("last page", "/queue?end=1"),
        ("rule filter", f"/queue?rule={popular}"),
        ("rule filter, deep page", f"/queue?rule={popular}&after={rule_mid}"),
        ("rare rule, open only", f"/queue?rule={rare_rule}&status=open"),
        ("gate + segment + tier", "/queue?gate=brand&segment=Lapsed+VIPs&tier=3"),
        ("rule + segment + tier + decided", f"/queue?rule={popular}&segment=Browsers&tier=2&status=decided"),
        ("schema errors only", "/queue?gate=schema&severity=error"),
        ("rejected, sorted by errors", "/queue?outcome=rejected&sort=errors"),
        ("sorted by errors", "/queue?sort=errors"),
        ("sorted by errors, deep page", f"/queue?sort=errors&after={err_mid}"),
        ("open only, deep page", f"/queue?status=open&after={open_mid}"),
        ("sorted by member id desc, deep", f"/queue?sort=member&order=desc&before={mem_mid}"),
        ("member id prefix (100 ids)", f"/queue?q=M{n // 2:07d}"[:-2]),
        ("200 per page", f"/queue?per_page=200&after={seq_mid}"),
        ("every outcome, errors only", "/queue?outcome=all&severity=error"),
    ]


OLD = {
    # the queries the studio ran before this change (for the side-by-side ratios)
    "deep page (OFFSET)": ("SELECT m.member_key, m.member_id, m.outcome, m.segment, m.tier, m.updated_at, "
                           "json_extract(m.record, '$.message.subject') FROM members m WHERE m.outcome IN "
                           "('review','rejected','fallback','repaired') ORDER BY m.seq LIMIT 50 OFFSET :off"),
    "sort by errors": ("SELECT m.member_key FROM members m WHERE m.outcome IN ('review','rejected','fallback',"
                       "'repaired') ORDER BY (SELECT COUNT(*) FROM findings f WHERE f.member_key = m.member_key "
                       "AND f.severity = 'error') DESC, m.seq DESC LIMIT 50"),
    "rule filter count": ("SELECT COUNT(*) FROM members m WHERE m.outcome IN ('review','rejected','fallback',"
                          "'repaired') AND m.member_key IN (SELECT member_key FROM findings WHERE rule_id = :rule)"),
    "dashboard": ("SELECT (SELECT COUNT(*) FROM members GROUP BY outcome LIMIT 1), "
                  "(SELECT COUNT(*) FROM (SELECT rule_id, gate, COUNT(DISTINCT member_key) FROM findings "
                  "GROUP BY rule_id, gate)), (SELECT COUNT(*) FROM (SELECT m.segment, m.tier, "
                  "COUNT(DISTINCT f.member_key) FROM findings f JOIN members m ON m.member_key = f.member_key "
                  "WHERE f.severity = 'error' GROUP BY 1, 2)), (SELECT COUNT(*) FROM (SELECT gate, "
                  "COUNT(DISTINCT member_key) FROM findings WHERE severity = 'error' GROUP BY gate))"),
}


def new_sql(db, name: str, popular: str, n: int):
    from contentgen.web import dashboard

    if name == "deep page (OFFSET)":
        return QI.page_keys(db, QI.Filter(), limit=50, after=(n // 2, n // 2), matches=QI.count(db, QI.Filter())[0])
    if name == "sort by errors":
        f = QI.Filter(sort="errors", order="desc")
        return QI.page_keys(db, f, limit=50, matches=QI.count(db, f)[0])
    if name == "rule filter count":
        return QI.count(db, QI.Filter(rule=popular))
    from contentgen.store.studio_db import StudioDB

    return dashboard.data(db, StudioDB(db), Path("/nonexistent"))


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def fmt(ms: list[float]) -> str:
    return f"{statistics.median(ms):8.1f} ms  [{min(ms):6.1f} – {max(ms):6.1f}]"


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p * (len(xs) - 1))))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SERVER = """
import sys, uvicorn
from pathlib import Path
from contentgen.web.app import create_app
from contentgen.web.auth import Accounts
app = create_app(Path(sys.argv[1]), accounts=Accounts.load(Path(sys.argv[2])))
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[3]), log_level="warning")
"""


def reviewers(base: str, names: list[str], rules: list[str], rounds: int) -> dict[str, list[float]]:
    """Each reviewer: queue page (their rule, open only), the first message, a decision (redirect to the next)."""
    lat: dict[str, list[float]] = {"queue": [], "detail": [], "decide+next": []}
    lock = threading.Lock()
    errors: list[str] = []

    def one(name: str, rule: str) -> None:
        with httpx.Client(base_url=base, timeout=60) as c:
            tok = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
            r = c.post("/login", data={"csrf": tok, "username": name, "password": PASSWORD}, follow_redirects=True)
            csrf = re.search(r'name="csrf" value="([^"]+)"', r.text).group(1)
            qs = f"rule={rule}&status=open"
            for _ in range(rounds):
                t = time.perf_counter()
                q = c.get(f"/queue?{qs}")
                t1 = time.perf_counter()
                m = re.search(r'<a class="mid" href="(/review/[^"]+)"', q.text)
                if not m:
                    return
                href = m.group(1).replace("&amp;", "&")
                d = c.get(href)
                t2 = time.perf_counter()
                key = href.split("/review/", 1)[1].split("?", 1)[0]
                r = c.post(f"/review/{key}/decide", data={"csrf": csrf, "action": "reject", "basis": "record",
                                                           "f": qs, "reason": "not for this member this week"},
                           follow_redirects=True)
                t3 = time.perf_counter()
                if q.status_code != 200 or d.status_code != 200 or r.status_code != 200:
                    errors.append(f"{q.status_code} {d.status_code} {r.status_code}")
                with lock:
                    lat["queue"].append((t1 - t) * 1000)
                    lat["detail"].append((t2 - t1) * 1000)
                    lat["decide+next"].append((t3 - t2) * 1000)

    threads = [threading.Thread(target=one, args=(nm, rules[i % len(rules)])) for i, nm in enumerate(names)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"reviewer requests failed: {errors[:5]}")
    return lat


def save_cost(members: int = 6000, chunk: int = 250, repeat: int = 3, pg_url: str | None = None) -> None:
    """What keeping the aggregates costs the run: save_members with and without queue_index.on_save,
    fresh stores (PostgreSQL: a fresh scope of one database), interleaved; SQLite, and PostgreSQL when
    ``pg_url`` is given."""
    import uuid

    from contentgen import store as store_mod

    rng = random.Random(3)
    recs = [json.loads(_record(o, v)) for o in OUTCOMES for v in range(2)]

    def rows(lo: int, hi: int) -> list[dict]:
        out = []
        for i in range(lo, hi):
            rec = dict(recs[i % len(recs)], member_id=f"M{i:07d}")
            atts = [{"n": n, "kind": "generate" if n == 0 else "repair", "prompt": "p" * 1200, "response": "r" * 500,
                     "findings": [{"rule_id": RULES[rng.randrange(12)][0], "gate": "brand", "severity": "error",
                                   "field": "body", "span": [0, 5], "excerpt": "x", "message": "m"}
                                  for _ in range(rng.randint(1, 3))], "prompt_tokens": 900, "completion_tokens": 120}
                    for n in range(2)]
            out.append({"member_key": f"M{i:07d}", "seq": i, "member_id": f"M{i:07d}", "outcome": rec["outcome"],
                        "segment": SEGMENTS[i % 7], "tier": 1 + i % 3, "record": rec, "attempts": atts})
        return out

    batches = [rows(lo, min(lo + chunk, members)) for lo in range(0, members, chunk)]
    real = store_mod.queue_index.on_save
    backends = ["sqlite"] + (["postgresql"] if pg_url else [])
    labels = [(b, a) for b in backends for a in ("with aggregates", "without")]
    times: dict[tuple[str, str], list[float]] = {k: [] for k in labels}
    for _ in range(repeat):
        for backend, label in labels:
            with tempfile.TemporaryDirectory() as tmp:
                st = (SqliteStore(Path(tmp) / "run.db") if backend == "sqlite"
                      else store_mod.open_store(pg_url, scope=f"bench-{uuid.uuid4().hex[:8]}"))
                store_mod.queue_index.on_save = real if label == "with aggregates" else (lambda db, rows: None)
                try:
                    t = time.perf_counter()
                    for b in batches:
                        st.save_members(b)
                    times[(backend, label)].append((time.perf_counter() - t) * 1000 * 1000 / members)
                finally:
                    store_mod.queue_index.on_save = real
                    st.close()
    for backend in backends:
        w, wo = (times[(backend, "with aggregates")], times[(backend, "without")])
        mw, mwo = statistics.median(w), statistics.median(wo)
        print(f"\nsave_members on {backend}, {members:,} members in chunks of {chunk} (ms per 1,000 members, "
              f"median of {repeat}): with aggregates {mw:.0f} ms [{min(w):.0f}-{max(w):.0f}], "
              f"without {mwo:.0f} ms [{min(wo):.0f}-{max(wo):.0f}]: x{mw / mwo:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--members", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--rounds", type=int, default=25, help="decisions per reviewer in the concurrency test")
    ap.add_argument("--keep", type=Path, help="build the store here (and keep it) instead of a temp folder")
    ap.add_argument("--save-cost-only", action="store_true", help="only what the aggregates cost the run's saves")
    ap.add_argument("--pg", action="store_true", help="the save cost on PostgreSQL too (a throwaway cluster on "
                                                      "loopback, tests/pg.py)")
    args = ap.parse_args()
    print("command: " + " ".join([Path(sys.executable).name, *sys.argv]))
    if args.pg:
        from tests.pg import PgCluster

        cluster = PgCluster()
        if cluster.why_not:
            raise SystemExit(f"--pg: {cluster.why_not}")
        try:
            cluster.start()
            save_cost(pg_url=cluster.new_database())
        finally:
            cluster.stop()
    else:
        save_cost()
    if args.save_cost_only:
        return
    with tempfile.TemporaryDirectory() as tmp:
        run = args.keep or Path(tmp) / "run"
        build_s, backfill_s = build(run, args.members)
        store = SqliteStore(run / "run.db")
        db = store.db
        nf = db.execute("SELECT COUNT(*) FROM findings").fetchone()[0]
        nd = db.execute("SELECT COUNT(*) FROM decisions").fetchone()[0]
        size = (run / "run.db").stat().st_size / 2**30
        print(f"store: {args.members:,} queued messages, {nf:,} findings, {nd:,} decisions, {size:.2f} GiB "
              f"(bulk insert {build_s:.0f} s, aggregates back-fill {backfill_s:.1f} s)")
        users = run.parent / "users.yaml"
        h = hash_password(PASSWORD)
        users.write_text("users:\n" + "".join(f"  rev{i}:\n    password: \"{h}\"\n" for i in range(4)))
        app = create_app(run, accounts=Accounts.load(users))
        c = TestClient(app, base_url="http://localhost")
        tok = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
        c.post("/login", data={"csrf": tok, "username": "rev0", "password": PASSWORD})
        page_cases = cases(db, args.members)
        mid_key = f"M{args.members // 2:07d}"
        other = [("dashboard", "/dashboard"), ("message detail (no campaign)", f"/review/{mid_key}"),
                 ("message detail, walking a rule filter", f"/review/{mid_key}?rule={RULES[0][0]}&status=open"),
                 ("audit log page", "/audit")]
        allc = page_cases + other
        for _, url in allc:  # warm: caches, the first thread's connection
            r = c.get(url)
            assert r.status_code == 200, (url, r.status_code, r.text[:300])
        times: dict[str, list[float]] = {name: [] for name, _ in allc}
        totals: dict[str, str] = {}
        rng = random.Random(1)
        for _ in range(args.repeat):
            order = list(allc)
            rng.shuffle(order)
            for name, url in order:
                t = time.perf_counter()
                r = c.get(url)
                times[name].append((time.perf_counter() - t) * 1000)
                m = re.search(r'<b id="total">([\d,]+)</b>', r.text)
                totals[name] = m.group(1) if m else ""
        print(f"\n{'queue page (TestClient: the server’s whole time)':52s} {'median':>11s}  {'[min – max]':>17s}  rows")
        for name, _ in page_cases:
            print(f"{name:52s} {fmt(times[name])}  {totals[name]}")
        worst = max(max(times[nm]) for nm, _ in page_cases)
        print(f"worst queue page: {worst:.1f} ms (target <= 150 ms)")
        print()
        for name, _ in other:
            print(f"{name:52s} {fmt(times[name])}")
        # the old queries next to the new ones, interleaved
        popular = db.execute("SELECT value FROM studio_counts WHERE dim = 'rule' GROUP BY value ORDER BY SUM(n) DESC "
                             "LIMIT 1").fetchone()[0]
        old_n = min(args.repeat, 3)
        print(f"\n{'SQL: old query vs new (same run, interleaved)':36s} {'old median':>11s} {'new median':>11s}  ratio")
        for name, sql in OLD.items():
            old_t, new_t = [], []
            for _ in range(old_n):
                old_t += timed(lambda: db.execute(sql, {"off": args.members // 2, "rule": popular}).fetchall(), 1)
                new_t += timed(lambda: new_sql(db, name, popular, args.members), 1)
            print(f"{name:36s} {statistics.median(old_t):8.1f} ms {statistics.median(new_t):8.1f} ms  "
                  f"{statistics.median(old_t) / max(statistics.median(new_t), 1e-3):6.0f}x")
        app.state.studio.close()
        store.close()
        # a real server in its own process: 1 reviewer, then 4 at once; then the audit CSV
        port = free_port()
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        proc = subprocess.Popen([sys.executable, "-c", SERVER, str(run), str(users), str(port)], env=env)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(base + "/login", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("server did not start")
                time.sleep(0.2)
            rules = [r for r, _ in RULES[:8]]
            print(f"\n{'reviewers (uvicorn process, loopback)':40s} {'p50':>8s} {'p90':>8s} {'max':>8s}  requests")
            for label, names in (("1 reviewer", ["rev0"]), ("4 reviewers at once", ["rev0", "rev1", "rev2", "rev3"])):
                lat = reviewers(base, names, rules if len(names) > 1 else rules[4:], args.rounds)
                every = [x for v in lat.values() for x in v]
                for kind, xs in [*lat.items(), ("all requests", every)]:
                    print(f"{label + ': ' + kind:40s} {pct(xs, .5):6.1f}ms {pct(xs, .9):6.1f}ms {max(xs):6.1f}ms  "
                          f"{len(xs)}")
            with httpx.Client(base_url=base, timeout=120) as hc:
                tok = re.search(r'name="csrf" value="([^"]+)"', hc.get("/login").text).group(1)
                hc.post("/login", data={"csrf": tok, "username": "rev0", "password": PASSWORD})
                for _ in range(2):
                    t = time.perf_counter()
                    first = None
                    rows = 0
                    with hc.stream("GET", "/audit.csv") as r:
                        for chunk in r.iter_text():
                            if first is None:
                                first = time.perf_counter() - t
                            rows += chunk.count("\n")
                    total = time.perf_counter() - t
                print(f"audit.csv: {rows - 1:,} rows, first byte {first * 1000:.0f} ms, last byte {total * 1000:.0f} ms "
                      f"(streamed in chunks of 2,000 decisions)")
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
