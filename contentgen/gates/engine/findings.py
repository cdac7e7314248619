"""Findings: what a rule reports (a :class:`Hit`), turned into a :class:`~contentgen.models.Finding`
with the rule's message and fix text filled in; their order and the verdict."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import TYPE_CHECKING, Any

from ...models import Finding

if TYPE_CHECKING:
    from .model import Rule
    from .view import MessageView

#: Findings are reported most serious first: schema, compliance, facts, brand.
GATE_ORDER = {"schema": 0, "compliance": 1, "facts": 2, "brand": 3}
_SEV = {"error": 0, "warning": 1, "info": 2}
_FIELD_ORDER = {"subject": 0, "preheader": 1, "body": 2, "cta_text": 3, "cta_url": 4, "explanations": 5, "footer": 6}


@dataclass(slots=True)
class Hit:
    """One place a rule fired: field label, character span, and what its message may say."""

    field: str
    start: int
    end: int
    excerpt: str | None = None  # None: the text at the span
    slots: dict[str, Any] = dc_field(default_factory=dict)
    decidable: bool | None = None  # None: the rule's
    severity: str | None = None  # None: the rule's


class Slots(dict[str, Any]):
    """Message slots; an unknown ``{slot}`` stays as written."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def brand_slots(view: MessageView) -> dict[str, str]:
    """The campaign's identity, for ``{program}``-style slots in messages and fix texts."""
    got: dict[str, str] | None = view.cache.get("brand_slots")
    if got is None:
        b = view.ctx.brand
        got = view.cache["brand_slots"] = {
            "program": b.program, "sender": b.sender, "signoff": b.signoff, "postal_address": b.postal_address,
            "allowed_domains": " or ".join(d for d in view.ctx.allowed_domains)}
    return got


def _fill(template: str, slots: Slots) -> str:
    try:
        return template.format_map(slots)
    except (ValueError, IndexError, AttributeError, KeyError):
        return template


def make_findings(rule: Rule, view: MessageView, hits: Iterable[Hit]) -> list[Finding]:
    out = []
    for h in hits:
        excerpt = h.excerpt if h.excerpt is not None else view.text(h.field)[h.start:h.end]
        slots = Slots(brand_slots(view))
        slots.update(excerpt=excerpt, field=h.field, rule=rule.id, tier=view.tier)
        slots.update(h.slots)
        # (every value is already valid: construct without validating, the hot path of a failing message)
        out.append(Finding.model_construct(rule_id=rule.id, gate=rule.gate, severity=h.severity or rule.severity,
                                           field=h.field, span=(h.start, h.end), excerpt=excerpt[:300],
                                           message=_fill(rule.message, slots), fix=_fill(rule.fix, slots),
                                           decidable=rule.decidable if h.decidable is None else h.decidable))
    return out


def _field_rank(field: str) -> int:
    return _FIELD_ORDER.get(field.split("[", 1)[0].split(".", 1)[0], 9)


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (_SEV.get(f.severity, 3), GATE_ORDER.get(f.gate, 9), _field_rank(f.field),
                                           f.field, f.span or (0, 0), f.rule_id))


def verdict(findings: Iterable[Finding]) -> str:
    """fail: any error; review: no error but a finding that could not be decided; else pass."""
    review = False
    for f in findings:
        if f.severity == "error":
            return "fail"
        if not f.decidable:
            review = True
    return "review" if review else "pass"
