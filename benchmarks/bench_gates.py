"""Throughput of the four gates on one core.

    .venv/bin/python benchmarks/bench_gates.py [N]

Builds N (default 2,000) varied messages from the labelled cases in tests/cases/ and
shared/cases/public.jsonl (each with its own context), then runs schema + facts + brand +
compliance on every message and prints messages/second of CPU time (one process, one thread, so
one core; wall time is printed too, and matches it on an idle machine). Each mode runs in
BENCH_RUNS (default 3) fresh processes and the median is reported. Target: >= 2,000 msg/s.

Two figures: "cold" is the first pass over a fresh process (rules loaded, nothing else warmed:
every case's catalog indexed, every rule regex combination compiled during the timing); "steady"
first runs a warm-up set that shares no text with the measured set (every field of every case
varied with another marker) so that per-catalog indexes and compiled regexes exist, as they do
a few messages into a long batch run, then times the same measured set in a fresh process.
Per-text caches cannot help across the two sets: in the measured set every body and preheader
is new, and subjects, explanations, CTAs and footers repeat only as they do between cases.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from contentgen.check import parse_case  # noqa: E402
from contentgen.gates import load_rules, run_gates  # noqa: E402
from contentgen.gates.schema import validate_message_dict  # noqa: E402
from contentgen.models import Explanation, RenderedMessage  # noqa: E402


#: the labelled sets the corpus is built from (named, so that a new test set does not silently change
#: what the benchmark measures; RESULTS.md says which sets each figure used)
CASE_FILES = ("holdout-clean.jsonl", "holdout-fail.jsonl", "own-clean.jsonl", "own-fail.jsonl",
              "redteam-clean.jsonl", "redteam-fail.jsonl", "redteam2-clean.jsonl", "redteam2-fail.jsonl",
              "redteam2-warn.jsonl")

_BASE: list = []


def base_cases() -> list:
    """Every labelled case with a schema-valid message, as (message, context)."""
    if _BASE:
        return _BASE
    files = [ROOT / "tests" / "cases" / name for name in CASE_FILES] + [ROOT.parent / "shared" / "cases" / "public.jsonl"]
    for f in files:
        if not f.exists():
            continue
        for line in f.read_text(encoding="utf-8").splitlines():
            c = json.loads(line)
            if validate_message_dict(c.get("message")):
                continue
            try:
                _, ctx = parse_case(c)
            except ValueError:  # a case whose context check rejects (it is a schema finding there)
                continue
            m = dict(c["message"])
            m["explanations"] = tuple(Explanation(**e) for e in m["explanations"])
            _BASE.append((RenderedMessage(**m), ctx))
    return _BASE


def corpus(n: int, marker: str = ""):
    base = base_cases()
    out = []
    i = 0
    while len(out) < n:
        msg, ctx = base[i % len(base)]
        k = i // len(base)
        if marker:  # the warm-up set: every model-written field differs from the measured set's
            msg = msg.model_copy(update={
                "subject": f"{msg.subject} {marker}{k}", "preheader": f"{msg.preheader} {marker}{k}",
                "body": msg.body.replace("\n\n", f"\n\nWarm {k} up. ", 1),
                "explanations": tuple(e.model_copy(update={"text": f"{e.text} {marker}{k}"}) for e in msg.explanations)})
        elif k:  # vary the text so nothing is cached per message
            msg = msg.model_copy(update={"body": msg.body.replace("\n\n", f"\n\nRun {k} done. ", 1),
                                         "preheader": f"{msg.preheader} ({k})"})
        out.append((msg, ctx))
        i += 1
    return out


def timed(n: int, warm: bool) -> tuple[float, float, int, int]:
    rules = load_rules()
    msgs = corpus(n)
    warmup = corpus(len(base_cases()), marker="w") if warm else []
    # the corpora are this script's own data (a run streams its members): like the pipeline after
    # loading its rules and inputs, move what exists now out of the collector's way
    gc.freeze()
    for msg, ctx in warmup:
        run_gates(msg, ctx, rules)
    t0, c0 = time.perf_counter(), time.process_time()
    findings = 0
    for msg, ctx in msgs:
        findings += len(run_gates(msg, ctx, rules))
    return time.process_time() - c0, time.perf_counter() - t0, findings, len(rules)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    if len(sys.argv) > 2:  # child: one measurement in this fresh process
        cpu, wall, findings, nrules = timed(n, sys.argv[2] == "steady")
        print(json.dumps({"cpu": cpu, "wall": wall, "findings": findings, "rules": nrules}))
        return
    runs = int(os.environ.get("BENCH_RUNS", "3"))
    print(f"command: {sys.executable} benchmarks/bench_gates.py {n}   ({runs} fresh processes per mode)")
    for mode in ("cold", "steady"):
        rates = []
        for _ in range(runs):
            out = subprocess.run([sys.executable, __file__, str(n), mode], capture_output=True, text=True)
            if out.returncode:
                sys.exit(f"{mode} run failed:\n{out.stderr}")
            r = json.loads(out.stdout.strip().splitlines()[-1])
            rates.append(n / r["cpu"])
            print(f"  {mode:>6}: {n} messages, {r['rules']} rules, {r['findings']} findings in {r['cpu']:.2f} s of CPU "
                  f"({r['wall']:.2f} s wall) on one core: {n / r['cpu']:,.0f} messages/second")
        print(f"{mode:>6}: median {statistics.median(rates):,.0f} messages/second "
              f"(range {min(rates):,.0f} - {max(rates):,.0f}; target >= 2,000)")


if __name__ == "__main__":
    main()
