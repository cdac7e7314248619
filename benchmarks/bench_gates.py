"""Throughput of the four gates on one core.

    .venv/bin/python benchmarks/bench_gates.py [N]

Builds N (default 2,000) varied messages from the labelled cases in tests/cases/ and
shared/cases/public.jsonl (each with its own context), warms the rule cache, then runs
schema + facts + brand + compliance on every message and prints messages/second.
Target: >= 2,000 msg/s on one core.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from contentgen.check import parse_case  # noqa: E402
from contentgen.gates import load_rules, run_gates  # noqa: E402
from contentgen.gates.schema import validate_message_dict  # noqa: E402
from contentgen.models import Explanation, RenderedMessage  # noqa: E402


def corpus(n: int):
    files = sorted((ROOT / "tests" / "cases").glob("*.jsonl")) + [ROOT.parent / "shared" / "cases" / "public.jsonl"]
    base = []
    for f in files:
        if not f.exists():
            continue
        for line in f.read_text(encoding="utf-8").splitlines():
            c = json.loads(line)
            if validate_message_dict(c.get("message")):
                continue
            _, ctx = parse_case(c)
            m = dict(c["message"])
            m["explanations"] = tuple(Explanation(**e) for e in m["explanations"])
            base.append((RenderedMessage(**m), ctx))
    out = []
    i = 0
    while len(out) < n:
        msg, ctx = base[i % len(base)]
        k = i // len(base)
        if k:  # vary the text so nothing is cached per message
            msg = msg.model_copy(update={"body": msg.body.replace("\n\n", f"\n\nRun {k} done. ", 1),
                                         "preheader": f"{msg.preheader} ({k})"})
        out.append((msg, ctx))
        i += 1
    return out


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    rules = load_rules()
    msgs = corpus(n)
    for msg, ctx in msgs[:50]:
        run_gates(msg, ctx, rules)
    t0 = time.perf_counter()
    findings = 0
    for msg, ctx in msgs:
        findings += len(run_gates(msg, ctx, rules))
    dt = time.perf_counter() - t0
    print(f"command: {sys.executable} benchmarks/bench_gates.py {n}")
    print(f"{len(msgs)} messages, {len(rules)} rules, {findings} findings in {dt:.2f}s on one core: "
          f"{len(msgs) / dt:,.0f} messages/second (target >= 2,000)")


if __name__ == "__main__":
    main()
