"""The run store at scale, SQLite beside PostgreSQL: what a run asks of its store, for N members.

    .venv/bin/python benchmarks/bench_store.py --members 230000 --repeats 3

Each repeat runs both backends (order alternating) as child processes; a child writes N members the way a run
does (``save_members`` in chunks of 256: the record, two attempts with prompt and answer, their findings; one
ledger row and cache entry per paid answer, ``done_keys`` per block of 256 before), then streams the export
(``iter_records`` in input order, each record serialized). The parent reports each child's wall time and peak
RSS (the kernel's accounting of the child, ``wait4``): median and range, and the PostgreSQL/SQLite ratio per
repeat. PostgreSQL is a throwaway cluster on loopback (``tests/pg.py``: fsync off, as for the tests; a
production server with fsync on pays for its WAL flushes on top).

Member rows have the sizes of a real run's (record ~1.9 kB JSON, prompt ~2.4 kB, answer ~0.6 kB).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PROMPT = ("You write one loyalty e-mail for AthenaPlus. Brand voice: warm, concrete, no pressure. " * 28)[:2400]
ANSWER = json.dumps({"subject": "Your picks for this week, Ana", "preheader": "Three finds we think you'll like",
                     "body": "Hi Ana, " + "we picked these for you because you love trail gear. " * 9})


def _row(i: int) -> dict:
    key = f"m{i:09d}"
    findings = ([{"rule_id": "brand.banned-words", "gate": "brand", "severity": "error", "field": "body",
                  "span": [10, 17], "excerpt": "no rush", "message": "banned phrase"}] if i % 7 == 0 else [])
    record = {"member_key": key, "member_id": f"A{i:08d}", "outcome": "approved", "send": True, "channel": "email",
              "variant": "control", "segment": "outdoor", "tier": 2,
              "message": json.loads(ANSWER) | {"footer": "Unsubscribe: https://athenaplus.example/u/" + "x" * 40},
              "offers": [{"id": f"O{j}", "product_id": f"P{j:05d}", "valid_until": "2026-12-31"} for j in range(3)],
              "findings": findings, "usage": {"prompt_tokens": 603, "completion_tokens": 85}}
    return {"member_key": key, "seq": i, "member_id": f"A{i:08d}", "outcome": "approved", "segment": "outdoor",
            "tier": 2, "record": record,
            "attempts": [{"n": 1, "kind": "generate", "prompt": PROMPT, "response": ANSWER, "findings": findings,
                          "prompt_tokens": 603, "completion_tokens": 85},
                         {"n": 2, "kind": "repair" if findings else "check", "prompt": None, "response": None,
                          "findings": [], "prompt_tokens": 0, "completion_tokens": 0}]}


def child(url: str, members: int) -> None:
    from contentgen.store import open_store

    store = open_store(url, scope="")
    t0 = time.perf_counter()
    for start in range(0, members, 256):
        rows = [_row(i) for i in range(start, min(members, start + 256))]
        assert not store.done_keys(r["member_key"] for r in rows)
        for r in rows[::2]:  # about 0.6 paid answers per member, each with its ledger row and cache entry
            store.record_answer("k" + r["member_key"], {"text": ANSWER, "finish_reason": "stop"},
                                {"prompt_tokens": 603, "completion_tokens": 85}, 0.0001, cache=True)
        store.save_members(rows)
    t1 = time.perf_counter()
    n = 0
    with open(os.devnull, "w") as sink:
        for rec in store.iter_records():
            sink.write(json.dumps(rec, ensure_ascii=False) + "\n")
            n += 1
    t2 = time.perf_counter()
    assert n == members, n
    store.close()
    print(json.dumps({"save_s": t1 - t0, "export_s": t2 - t1}))


def run_child(url: str, members: int) -> dict:
    import subprocess

    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, __file__, "_child", url, str(members)], stdout=subprocess.PIPE,
                         text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    out = p.stdout.read() if p.stdout else ""
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        raise SystemExit(f"child failed ({status}) on {url}")
    return {"wall_s": wall, "rss_mb": usage.ru_maxrss / 1024, **json.loads(out.strip().splitlines()[-1])}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        child(sys.argv[2], int(sys.argv[3]))
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--members", type=int, default=230_000)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    from tests.pg import PgCluster

    cluster = PgCluster()
    if cluster.why_not:
        raise SystemExit(cluster.why_not)
    cluster.start()
    res: dict[str, list[dict]] = {"sqlite": [], "postgresql": []}
    try:
        with tempfile.TemporaryDirectory(prefix="contentgen-bench-store-") as tmp:
            for rep in range(a.repeats):
                order = ["sqlite", "postgresql"] if rep % 2 == 0 else ["postgresql", "sqlite"]
                for backend in order:
                    url = (f"sqlite:///{tmp}/run-{rep}.db" if backend == "sqlite" else cluster.new_database())
                    r = run_child(url, a.members)
                    res[backend].append(r)
                    print(f"repeat {rep} {backend:10} wall {r['wall_s']:7.1f} s (save {r['save_s']:.1f}, export "
                          f"{r['export_s']:.1f})  peak RSS {r['rss_mb']:.0f} MB", flush=True)
                    if backend == "sqlite":  # free the disk before the next child
                        Path(url[len("sqlite:///"):]).unlink()
                    else:
                        import psycopg

                        with psycopg.connect(cluster.url(), autocommit=True) as conn:
                            conn.execute(f'DROP DATABASE "{url.rsplit("/", 1)[1]}"')
    finally:
        cluster.stop()

    def summary(key: str, backend: str) -> str:
        v = [r[key] for r in res[backend]]
        return f"{statistics.median(v):.1f} ({min(v):.1f}-{max(v):.1f})"

    print(f"\nmembers: {a.members:,}; repeats: {a.repeats}")
    print("| backend | wall s | save s | export s | peak RSS MB |")
    print("|---|---:|---:|---:|---:|")
    for b in ("sqlite", "postgresql"):
        print(f"| {b} | {summary('wall_s', b)} | {summary('save_s', b)} | {summary('export_s', b)} | "
              f"{summary('rss_mb', b)} |")
    ratios = [p["wall_s"] / s["wall_s"] for s, p in zip(res["sqlite"], res["postgresql"])]
    print(f"PostgreSQL / SQLite wall, per repeat: median {statistics.median(ratios):.2f}x "
          f"({min(ratios):.2f}-{max(ratios):.2f}x)")


if __name__ == "__main__":
    main()
