"""Clause probes: paraphrases of each open-ended clause of the brief, put into a clean message.

``tests/probes/clauses.yaml`` lists, clause by clause, ways a copywriter (or a model) could break
the clause (``fail``) and the nearby phrasings the brief allows (``pass``). Each probe is put
into a clean base case of its tier (a public clean case: tier 1 gifts, tier 2 running, tier 3
browsers) in one field: a new paragraph of the body (default), or the subject, preheader, CTA
text or the first explanation. A ``fail`` probe must draw an error from the clause's gate; a
``pass`` probe must leave the case passing. A probe marked ``xfail: reason`` is a known miss,
kept in view (strict: the test goes red when the rules start catching it, so the mark is removed).

The probes were written from the brief (shared/brief/), not from the rules, to measure and to
widen the rules by the clause rather than by the phrase.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from contentgen.check import check_case
from contentgen.gates import load_rules

REPO = Path(__file__).resolve().parents[1]
PROBES = sorted((REPO / "tests" / "probes").glob("clauses*.yaml"))
SIGNOFF = "\n\n— The AthenaPlus team"
BASE_IDS = {1: "pub-clean-t1-gifts", 2: "pub-clean-t2-running", 3: "pub-clean-t3-valuefirst"}


def _bases() -> dict[int, dict]:
    rows = [json.loads(x) for x in (REPO / "tests" / "probes" / "base-cases.jsonl").read_text(encoding="utf-8").splitlines()
            if x.strip()]
    by_id = {c["case_id"]: c for c in rows}
    return {t: by_id[i] for t, i in BASE_IDS.items()}


def _probes() -> list[tuple[str, str, dict]]:
    """(test id, expected 'fail'/'pass', probe) for every probe and each of its tiers."""
    out = []
    for clause in (c for path in PROBES for c in yaml.safe_load(path.read_text(encoding="utf-8"))["clauses"]):
        for want in ("fail", "pass"):
            for i, p in enumerate(clause.get(want) or []):
                p = {"text": p} if isinstance(p, str) else dict(p)
                tiers = p.get("tiers") or clause.get(f"{want}_tiers") or ([3] if want == "fail" else [1, 3])
                for t in tiers:
                    probe = {**p, "tier": t, "gate": p.get("gate") or clause["gate"], "clause": clause["clause"],
                             "gates": {p.get("gate") or clause["gate"], *clause.get("also_gates", [])}}
                    out.append((f"{clause['id']}-{want}{i}-t{t}", want, probe))
    return out


def build_case(base: dict, probe: dict) -> dict:
    case = copy.deepcopy(base)
    msg = case["message"]
    field = probe.get("field", "body")
    text = probe["text"]
    if field == "body":
        assert msg["body"].endswith(SIGNOFF)
        msg["body"] = msg["body"][: -len(SIGNOFF)] + "\n\n" + text + SIGNOFF
    elif field == "explanations":
        msg["explanations"] = [{**msg["explanations"][0], "text": text}] + msg["explanations"][1:]
    else:
        msg[field] = text
    if probe.get("first_name") is not None:
        case["member"]["first_name"] = probe["first_name"]
    if probe.get("notes") is not None:  # member-supplied free text (stated preference, notes)
        case["recommendations"][0]["evidence"].append({"source": "stated_preference", "detail": probe["notes"]})
    return case


_RULES = None


def _rules():
    global _RULES
    if _RULES is None:
        _RULES = load_rules()
    return _RULES


def judge(probe: dict) -> tuple[str, list]:
    case = build_case(_bases()[probe["tier"]], probe)
    return check_case(case, _rules())


PROBE_LIST = _probes()


def _param(tid: str, want: str, probe: dict):
    """A probe the rules are known to miss carries ``xfail: reason`` (strict: it must still fail)."""
    marks = [pytest.mark.xfail(reason=probe["xfail"], strict=True)] if probe.get("xfail") else []
    return pytest.param(want, probe, id=tid, marks=marks)


@pytest.mark.parametrize("want,probe", [_param(*x) for x in PROBE_LIST])
def test_clause_probe(want, probe):
    verdict, findings = judge(probe)
    errors = [(f.rule_id, f.gate, f.excerpt) for f in findings if f.severity == "error"]
    if want == "fail":
        assert verdict == "fail" and any(g in probe["gates"] for _, g, _ in errors), (probe["clause"], probe["text"], errors)
    else:
        shown = [(f.rule_id, f.severity, f.excerpt) for f in findings if f.severity != "info"]
        assert verdict == "pass", (probe["clause"], probe["text"], shown)


def test_base_cases_pass():
    for t, base in _bases().items():
        verdict, findings = check_case(copy.deepcopy(base), _rules())
        assert verdict == "pass", (t, [(f.rule_id, f.excerpt) for f in findings])


def test_probes_cover_each_clause_broadly():
    """An open-ended clause keeps many routes and some allowed counterparts."""
    for clause in (c for path in PROBES for c in yaml.safe_load(path.read_text(encoding="utf-8"))["clauses"]):
        if clause.get("open_ended", True):
            assert len(clause["fail"]) >= 12, clause["id"]
            assert len(clause.get("pass") or []) >= 3, clause["id"]
