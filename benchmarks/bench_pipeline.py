"""Whole-pipeline benchmarks: the 2.3M-member dry run, and a full run through the fast fake server.

    .venv/bin/python benchmarks/bench_pipeline.py dry-run --members 2300000
    .venv/bin/python benchmarks/bench_pipeline.py full --members 100000 --concurrency 64

Each runs `contentgen` as a child process and reports its wall time and peak RSS
(from the kernel's accounting of the child). `full` starts the fake OpenAI
server as another process (copywriter responder, no added latency), so the
numbers are the engine's own cost on this machine: load, plan, prompt, HTTP,
assemble, four gates, store, export.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable


def sample(dir_: Path, members: int) -> Path:
    campaign = dir_ / "campaign.yaml"
    if not campaign.exists() or sum(1 for _ in open(dir_ / "members.csv", "rb")) - 1 != members:
        shutil.rmtree(dir_, ignore_errors=True)
        subprocess.run([PY, "-m", "contentgen.cli", "sample-data", str(dir_), "--members", str(members)],
                       check=True, stdout=subprocess.DEVNULL)
    return campaign


def timed(cmd: list[str], env=None) -> tuple[float, float, subprocess.CompletedProcess]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.monotonic() - t0
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if p.returncode != 0:
        raise SystemExit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    return wall, max(rss, before) / 1024, p


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["dry-run", "full"])
    ap.add_argument("--members", type=int, default=100_000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/contentgen-bench"))
    a = ap.parse_args()
    print(f"$ .venv/bin/python benchmarks/bench_pipeline.py {a.mode} --members {a.members}"
          + (f" --concurrency {a.concurrency}" if a.mode == "full" else ""))
    data = a.dir / f"data-{a.members}"
    t0 = time.monotonic()
    campaign = sample(data, a.members)
    print(f"sample data ready ({time.monotonic() - t0:.0f}s)")
    if a.mode == "dry-run":
        wall, rss, p = timed([PY, "-m", "contentgen.cli", "run", str(campaign), "--dry-run"])
        report = json.loads(p.stdout)
        print(json.dumps(report, indent=2))
        print(f"dry run of {a.members:,} members: {wall:.0f}s wall ({a.members / wall:,.0f} members/s), "
              f"peak RSS of the dry-run process {report['peak_rss_mb']:,.0f} MB")
        return
    port = free_port()
    env = {"CONTENTGEN_LINK_SECRET": "benchmark-link-secret-not-for-real-sends",  # run signs its links
           **os.environ, "PYTHONPATH": str(REPO)}
    server = subprocess.Popen([PY, "-m", "tests.fake_openai", "--port", str(port), "--responder", "copywriter"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        server.stdout.readline()
        time.sleep(0.5)
        out = a.dir / f"out-{a.members}"
        shutil.rmtree(out, ignore_errors=True)
        wall, rss, p = timed([PY, "-m", "contentgen.cli", "run", str(campaign), "--out", str(out), "--base-url",
                              f"http://127.0.0.1:{port}/v1", "--api-key", "bench", "--model", "gpt-4o-mini",
                              "--concurrency", str(a.concurrency)])
    finally:
        server.terminate()
        server.wait()
    m = json.loads((out / "manifest.json").read_text())
    print(json.dumps({k: m[k] for k in ("total_members", "counts", "usage", "dedup", "cost_usd")}, indent=2))
    print(f"full run of {a.members:,} members: {wall:.0f}s wall, {a.members / wall:,.0f} members/s, "
          f"{m['usage']['requests'] / wall:,.0f} model calls/s, peak RSS {rss:,.0f} MB")


if __name__ == "__main__":
    main()
