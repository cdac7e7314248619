"""The streaming engine side by side with the chunked one it replaced (main at 8ea3975), in one run.

    .venv/bin/python benchmarks/bench_stream.py                 # ~10 min on the 2-core box
    .venv/bin/python benchmarks/bench_stream.py --repeat 1 --members 2000 --window-members 1000   # quicker

The old engine is checked out with ``git worktree add --detach`` (removed at the
end) and run with this checkout's interpreter, ``PYTHONPATH`` pointing at it.
Both run as child processes against the fake OpenAI server, itself another
process (``tests/fake_openai.py``, copywriter responder). Runs alternate
old/new, ``--repeat`` times each; medians and ranges are printed.

(a) **window**: the server answers in 0.3 s, 5% of answers in 4 s. Requests in
    flight are measured at the server and averaged over time, from the first
    request to the last; ``steady`` leaves out the first and last 5% of the
    requests (the ramp-up and the drain, when fewer members are left than
    slots). Ratio = average in flight / ``--concurrency``. Run at two
    concurrencies: 300 (the issue's) and ``--feasible`` (what one process's CPU
    can keep busy at that latency).
(c) **throughput**: 5,000 sample members against a zero-latency server:
    members/s end to end (process start to exit: load, plan, prompt, HTTP,
    gates, store, export); ratio new / old.
(d) **projection**: requests/s one process sustains (the CPU-bound rate of
    (a) at concurrency 300, requests over wall time), and the processes a
    2.3M-member week needs at OpenAI's tier 5 (30,000 RPM) from the requests
    per member measured in (c).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
OLD = "8ea3975"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, latency: float = 0.0, tail: tuple[float, float] = (0.0, 0.0)) -> None:
        self.port = free_port()
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.p = subprocess.Popen([PY, "-m", "tests.fake_openai", "--port", str(self.port), "--responder",
                                   "copywriter", "--latency", str(latency), "--latency-tail", str(tail[0]),
                                   str(tail[1])], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  text=True, cwd=REPO)
        self.p.stdout.readline()
        deadline = time.monotonic() + 20
        while True:
            try:
                self.stats()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stats(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/_fake/stats", timeout=60) as r:
            return json.loads(r.read())

    def reset(self, latency: float, tail: tuple[float, float]) -> None:
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/_fake/config", method="POST",
                                     data=json.dumps({"reset": True, "latency_s": latency,
                                                      "latency_tail": list(tail)}).encode(),
                                     headers={"content-type": "application/json"})
        urllib.request.urlopen(req, timeout=30).read()

    def close(self) -> None:
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def sample(dir_: Path, members: int) -> Path:
    campaign = dir_ / "campaign.yaml"
    if not campaign.exists() or sum(1 for _ in open(dir_ / "members.csv", "rb")) - 1 != members:
        shutil.rmtree(dir_, ignore_errors=True)
        subprocess.run([PY, "-m", "contentgen.cli", "sample-data", str(dir_), "--members", str(members)],
                       check=True, stdout=subprocess.DEVNULL, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    return campaign


def old_tree(base: Path, rev: str = OLD) -> Path:
    path = base / f"main-{rev}"
    if not (path / "contentgen").exists():
        subprocess.run(["git", "worktree", "prune"], cwd=REPO, check=True)
        subprocess.run(["git", "worktree", "add", "--detach", "--force", str(path), rev], cwd=REPO, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return path


def run_engine(tree: Path, campaign: Path, out: Path, url: str, concurrency: int) -> tuple[float, dict]:
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": str(tree)}
    env.pop("CONTENTGEN_FAILPOINT", None)
    env.setdefault("CONTENTGEN_LINK_SECRET", "bench-stream-secret")  # signed unsubscribe links (the old engine ignores it)
    t0 = time.monotonic()
    p = subprocess.run([PY, "-m", "contentgen.cli", "run", str(campaign), "--out", str(out), "--base-url", url,
                        "--api-key", "bench", "--model", "gpt-4o-mini", "--concurrency", str(concurrency)],
                       env=env, cwd=tree, capture_output=True, text=True)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        raise SystemExit(f"{tree.name}: failed ({p.returncode})\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}")
    return wall, json.loads((out / "manifest.json").read_text())


def med(xs: list[float]) -> str:
    return f"{statistics.median(xs):,.2f} ({min(xs):,.2f}-{max(xs):,.2f})"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--members", type=int, default=5000, help="(c) members")
    ap.add_argument("--window-members", type=int, default=2000, help="(a) members")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--feasible", type=int, default=48, help="(a) the second, CPU-feasible concurrency")
    ap.add_argument("--dir", type=Path, default=Path("/tmp/contentgen-bench-stream"))
    ap.add_argument("--only", choices=["a", "c"], help="run one part (d uses both)")
    ap.add_argument("--latency", type=float, default=0.3, help="(a) the server's answer time, seconds")
    ap.add_argument("--tail", type=float, nargs=2, default=(0.05, 4.0), metavar=("SHARE", "SECONDS"),
                    help="(a) a share of answers that take SECONDS instead (default 0.05 4.0)")
    ap.add_argument("--old", default=OLD, help=f"the commit to compare with (default {OLD}: main before the window)")
    a = ap.parse_args()
    print("$ .venv/bin/python benchmarks/bench_stream.py " + " ".join(sys.argv[1:]))
    a.dir.mkdir(parents=True, exist_ok=True)
    trees = {"old": old_tree(a.dir, a.old), "new": REPO}
    print(f"old: {a.old} in {trees['old']}; new: {subprocess.check_output(['git', 'rev-parse', '--short', 'HEAD'], cwd=REPO, text=True).strip()} (+ working tree)")
    results: dict = {"a": {}, "c": {}}
    try:
        if a.only in (None, "a"):
            camp = sample(a.dir / f"data-{a.window_members}", a.window_members)
            lat, tail = a.latency, tuple(a.tail)
            print(f"(a) server latency {lat} s, {tail[0]:.0%} of answers in {tail[1]} s")
            server = Server(lat, tail)
            try:
                for conc in (300, a.feasible):
                    for rep in range(a.repeat):
                        for name in ("old", "new"):
                            server.reset(lat, tail)
                            wall, m = run_engine(trees[name], camp, a.dir / f"out-a-{name}", server.url, conc)
                            st = server.stats()
                            span = (st["last_200_t"] or 0) - (st["first_200_t"] or 0)
                            row = {"wall": wall, "ratio": st["in_flight_avg"] / conc,
                                   "active_rps": st["counts"].get("200", 0) / span if span > 0 else 0.0,
                                   "ratio_steady": st["in_flight_avg_steady"] / conc, "peak": st["max_in_flight"],
                                   "rps": st["counts"].get("200", 0) / wall, "members_s": m["total_members"] / wall}
                            results["a"].setdefault((conc, name), []).append(row)
                            print(f"(a) c={conc} {name} #{rep + 1}: in flight avg {st['in_flight_avg']:.1f} "
                                  f"(steady {st['in_flight_avg_steady']:.1f}, peak {st['max_in_flight']}), ratio "
                                  f"{row['ratio']:.2f} (steady {row['ratio_steady']:.2f}), {row['rps']:.0f} req/s over the "
                                  f"process's wall ({row['active_rps']:.0f} while sending), "
                                  f"{row['members_s']:.0f} members/s, wall {wall:.0f}s", flush=True)
            finally:
                server.close()
        if a.only in (None, "c"):
            camp = sample(a.dir / f"data-{a.members}", a.members)
            server = Server(0.0)
            try:
                for rep in range(a.repeat):
                    for name in ("old", "new") if rep % 2 == 0 else ("new", "old"):
                        server.reset(0.0, (0.0, 0.0))
                        wall, m = run_engine(trees[name], camp, a.dir / f"out-c-{name}", server.url, 64)
                        row = {"wall": wall, "members_s": m["total_members"] / wall,
                               "requests": m["usage"]["requests"], "members": m["total_members"],
                               "rps": m["usage"]["requests"] / wall}
                        results["c"].setdefault(name, []).append(row)
                        print(f"(c) {name} #{rep + 1}: {row['members_s']:.0f} members/s, {row['rps']:.0f} requests/s, "
                              f"wall {wall:.1f}s", flush=True)
            finally:
                server.close()
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(trees["old"])], cwd=REPO,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print("\n## summary (median, range)")
    for (conc, name), rows in sorted(results["a"].items()):
        print(f"(a) --concurrency {conc} {name}: in-flight / concurrency {med([r['ratio'] for r in rows])}, "
              f"steady {med([r['ratio_steady'] for r in rows])}, requests/s {med([r['rps'] for r in rows])} "
              f"(while sending {med([r['active_rps'] for r in rows])}), "
              f"peak in flight {max(r['peak'] for r in rows)}")
    if results["c"]:
        new = [r["members_s"] for r in results["c"]["new"]]
        old = [r["members_s"] for r in results["c"]["old"]]
        ratios = [n / o for n, o in zip(new, old)]
        print(f"(c) members/s at zero latency, {a.members:,} members: new {med(new)}, old {med(old)}, "
              f"new/old {med(ratios)}")
    if results["c"] and results["a"]:
        rps = statistics.median(r["active_rps"] for r in results["a"][(300, "new")])
        c = results["c"]["new"][0]
        per_member = c["requests"] / c["members"]
        week = 2_300_000 * per_member
        tier5 = 30_000 / 60
        procs = math.ceil(tier5 / rps)
        print(f"(d) one process sustains {rps:.0f} requests/s while sending ({a.latency} s/{a.tail[1]} s latency, "
              f"--concurrency 300, first to last request); "
              f"{per_member:.2f} requests per member -> {week:,.0f} requests for 2.3M members. Tier 5 "
              f"({tier5:.0f} requests/s) needs {procs} process(es) to be used fully "
              f"({week / tier5 / 60:.0f} min); one process takes {week / rps / 3600:.1f} h")


if __name__ == "__main__":
    main()
