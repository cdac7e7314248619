"""Every labelled case's exact findings against a recorded golden file.

The gates are optimized for speed; this proves an optimization changes no verdict and no
finding (rule id, severity, field, span). When a rule change alters a verdict on purpose,
regenerate deliberately and review the diff:

    CONTENTGEN_UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_golden_findings.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from contentgen.check import check_case
from contentgen.gates import load_rules

REPO = Path(__file__).resolve().parents[1]
CASES = REPO / "tests" / "cases"
PUBLIC = REPO.parent / "shared" / "cases" / "public.jsonl"
GOLDEN = CASES / "golden-findings.json"


def _sources() -> list[Path]:
    files = sorted(CASES.glob("*.jsonl"))
    if PUBLIC.exists():
        files.append(PUBLIC)
    return files


def current() -> dict[str, dict]:
    rules = load_rules()
    out: dict[str, dict] = {}
    for path in _sources():
        tag = "public" if path == PUBLIC else path.name
        for raw in path.read_text(encoding="utf-8").splitlines():
            if not raw.strip():
                continue
            c = json.loads(raw)
            c.pop("expect", None)
            v, findings = check_case(c, rules)
            out[f"{tag}:{c['case_id']}"] = {
                "verdict": v,
                "findings": [[f.rule_id, f.severity, f.field, list(f.span) if f.span else None] for f in findings],
            }
    return out


def test_findings_match_golden():
    now = current()
    if os.environ.get("CONTENTGEN_UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        pytest.skip("golden file rewritten")
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    if not PUBLIC.exists():
        golden = {k: v for k, v in golden.items() if not k.startswith("public:")}
    missing = sorted(set(golden) - set(now))
    extra = sorted(set(now) - set(golden))
    assert not missing and not extra, f"cases missing: {missing}; cases not in golden: {extra}"
    diff = {k: {"golden": golden[k], "now": now[k]} for k in golden if golden[k] != now[k]}
    assert not diff, json.dumps(diff, indent=1)[:4000]
