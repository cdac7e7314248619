"""Turn findings into instructions a small model can act on."""

from __future__ import annotations

from collections.abc import Iterable

from ..models import Finding

#: when a finding carries no fix text (schema findings, findings stored before fix texts existed)
DEFAULT_FIX = {"schema": "return every required field with the right type"}
GENERIC_FIX = "rewrite this part so it follows the rule"


def repair_instructions(findings: Iterable[Finding]) -> str:
    """A numbered list: in which field, the excerpt, what is wrong and what to change (the rule's ``fix``
    text). Rule ids stay out: a small model copies them into its next answer ("[brand.superlatives]"
    turned up in a demo e-mail's body); reviewers see them in the findings, the model needs the words.

    Only errors and undecidable findings are listed (warnings/info are not required fixes).
    """
    lines: list[str] = []
    seen: set[tuple[str, str, str]] = set()
    for f in findings:
        if f.severity != "error" and f.decidable:
            continue
        key = (f.rule_id, f.field, f.excerpt)
        if key in seen:
            continue
        seen.add(key)
        where = f.field or "message"
        excerpt = f.excerpt.strip().replace("\n", " ")
        if len(excerpt) > 80:
            excerpt = excerpt[:77] + "…"
        quoted = f' "{excerpt}"' if excerpt else ""
        msg = f.message.rstrip(".")
        fix = f.fix or DEFAULT_FIX.get(f.gate, GENERIC_FIX)
        lines.append(f"{len(lines) + 1}. {where}:{quoted}: {msg}. Fix: {fix.rstrip('.')}.")
    return "\n".join(lines)
