"""Throughput of the four gates on one core, optionally side by side with another version.

    .venv/bin/python benchmarks/bench_gates.py [N]                       # this checkout
    .venv/bin/python benchmarks/bench_gates.py [N] --baseline-rev 8ea3975 # and a worktree of that commit
    .venv/bin/python benchmarks/bench_gates.py [N] --baseline DIR         # and the code in DIR

Builds N (default 2,000) varied messages from the labelled cases in tests/cases/ and
shared/cases/public.jsonl (each with its own context), then runs schema + facts + brand +
compliance on every message and prints messages/second of CPU time (one process, one thread, so
one core; wall time is printed too, and matches it on an idle machine). Each figure comes from a
fresh process; with a baseline the two versions run alternately (A B A B ...), BENCH_RUNS
(default 5) times each, on the same corpus (this checkout's case files, built with each version's
own models), and the ratio of each pair is reported with the median and range.

"cold" is the first pass over a fresh process (rules loaded, nothing else warmed: every case's
catalog indexed, every rule regex combination compiled during the timing); "steady" first runs a
warm-up set that shares no text with the measured set (every model-written field of every case
varied with another marker) so that per-catalog indexes and compiled regexes exist, as they do a
few messages into a long batch run, then times the measured set. Per-text caches cannot carry a
body's prose across the two sets: in the measured set every body, every prose line of a body and
every preheader is new, while greetings, product lines, sign-offs, subjects, explanations, CTAs
and footers repeat only as they do between cases (as the renderer's lines repeat in a batch).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

#: the labelled sets the corpus is built from (named, so that a new test set does not silently change
#: what the benchmark measures; RESULTS.md says which sets each figure used)
CASE_FILES = ("holdout-clean.jsonl", "holdout-fail.jsonl", "own-clean.jsonl", "own-fail.jsonl",
              "redteam-clean.jsonl", "redteam-fail.jsonl", "redteam2-clean.jsonl", "redteam2-fail.jsonl",
              "redteam2-warn.jsonl")

_BASE: list[Any] = []


def base_cases(cases_root: Path = ROOT) -> list[Any]:
    """Every labelled case with a schema-valid message, as (message, context), built with the
    ``contentgen`` that is imported (this checkout's, or a baseline's in a child process)."""
    if _BASE:
        return _BASE
    from contentgen.check import parse_case
    from contentgen.gates.schema import validate_message_dict
    from contentgen.models import Explanation, RenderedMessage

    files = [cases_root / "tests" / "cases" / name for name in CASE_FILES] + [
        cases_root.parent / "shared" / "cases" / "public.jsonl"]
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


def vary_prose(body: str, words: str) -> str:
    """The body with ``words`` opening each of its prose lines (not the first line, which is the
    greeting, a product line "Name: $12.00", or the sign-off), so that no prose line of the copy
    was seen before, while the lines the renderer writes repeat as they do in a real batch."""
    lines = body.split("\n")
    for i, line in enumerate(lines):
        s = line.strip()
        if i == 0 or not s or s[0] in "—–-" or (":" in s and "$" in s):
            continue
        lines[i] = f"{words} {line}"
    return "\n".join(lines)


def corpus(n: int, marker: str = "", cases_root: Path = ROOT) -> list[Any]:
    base = base_cases(cases_root)
    out = []
    i = 0
    while len(out) < n:
        msg, ctx = base[i % len(base)]
        k = i // len(base)
        if marker:  # the warm-up set: every model-written field differs from the measured set's
            msg = msg.model_copy(update={
                "subject": f"{msg.subject} {marker}{k}", "preheader": f"{msg.preheader} {marker}{k}",
                "body": vary_prose(msg.body, f"Warm {k} up."),
                "explanations": tuple(e.model_copy(update={"text": f"{e.text} {marker}{k}"}) for e in msg.explanations)})
        elif k:  # vary the text so nothing is cached per message (or per prose line)
            mode = os.environ.get("BENCH_CORPUS", "strict")
            if mode == "paragraph":  # (the corpus before issue 16: one paragraph varied per copy)
                body = msg.body.replace("\n\n", f"\n\nRun {k} done. ", 1)
            elif mode == "dedup" and (i * 7919) % 1000 < 357:
                # a share of members whose prompt another member already had: the same draft (the
                # measured dedup ratio of the 2.3M dry run, benchmarks/RESULTS.md)
                body = vary_prose(msg.body, f"Run {k - 1} done.") if k > 1 else msg.body
            else:
                body = vary_prose(msg.body, f"Run {k} done.")
            msg = msg.model_copy(update={"body": body, "preheader": f"{msg.preheader} ({k})"})
        out.append((msg, ctx))
        i += 1
    return out


def timed(n: int, warm: bool, cases_root: Path) -> dict[str, float]:
    from contentgen.gates import load_rules, run_gates

    rules = load_rules()
    msgs = corpus(n, cases_root=cases_root)
    warmup = corpus(len(base_cases(cases_root)), marker="w", cases_root=cases_root) if warm else []
    # the corpora are this script's own data (a run streams its members): like the pipeline after
    # loading its rules and inputs, move what exists now out of the collector's way
    gc.freeze()
    for msg, ctx in warmup:
        run_gates(msg, ctx, rules)
    t0, c0 = time.perf_counter(), time.process_time()
    findings = 0
    for msg, ctx in msgs:
        findings += len(run_gates(msg, ctx, rules))
    return {"cpu": time.process_time() - c0, "wall": time.perf_counter() - t0, "findings": findings,
            "rules": len(rules)}


def child(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(Path(args.code).resolve()))
    for mod in [m for m in sys.modules if m == "contentgen" or m.startswith("contentgen.")]:
        del sys.modules[mod]
    import contentgen

    assert Path(contentgen.__file__).resolve().is_relative_to(Path(args.code).resolve()), contentgen.__file__
    r = timed(args.n, args.mode == "steady", Path(args.cases))
    print(json.dumps(r))


def baseline_worktree(rev: str) -> Path:
    """A detached worktree of ``rev`` (made once, kept in the temp folder)."""
    sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", rev], capture_output=True, text=True,
                         check=True).stdout.strip()
    path = Path(tempfile.gettempdir()) / f"contentgen-bench-{sha}"
    if not (path / "contentgen").is_dir():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), sha], check=True,
                       capture_output=True)
    shared = path.parent / "shared"
    if not shared.exists() and (ROOT.parent / "shared").exists():
        shared.symlink_to(ROOT.parent / "shared")  # (the baseline's bench reads ../shared like ours)
    return path


def run_one(code: Path, n: int, mode: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, str(n), "--child", "--code", str(code), "--mode", mode,
                          "--cases", str(ROOT)], capture_output=True, text=True, cwd=str(code))
    if out.returncode:
        sys.exit(f"{mode} run of {code} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("n", nargs="?", type=int, default=2000)
    ap.add_argument("--baseline", help="a checkout of another version to measure alternately")
    ap.add_argument("--baseline-rev", help="a commit to measure alternately (a worktree is made for it)")
    ap.add_argument("--modes", default="steady,cold")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--code", default=str(ROOT), help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="steady", help=argparse.SUPPRESS)
    ap.add_argument("--cases", default=str(ROOT), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    runs = int(os.environ.get("BENCH_RUNS", "5"))
    versions = [("this", ROOT)]
    if args.baseline_rev:
        versions.append((f"baseline {args.baseline_rev}", baseline_worktree(args.baseline_rev)))
    elif args.baseline:
        versions.append(("baseline", Path(args.baseline).resolve()))
    print(f"command: {' '.join([Path(sys.executable).name, 'benchmarks/bench_gates.py', *sys.argv[1:]])}  "
          f"({runs} fresh processes per version and mode, alternating)")
    for mode in args.modes.split(","):
        rates: dict[str, list[float]] = {name: [] for name, _ in versions}
        for _ in range(runs):
            for name, code in versions:
                r = run_one(code, args.n, mode)
                rate = args.n / r["cpu"]
                rates[name].append(rate)
                print(f"  {mode:>6} {name:<18} {args.n} messages, {r['rules']:.0f} rules, {r['findings']:.0f} findings "
                      f"in {r['cpu']:.2f} s CPU ({r['wall']:.2f} s wall): {rate:,.0f} msg/s", flush=True)
        for name, _ in versions:
            xs = rates[name]
            print(f"{mode:>6} {name:<18} median {statistics.median(xs):,.0f} msg/s (range {min(xs):,.0f} - {max(xs):,.0f})")
        if len(versions) == 2:
            a, b = (rates[name] for name, _ in versions)
            ratios = [x / y for x, y in zip(a, b)]
            print(f"{mode:>6} ratio this / baseline: median {statistics.median(ratios):.2f}x "
                  f"(range {min(ratios):.2f} - {max(ratios):.2f}, {len(ratios)} alternating pairs)")


if __name__ == "__main__":
    main()
