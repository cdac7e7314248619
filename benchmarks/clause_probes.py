"""Score the clause probes (tests/probes/clauses*.yaml) with this checkout's rules, per clause and per batch.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/clause_probes.py [-v]

A violation probe counts as caught when the case fails with an error from the clause's gate (or
one of its ``also_gates``); a near-miss counts as passing when the case passes. ``-v`` lists the
probes that are not.
"""

from __future__ import annotations

import collections
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.test_clause_probes import PROBE_LIST, judge  # noqa: E402


def main() -> None:
    by_clause: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0, 0, 0])
    by_batch: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0, 0, 0])
    bad = []
    for tid, want, p in PROBE_LIST:
        verdict, fs = judge(p)
        clause = re.sub(r"-(?:fail|pass)\d+-t\d$", "", tid)
        batch = (re.search(r"-(\d)$", clause) or [None, "1"])[1]
        if want == "fail":
            ok = verdict == "fail" and any(f.severity == "error" and f.gate in p["gates"] for f in fs)
            i = 0
        else:
            ok = verdict == "pass"
            i = 2
        for s in (by_clause[clause], by_batch[batch]):
            s[i] += ok
            s[i + 1] += 1
        if not ok:
            bad.append((tid, p["text"], verdict, [(f.rule_id, f.excerpt) for f in fs if f.severity == "error"]))
    for c, s in by_clause.items():
        print(f"{c:20s} violations caught {s[0]}/{s[1]}  near-misses pass {s[2]}/{s[3]}")
    for b, s in sorted(by_batch.items()):
        print(f"batch {b}: violations caught {s[0]}/{s[1]} ({s[0] / s[1]:.3f}); near-misses pass {s[2]}/{s[3]}")
    if "-v" in sys.argv:
        for row in bad:
            print(*row, sep=" | ")


if __name__ == "__main__":
    main()
