"""Throughput of the four gates on one core, optionally side by side with another version.

    .venv/bin/python benchmarks/bench_gates.py [N]                       # this checkout
    .venv/bin/python benchmarks/bench_gates.py [N] --baseline-rev 8ea3975 # and a worktree of that commit
    .venv/bin/python benchmarks/bench_gates.py [N] --baseline DIR         # and the code in DIR
    .venv/bin/python benchmarks/bench_gates.py [N] --baseline-rev A --baseline-rev B  # several baselines

Builds N (default 2,000) varied messages from the labelled cases in tests/cases/ and
shared/cases/public.jsonl (each with its own context), then runs schema + facts + brand +
compliance on every message and prints messages/second of CPU time (one process, one thread, so
one core; wall time is printed too, and matches it on an idle machine). Each figure comes from a
fresh process; with baselines the versions run alternately (A B C A B C ...), BENCH_RUNS
(default 5) times each, on the same corpus (this checkout's case files, built with each version's
own models), and the ratio of this checkout to each baseline, round by round, is reported with the
median and range.

"cold" is the first pass over a fresh process (rules loaded, nothing else warmed: every case's
catalog indexed, every rule regex combination compiled during the timing); "steady" first runs a
warm-up set that shares no text with the measured set (every model-written field of every case
varied with another marker) so that per-catalog indexes and compiled regexes exist, as they do a
few messages into a long batch run, then times the measured set. Per-text caches cannot carry a
body's prose across the two sets: in the measured set every body, every prose line of a body and
every preheader is new, while greetings, product lines, sign-offs, subjects, explanations, CTAs
and footers repeat only as they do between cases (as the renderer's lines repeat in a batch).

"cached" (``--modes cached``) gates the base cases again after gating them once: every text was
seen, so it times what a message costs when every per-text cache answers, the floor that no cache
keyed by text can go below (a real batch never runs at it: its prose is new).

    .venv/bin/python benchmarks/bench_gates.py 2000 --breakdown   # where a steady message's time goes

``--breakdown`` (this checkout only) times, in one process on the steady corpus, the view, the
schema check, the shared facts analysis and each rule (run through ``RuleSet.evaluate``, which
gates it on the prefilter as a run does), and prints microseconds per message, largest first.
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


def timed(n: int, mode: str, cases_root: Path) -> dict[str, Any]:
    import contentgen.gates
    from contentgen.gates import load_rules, run_gates

    rules = load_rules()
    base = base_cases(cases_root)
    if mode == "cached":  # every text of the measured set was gated in the warm-up
        msgs = [base[i % len(base)] for i in range(n)]
        warmup = list(base)
    else:
        msgs = corpus(n, cases_root=cases_root)
        warmup = corpus(len(base), marker="w", cases_root=cases_root) if mode == "steady" else []
    # the corpora are this script's own data (a run streams its members): like the pipeline after
    # loading its rules and inputs, move what exists now out of the collector's way
    gc.freeze()
    for msg, ctx in warmup:
        run_gates(msg, ctx, rules)
    t0, c0 = time.perf_counter(), time.process_time()
    findings = 0
    for msg, ctx in msgs:
        findings += len(run_gates(msg, ctx, rules))
    # which gates ran: "compiled (...)" or "pure (why)" (versions before the compiled build: "pure")
    gates = str(getattr(contentgen.gates, "GATES_MODE", "pure (no compiled build in this version)"))
    return {"cpu": time.process_time() - c0, "wall": time.perf_counter() - t0, "findings": findings,
            "rules": len(rules), "gates": gates}


def child(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(Path(args.code).resolve()))
    for mod in [m for m in sys.modules if m == "contentgen" or m.startswith("contentgen.")]:
        del sys.modules[mod]
    import contentgen

    assert Path(contentgen.__file__).resolve().is_relative_to(Path(args.code).resolve()), contentgen.__file__
    r = timed(args.n, args.mode, Path(args.cases))
    print(json.dumps(r))


def breakdown(n: int) -> None:
    """Microseconds per message of the view, the schema check, the shared facts analysis and each
    rule, on the steady corpus (one process; the shares, not the total, are the point)."""
    from contentgen.gates import GATES_MODE, load_rules, run_gates, sort_findings
    from contentgen.gates.engine.model import FIELD_NAMES, MODEL_FIELDS

    print(f"gates: {GATES_MODE}")
    from contentgen.gates.engine.registry import ANALYSES
    from contentgen.gates.schema import validate_message

    rules = load_rules()
    msgs = corpus(n)
    for msg, ctx in corpus(len(base_cases()), marker="w"):
        run_gates(msg, ctx, rules)
    gc.freeze()
    spent: dict[str, float] = {}
    clock = time.perf_counter  # (process_time is a system call here: it would weigh on every rule)
    t_all = clock()
    for msg, ctx in msgs:
        t = clock()
        view = rules.view(msg, ctx)
        t1 = clock()
        found = validate_message(msg, ctx.channel, view.layout)
        t2 = clock()
        view.present(MODEL_FIELDS)
        view.present(FIELD_NAMES)
        t3 = clock()
        if "facts" in ANALYSES:
            view.analysis("facts")
        t4 = clock()
        for name, sec in (("(view)", t1 - t), ("(schema)", t2 - t1), ("(prefilter scan of every field)", t3 - t2),
                          ("(facts analysis, shared)", t4 - t3)):
            spent[name] = spent.get(name, 0.0) + sec
        for cr in rules.applicable(view.when_key):
            t = clock()
            found.extend(rules.accept.filter(rules.evaluate(cr, view), view))
            spent[cr.id] = spent.get(cr.id, 0.0) + clock() - t
        t = clock()
        sort_findings(found)
        spent["(sort)"] = spent.get("(sort)", 0.0) + clock() - t
    total = clock() - t_all
    print(f"{n} steady messages: {total / n * 1e6:.0f} us per message (wall time, timers included)")
    for name, sec in sorted(spent.items(), key=lambda kv: -kv[1]):
        if sec / n * 1e6 >= 0.5:
            print(f"  {sec / n * 1e6:6.1f} us  {100 * sec / total:4.1f}%  {name}")


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


def run_one(code: Path, n: int, mode: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, str(n), "--child", "--code", str(code), "--mode", mode,
                          "--cases", str(ROOT)], capture_output=True, text=True, cwd=str(code))
    if out.returncode:
        sys.exit(f"{mode} run of {code} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("n", nargs="?", type=int, default=2000)
    ap.add_argument("--baseline", action="append", default=[],
                    help="a checkout of another version to measure alternately (repeatable)")
    ap.add_argument("--baseline-rev", action="append", default=[],
                    help="a commit to measure alternately (a worktree is made for it; repeatable)")
    ap.add_argument("--modes", default="steady,cold")
    ap.add_argument("--breakdown", action="store_true", help="time each rule on the steady corpus (this checkout)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--code", default=str(ROOT), help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="steady", help=argparse.SUPPRESS)
    ap.add_argument("--cases", default=str(ROOT), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    if args.breakdown:
        breakdown(args.n)
        return
    runs = int(os.environ.get("BENCH_RUNS", "5"))
    versions = [("this", ROOT)]
    for rev in args.baseline_rev:
        versions.append((f"baseline {rev}", baseline_worktree(rev)))
    for i, d in enumerate(args.baseline):
        versions.append((f"baseline{i + 1 if len(args.baseline) > 1 else ''}", Path(d).resolve()))
    print(f"command: {' '.join([Path(sys.executable).name, 'benchmarks/bench_gates.py', *sys.argv[1:]])}  "
          f"({runs} fresh processes per version and mode, alternating)")
    gates_mode: dict[str, str] = {}
    for mode in args.modes.split(","):
        rates: dict[str, list[float]] = {name: [] for name, _ in versions}
        for _ in range(runs):
            for name, code in versions:
                r = run_one(code, args.n, mode)
                rate = args.n / r["cpu"]
                rates[name].append(rate)
                print(f"  {mode:>6} {name:<18} {args.n} messages, {r['rules']:.0f} rules, {r['findings']:.0f} findings "
                      f"in {r['cpu']:.2f} s CPU ({r['wall']:.2f} s wall): {rate:,.0f} msg/s, "
                      f"gates {r['gates'].split(' ')[0]}", flush=True)
                gates_mode.setdefault(name, r["gates"])
        for name, _ in versions:
            xs = rates[name]
            print(f"{mode:>6} {name:<18} median {statistics.median(xs):,.0f} msg/s (range {min(xs):,.0f} - {max(xs):,.0f})")
        for name, _ in versions[1:]:
            ratios = [x / y for x, y in zip(rates["this"], rates[name])]
            print(f"{mode:>6} ratio this / {name}: median {statistics.median(ratios):.2f}x "
                  f"(range {min(ratios):.2f} - {max(ratios):.2f}, {len(ratios)} alternating pairs)")
    for name, _ in versions:
        print(f"gates of {name}: {gates_mode.get(name)}")


if __name__ == "__main__":
    main()
