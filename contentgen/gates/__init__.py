"""The four gates: schema, facts, brand, compliance.

    rules = load_rules()                       # brand_rules/ + compliance/ (cached)
    findings = run_gates(message, ctx, rules)  # pure; records, never exceptions
    verdict(findings)                          # "pass" | "fail" | "review"
    repair_instructions(findings)              # numbered plain-language fixes for the model
"""

from __future__ import annotations

from collections.abc import Iterable

from ..models import Finding, GateContext, RenderedMessage
from .repair import repair_instructions
from .rules import MessageView, RuleSet, evaluate, load_rules
from .schema import validate_message

__all__ = ["GATE_ORDER", "load_rules", "repair_instructions", "run_gates", "sort_findings", "verdict"]

#: Findings are reported most serious first: schema, compliance, facts, brand.
GATE_ORDER = {"schema": 0, "compliance": 1, "facts": 2, "brand": 3}
_SEV = {"error": 0, "warning": 1, "info": 2}
_FIELD_ORDER = {"subject": 0, "preheader": 1, "body": 2, "cta_text": 3, "cta_url": 4, "explanations": 5, "footer": 6}


def _field_rank(field: str) -> int:
    return _FIELD_ORDER.get(field.split("[", 1)[0].split(".", 1)[0], 9)


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (_SEV.get(f.severity, 3), GATE_ORDER.get(f.gate, 9), _field_rank(f.field),
                                           f.field, f.span or (0, 0), f.rule_id))


def run_gates(message: RenderedMessage, ctx: GateContext, rules: RuleSet | None = None) -> list[Finding]:
    """Run schema-shape, facts, brand and compliance rules on a rendered message."""
    rs = rules if rules is not None else load_rules()
    findings = list(validate_message(message, ctx.channel))
    view = MessageView(message, ctx)
    rules_ = rs.rules
    each, batched = rs.split(view)
    for i in each:
        found = evaluate(rules_[i], view, True)
        if found:
            findings.extend(found)
    findings.extend(rs.batch.findings(rs, view, batched))
    return sort_findings(findings)


def verdict(findings: Iterable[Finding]) -> str:
    """fail: any error; review: no error but a finding that could not be decided; else pass."""
    review = False
    for f in findings:
        if f.severity == "error":
            return "fail"
        if not f.decidable:
            review = True
    return "review" if review else "pass"
