#!/usr/bin/env python3
"""From raw data to attribution, end to end, checked against the planted truth.

    .venv/bin/python scripts/score_demo.py --members 40000 [--work DIR] [--concurrency 32]

1. ``contentgen sample-data DIR --raw`` (the campaign gets lever cells of 10% each);
2. ``contentgen score`` on the raw files;
3. ``contentgen run`` on the scored campaign against the test suite's fake OpenAI server
   (copywriter responder, another process on a loopback port);
4. ``contentgen sample-outcomes`` (planted lever effects and an opt-out gap for members 65+);
5. ``contentgen report``; then prints, per lever and metric, the planted expected lift next to the
   report's estimate and 95% interval, and the fairness audit's flags next to the planted disparities.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def cg(*args: str) -> str:
    p = subprocess.run([PY, "-m", "contentgen.cli", *args], capture_output=True, text=True, cwd=ROOT)
    if p.returncode:
        sys.exit(f"contentgen {' '.join(args)} failed ({p.returncode}):\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}")
    return p.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=40_000)
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    print("command:", " ".join([Path(PY).name, *sys.argv]), flush=True)
    work = args.work or Path(tempfile.mkdtemp(prefix="score_demo_"))
    data, run = work / "data", work / "run"
    t0 = time.perf_counter()
    cg("sample-data", str(data), "--members", str(args.members), "--raw", "--seed", str(args.seed))
    print(cg("score", str(data / "raw"), "--campaign", str(data / "campaign.yaml"), "--out", str(data / "scored")),
          flush=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([PY, "-m", "tests.fake_openai", "--port", str(port), "--responder", "copywriter"],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        out = cg("run", str(data / "scored" / "campaign.yaml"), "--out", str(run), "--base-url",
                 f"http://127.0.0.1:{port}/v1", "--api-key", "demo", "--concurrency", str(args.concurrency))
        print(out.strip().splitlines()[1], flush=True)
    finally:
        server.terminate()
        server.wait(10)
    cg("sample-outcomes", str(run), "--seed", str(args.seed))
    cg("report", str(run), "--outcomes", str(run / "outcomes.csv"))
    rep = json.loads((run / "report" / "report.json").read_text())
    truth = json.loads((run / "outcomes.truth.json").read_text())
    print(f"\n{args.members:,} members, {time.perf_counter() - t0:.0f} s; treated with every lever on: "
          f"{rep['levers']['n_all_on']:,}")
    print(f"{'lever':<8} {'metric':<19} {'planted':>9} {'estimate':>9}  95% CI                 covered")
    covered = total = 0
    for g in rep["levers"]["levers"]:
        for key in ("open_rate", "click_rate", "purchase_rate", "revenue_per_member"):
            m = g["metrics"][key]
            t = truth["expected_lever_lift"][g["lever"]][key]
            lo, hi = m["diff_ci"]
            ok = lo <= t <= hi
            covered += ok
            total += 1
            print(f"{g['lever']:<8} {key:<19} {t:>9.4f} {m['diff']:>9.4f}  [{lo:>8.4f}, {hi:>8.4f}]   "
                  f"{'yes' if ok else 'NO'}   (n off {g['n_off']:,})")
    print(f"intervals covering the planted lift: {covered}/{total}")
    print("fairness flags (planted: opt-out for 65+, churn calibration for en-CA):")
    for f in rep["fairness"]["flags"]:
        print(f"  {f['label']:<24} {f['dimension']:<9} {f['group']:<16} group {f['rate']:.4f} vs "
              f"{f['rest_rate']:.4f}, difference CI {f['diff_ci']} (margin {f['margin']}), served {f['served']}")
    print(f"files: {work}")


if __name__ == "__main__":
    main()
