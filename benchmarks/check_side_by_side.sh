#!/bin/bash
# Check time of two checkouts side by side, interleaved (ROUNDS rounds): every case of CASES checked
# in one process after the rules are loaded. Usage: check_side_by_side.sh A_DIR B_DIR CASES.jsonl [ROUNDS]
# (each DIR a checkout with a .venv; run under `flock /work/heavy.lock`)
A=$1; B=$2; CASES=$3; ROUNDS=${4:-5}
for i in $(seq "$ROUNDS"); do
  for R in "$A" "$B"; do
    (cd "$R" && PYTHONPATH="$R" .venv/bin/python -c "
import json, sys, time
from contentgen.check import check_case
from contentgen.gates import load_rules
rules = load_rules()
cases = [json.loads(x) for x in open(sys.argv[1]) if x.strip()]
for c in cases: c.pop('expect', None)
t = time.perf_counter()
for c in cases: check_case(c, rules)
print(sys.argv[2], round(time.perf_counter() - t, 3))
" "$CASES" "$R")
  done
done
