"""The studio's queue reads on SQLite beside a 2-shard PostgreSQL run (the studio sees both shards), the same
members in both, interleaved, median [range] of 7.

    flock /work/heavy.lock .venv/bin/python benchmarks/bench_studio_backends.py [MEMBERS]

PostgreSQL is a throwaway cluster on loopback (tests/pg.py).
"""
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from contentgen.store import SqliteStore, open_store, queue_index as QI
from contentgen.store.studio_db import StudioDB
from contentgen.web import dashboard
from tests.pg import PgCluster

N = int(sys.argv[1]) if len(sys.argv) > 1 else 40000
RULES = [("brand.hype", "brand"), ("brand.caps", "brand"), ("facts.price", "facts"), ("compliance.creepy", "compliance"),
         ("facts.claims", "facts"), ("brand.exclaim", "brand")]
OUT = ("review", "rejected", "fallback", "repaired", "approved", "approved")
rng = random.Random(1)
def row(i):
    o = OUT[i % len(OUT)]
    fs = [{"rule_id": r, "gate": g, "severity": rng.choice(("error", "warning"))} for r, g in rng.sample(RULES, rng.randint(0, 3))]
    return {"member_key": f"M{i:07d}", "seq": i, "member_id": f"M{i:07d}", "outcome": o, "segment": f"S{i % 7}",
            "tier": 1 + i % 3, "record": {"send": True, "channel": "email", "message": {"subject": f"s{i}"}},
            "attempts": [{"n": 0, "kind": "generate", "findings": fs}]}
rows = [row(i) for i in range(N)]
def build(stores):
    for lo in range(0, N, 500):
        chunk = rows[lo:lo + 500]
        for k, s in enumerate(stores):
            part = [r for r in chunk if r["seq"] % len(stores) == k]
            if part: s.save_members(part)
def queries(c):
    n = QI.count(c, QI.Filter())[0]
    return {
        "first page": lambda: QI.page_keys(c, QI.Filter(), limit=50, matches=n),
        "deep page": lambda: QI.page_keys(c, QI.Filter(), limit=50, after=(N // 2, N // 2), matches=n),
        "sort by errors": lambda: QI.page_keys(c, QI.Filter(sort="errors", order="desc"), limit=50,
                                               matches=QI.count(c, QI.Filter(sort="errors", order="desc"))[0]),
        "rule filter page": lambda: QI.page_keys(c, QI.Filter(rule="facts.price"), limit=50,
                                                 matches=QI.count(c, QI.Filter(rule="facts.price"))[0]),
        "rule+segment page": lambda: QI.page_keys(c, QI.Filter(rule="facts.price", segment="S3", tier=2), limit=50,
                                                  matches=QI.count(c, QI.Filter(rule="facts.price", segment="S3", tier=2))[0]),
        "id prefix count": lambda: QI.count(c, QI.Filter(q="M00123")),
        "rows_for 50": lambda: QI.rows_for(c, [f"M{i:07d}" for i in range(0, 200, 4)]),
        "facets": lambda: QI.facets(c),
        "dashboard": lambda: dashboard.data(c, StudioDB(c), Path("/nonexistent")),
    }
c0 = PgCluster(); c0.start()
try:
    url = c0.new_database()
    with tempfile.TemporaryDirectory() as tmp:
        sq = SqliteStore(Path(tmp) / "run.db")
        pgs = [open_store(url, scope=f"shard-{k}-of-2") for k in range(2)]
        t = time.perf_counter(); build([sq]); tb_s = time.perf_counter() - t
        t = time.perf_counter(); build(pgs); tb_p = time.perf_counter() - t
        pgs[0].db.execute("ANALYZE")
        print("command: " + " ".join([Path(sys.executable).name, *sys.argv]))
        print(f"{N:,} members; build: SQLite {tb_s:.1f} s, PostgreSQL (2 shards) {tb_p:.1f} s")
        qs = {"sqlite": queries(sq.studio_conn()), "postgresql": queries(pgs[0].studio_conn())}
        lat = {b: {k: [] for k in qs[b]} for b in qs}
        for _ in range(7):
            for name in qs["sqlite"]:
                for b in ("sqlite", "postgresql"):
                    t = time.perf_counter(); qs[b][name](); lat[b][name].append((time.perf_counter() - t) * 1000)
        print(f"{'query':<20} {'SQLite ms':>22} {'PostgreSQL ms':>22}")
        for name in qs["sqlite"]:
            f = lambda v: f"{statistics.median(v):7.2f} [{min(v):.2f}-{max(v):.2f}]"
            print(f"{name:<20} {f(lat['sqlite'][name]):>22} {f(lat['postgresql'][name]):>22}")
        sq.close(); [p.close() for p in pgs]
finally:
    c0.stop()
