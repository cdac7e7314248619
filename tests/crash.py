"""Kill a campaign run with SIGKILL at many points, resume each time, then prove exactly-once.

Used by ``tests/test_crash_resume.py`` and runnable by a person::

    .venv/bin/python -m tests.crash --members 400 --random-kills 12

Kill points are named failpoints (``CONTENTGEN_FAILPOINT=stage:n``, a real
SIGKILL from inside the process at that point: plan, generate, gate,
store-commit, export-write, export-rename, manifest) plus SIGKILLs sent from
outside at random moments.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from contentgen.export import verify
from contentgen.sample_data import write_sample_data
from tests import responders
from tests.fake_openai import FakeOpenAI

REPO = Path(__file__).resolve().parents[1]
NAMED_POINTS = [
    "plan:3", "generate:2", "gate:4", "store-commit:1", "plan:30", "generate:25", "gate:40", "store-commit:3",
    "generate:60", "gate:90", "store-commit:6", "plan:60", "generate:70", "gate:80", "store-commit:10",
    "export-write:1", "export-write:25", "export-rename:1", "export-rename:2", "manifest:1",
]


def _cmd(campaign: Path, out: Path, base_url: str, store: str | None = None) -> list[str]:
    return [sys.executable, "-m", "contentgen.cli", "run", str(campaign), "--out", str(out), "--base-url", base_url,
            "--api-key", "crash-test", "--concurrency", "4", "--chunk-size", "16",
            *(["--store", store] if store else [])]


def run_with_kills(campaign: Path, out: Path, base_url: str, *, named: list[str], random_kills: int,
                   seed: int = 1, log=print, store: str | None = None) -> dict:
    rng = random.Random(seed)
    env0 = {k: v for k, v in os.environ.items() if k != "CONTENTGEN_FAILPOINT"}
    env0["PYTHONPATH"] = str(REPO)
    kills = 0
    plan = [("named", p) for p in named] + [("random", rng.uniform(0.3, 2.5)) for _ in range(random_kills)]
    rng.shuffle(plan[len(named):])  # named first (they need early progress), random ones after
    for kind, point in plan:
        env = dict(env0)
        if kind == "named":
            env["CONTENTGEN_FAILPOINT"] = str(point)
        p = subprocess.Popen(_cmd(campaign, out, base_url, store), env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
        if kind == "random":
            try:
                p.wait(timeout=point)
            except subprocess.TimeoutExpired:
                p.send_signal(signal.SIGKILL)
        p.wait()
        output = p.stdout.read().decode(errors="replace") if p.stdout else ""
        killed = p.returncode == -signal.SIGKILL
        kills += killed
        if not killed and p.returncode != 0:
            raise AssertionError(f"run failed (exit {p.returncode}) after a kill:\n{output}")
        log(f"{kind:6} {point!s:18} -> {'killed' if killed else f'exit {p.returncode}'}")
    final = subprocess.run(_cmd(campaign, out, base_url, store), env=env0, capture_output=True, text=True)
    if final.returncode != 0:
        raise AssertionError(f"final run failed (exit {final.returncode}):\n{final.stdout}\n{final.stderr}")
    return {"kills": kills, "final_output": final.stdout}


def check_paid_once(fake, out: Path, *, kills: int, concurrency: int = 4) -> dict:
    """No paid request is asked twice unless its answer died with a killed process, and the manifest counts
    every answer the process received (so: every one the provider gave, less those lost in flight)."""
    from collections import Counter

    ok = [json.dumps(q.body, sort_keys=True) for q in fake.requests if q.status == 200]
    repeats = sum(n - 1 for n in Counter(ok).values())
    m = json.loads((out / "manifest.json").read_text())
    recorded = m["usage"]["requests"]
    lost = len(ok) - recorded  # answered by the provider while the process that asked was being killed
    assert 0 <= lost <= kills * concurrency, (len(ok), recorded, kills)
    assert repeats <= lost, f"{repeats} paid prompts were asked again, only {lost} answers were lost in kills"
    return {"answered": len(ok), "recorded": recorded, "lost_in_kills": lost, "repeats": repeats}


def check_exactly_once(members_csv: Path, out: Path) -> dict:
    res = verify(out)  # checksums, counts == manifest, no member twice
    rows = sum(1 for _ in open(members_csv, encoding="utf-8")) - 1
    recs = [json.loads(x) for x in (out / "messages.jsonl").read_text().splitlines()]
    assert len(recs) == rows, f"{len(recs)} records for {rows} input rows"
    import csv

    with open(members_csv, newline="", encoding="utf-8") as fh:
        input_ids = [r["member_id"] for r in csv.DictReader(fh) if r["member_id"]]
    exported = [r["member_id"] for r in recs if r["outcome"] != "invalid"]
    assert len(exported) == len(set(exported)), "a member was exported twice"
    invalid_ids = {r["member_id"] for r in recs if r["outcome"] == "invalid" and r["member_id"]}
    assert set(exported) | invalid_ids == set(input_ids), "an input member is missing from the export"
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--members", type=int, default=400)
    ap.add_argument("--random-kills", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dir", type=Path, default=Path("crash-test"))
    a = ap.parse_args(argv)
    paths = write_sample_data(a.dir / "data", a.members, seed=a.seed)
    out = a.dir / "out"
    with FakeOpenAI(latency_s=0.01) as server:
        server.responder = responders.bad_then_good
        t0 = time.monotonic()
        res = run_with_kills(paths["campaign"], out, server.base_url, named=NAMED_POINTS,
                             random_kills=a.random_kills, seed=a.seed)
        check = check_exactly_once(paths["members"], out)
        paid = check_paid_once(server, out, kills=res["kills"])
    print(f"{res['kills']} SIGKILLs, then a clean finish in {time.monotonic() - t0:.0f}s: "
          f"{check['members']} members exported exactly once, manifest verified: {check['counts']}; "
          f"requests answered {paid['answered']}, recorded {paid['recorded']}, lost with a killed process "
          f"{paid['lost_in_kills']}, asked again {paid['repeats']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
