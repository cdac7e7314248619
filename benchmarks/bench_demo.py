"""The newcomer's demo on the embedded model, quiet and next to a CPU-bound competitor.

Two parts, each interleaved (quiet, busy, quiet, busy, ...) and repeated, with the
median and range of each condition printed side by side:

``demo``     ``contentgen demo --members 20`` as a subprocess (sample data, model start,
             the whole run, the summary): wall time, outcomes, client timeouts and
             retries from the manifest. Targets (issue 19): <= 4 min quiet, <= 8 min busy.
``threads``  single generations of real demo prompts on the embedded server with N
             llama.cpp threads (default 1 and 2): seconds per request and tokens per
             second, quiet and busy. This is what ``local.choose_threads`` is based on.

"busy" runs one extra process spinning on a CPU (``python -c 'while True: pass'``) for
the whole measurement. The 1-minute load average is printed before each measurement,
so a shared machine's other work is visible. Usage::

    .venv/bin/python benchmarks/bench_demo.py demo [--members 20] [--repeat 1]
    .venv/bin/python benchmarks/bench_demo.py threads [--threads 1 2] [--requests 6] [--repeat 2]

On a shared machine wrap it in the heavy lock: ``flock /work/heavy.lock .venv/bin/python ...``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


@contextmanager
def competitor(busy: bool):
    """One CPU-bound process for the duration (busy) or nothing (quiet)."""
    if not busy:
        yield
        return
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        proc.kill()
        proc.wait()


def load1() -> float:
    return os.getloadavg()[0]


def med(xs: list[float]) -> str:
    if not xs:
        return "-"
    return f"{statistics.median(xs):7.1f} [{min(xs):.1f}-{max(xs):.1f}]"


# --------------------------------------------------------------------------------------------- demo

def one_demo(members: int, busy: bool, env: dict[str, str]) -> dict[str, Any]:
    out = Path(tempfile.mkdtemp(prefix="bench-demo-"))
    cmd = [str(ROOT / ".venv/bin/contentgen"), "demo", "--members", str(members), "--out", str(out)]
    la = load1()
    with competitor(busy):
        t0 = time.monotonic()
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        wall = time.monotonic() - t0
    manifest = {}
    mf = out / "run" / "manifest.json"
    if mf.exists():
        manifest = json.loads(mf.read_text())
    res = {"busy": busy, "wall_s": wall, "rc": r.returncode, "load1_before": la,
           "counts": {k: v for k, v in (manifest.get("counts") or {}).items() if v},
           "llm": manifest.get("llm") or {}, "calls": (manifest.get("usage") or {}).get("requests")}
    if r.returncode != 0:
        res["stderr"] = r.stderr[-800:]
    subprocess.run(["rm", "-rf", str(out)])
    return res


def bench_demo(args: argparse.Namespace) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    rows: list[dict[str, Any]] = []
    for i in range(args.repeat):
        for busy in (False, True):
            res = one_demo(args.members, busy, env)
            rows.append(res)
            print(f"round {i + 1} {'busy ' if busy else 'quiet'}: {res['wall_s']:.0f} s, rc {res['rc']}, "
                  f"load1 before {res['load1_before']:.2f}, outcomes {res['counts']}, calls {res['calls']}, "
                  f"timeouts {res['llm'].get('timeouts')}, retries {res['llm'].get('retries')}", flush=True)
            if res.get("stderr"):
                print(res["stderr"])
    q = [r["wall_s"] for r in rows if not r["busy"]]
    b = [r["wall_s"] for r in rows if r["busy"]]
    print(f"\ndemo --members {args.members}: wall seconds, median [range] of {args.repeat}")
    print(f"  quiet                     {med(q)}   target <= 240")
    print(f"  with a CPU-bound process  {med(b)}   target <= 480")
    if q and b:
        print(f"  busy / quiet              {statistics.median(b) / statistics.median(q):7.2f}")


# ------------------------------------------------------------------------------------------ threads

def demo_prompts(n: int, with_plans: bool = False) -> list:
    """The first n prompts the demo would send (sample data, seed 7); with their plans if asked."""
    from contentgen.config import load_campaign
    from contentgen.load import iter_members, load_catalog, load_offers
    from contentgen.plan import Planner
    from contentgen.prompts import Prompts
    from contentgen.sample_data import write_sample_data

    d = Path(tempfile.mkdtemp(prefix="bench-threads-"))
    paths = write_sample_data(d, max(40, n * 3), seed=7)
    c = load_campaign(paths["campaign"])
    catalog, _ = load_catalog(c.inputs.catalog)
    offers, _ = load_offers(c.inputs.offers)
    planner, prompts = Planner(c, catalog, offers), Prompts(c.prompts_dir, c)
    out = []
    for row in iter_members(c.inputs.members, c.inputs.recommendations, catalog):
        if row.member is None:
            continue
        plan = planner.plan(row.member, row.recommendations)
        if plan.action == "send":
            msgs = prompts.build(plan).messages()
            out.append((msgs, plan) if with_plans else msgs)
        if len(out) >= n:
            break
    return out


def bench_threads(args: argparse.Namespace) -> None:
    import httpx

    from contentgen.gates.schema import DRAFT_SCHEMA
    from contentgen.llm.local import local_server

    prompts = demo_prompts(args.requests)
    note = ("Return only one JSON object that matches this JSON schema, with no other text:\n"
            + json.dumps(DRAFT_SCHEMA, separators=(",", ":")))
    results: dict[tuple[int, bool], list[tuple[float, int]]] = {}
    for rnd in range(args.repeat):
        for t in args.threads:
            for busy in (False, True):
                la = load1()
                with local_server(threads=t, threads_batch=t, deadline_s=None) as url, competitor(busy):
                    for msgs in prompts:
                        msgs = [{**msgs[0], "content": msgs[0]["content"] + "\n\n" + note}] + msgs[1:]
                        body = {"messages": msgs, "max_tokens": 300, "temperature": 0.7,
                                "response_format": {"type": "json_object", "schema": DRAFT_SCHEMA}}
                        t0 = time.monotonic()
                        r = httpx.post(f"{url}/chat/completions", json=body, timeout=900)
                        dt = time.monotonic() - t0
                        toks = r.json()["usage"]["completion_tokens"]
                        results.setdefault((t, busy), []).append((dt, toks))
                print(f"round {rnd + 1}: {t} thread(s) {'busy ' if busy else 'quiet'} done "
                      f"(load1 before {la:.2f})", flush=True)
    print(f"\nseconds per request and tokens/s, median [range] of {args.requests} x {args.repeat} requests")
    print(f"{'threads':>8} {'condition':>10} {'s/request':>22} {'tokens/s':>22}")
    for (t, busy), xs in sorted(results.items()):
        secs = [x for x, _ in xs]
        tps = [k / x for x, k in xs if x > 0]
        print(f"{t:>8} {'busy' if busy else 'quiet':>10} {med(secs):>22} {med(tps):>22}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="part", required=True)
    d = sub.add_parser("demo")
    d.add_argument("--members", type=int, default=20)
    d.add_argument("--repeat", type=int, default=1)
    t = sub.add_parser("threads")
    t.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    t.add_argument("--requests", type=int, default=6)
    t.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    print("command: " + " ".join(shlex.quote(a) for a in [".venv/bin/python", "benchmarks/bench_demo.py",
                                                          *sys.argv[1:]]))
    print(f"machine: {os.cpu_count()} CPUs, usable {len(os.sched_getaffinity(0))}, load1 now {load1():.2f}")
    (bench_demo if args.part == "demo" else bench_threads)(args)


if __name__ == "__main__":
    main()
