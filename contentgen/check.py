"""``contentgen check``: run the gates on labelled cases (shared/contracts/check-cases.md).

Never decides with a case's ``expect`` and never calls a model: the label is set aside
before the gates run, and the human report only says, after each verdict, whether it
agrees with the label (with a count at the end); ``--json`` output has no label in it.

A case may carry an optional top-level ``channel``: ``"email"`` (the default), ``"push"``,
``"sms"`` or ``"inapp"``. The message keeps every field; per channel:

- email: subject, preheader, body (greeting, paragraphs, product lines, sign-off
  "— The AthenaPlus team"), cta_text, cta_url, explanations, full footer.
- push: subject = title (<= 50 chars), preheader "", body = push text (<= 150 chars, no
  greeting, no sign-off), cta_url = https deep link on an allowed domain, footer "", explanations [].
- sms: subject "", preheader "", body = "AthenaPlus: <text> <https link on an allowed domain> Reply
  STOP to opt out." (<= 160 characters, GSM-7 characters only), footer "", explanations [].
- inapp: subject = title (<= 60 chars), body <= 250 chars (no sign-off), explanations allowed
  (tiers 2/3), footer "".

Email-only rules (footer, sign-off, subject/preheader length, sender line, privacy note) are
``when: {channel: [email]}``; brand_rules/channels.yaml and compliance/sms.yaml hold the channel
rules; every other rule applies on every channel. Exit status: 0 when every line
parsed (whatever the verdicts), 1 when any line was malformed (bad JSON or invalid case
fields); malformed lines are reported with their line number and the rest are still checked.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import InputFileError
from .gates import load_rules, run_gates, sort_findings, verdict
from .gates import RuleSet
from .gates.schema import validate_message_dict
from .models import EVIDENCE_SOURCES, Explanation, Finding, GateContext, Member, Offer, Product, Recommendation, RenderedMessage


class Case(BaseModel):
    """A check case minus its message and label (validated strictly enough to build a GateContext)."""

    model_config = ConfigDict(extra="allow")
    case_id: str
    send_date: dt.date
    member: Member
    recommendations: list[Recommendation] = []
    offers: list[Offer] = []
    catalog: list[Product] = []
    hero_product_id: str | None = None
    channel: Literal["email", "push", "sms", "inapp"] = "email"


def finding_json(f: Finding) -> dict[str, Any]:
    return {"rule_id": f.rule_id, "gate": f.gate, "severity": f.severity, "field": f.field,
            "span": list(f.span) if f.span else None, "excerpt": f.excerpt, "message": f.message}


def parse_case(raw: dict[str, Any]) -> tuple[Case, GateContext]:
    case = Case.model_validate(raw)
    ctx = GateContext(send_date=case.send_date, member=case.member, recommendations=tuple(case.recommendations),
                      offers=tuple(case.offers), catalog={p.product_id: p for p in case.catalog},
                      hero_product_id=case.hero_product_id, channel=case.channel)
    return case, ctx


_SOURCES = frozenset(EVIDENCE_SOURCES)


def _unknown_sources(raw: dict[str, Any]) -> tuple[dict[str, Any], list[Finding]]:
    """The case without evidence whose source is not one the engine knows, and a schema finding
    for each: such evidence supports nothing an explanation may cite."""
    recs = raw.get("recommendations")
    if not isinstance(recs, list):
        return raw, []
    found: list[Finding] = []
    clean = []
    for i, r in enumerate(recs):
        ev = r.get("evidence") if isinstance(r, dict) else None
        if not isinstance(ev, list):
            clean.append(r)
            continue
        keep = []
        for j, e in enumerate(ev):
            src = e.get("source") if isinstance(e, dict) else None
            if isinstance(src, str) and src not in _SOURCES:
                found.append(Finding(rule_id="schema.evidence-source", gate="schema", severity="error",
                                     field=f"recommendations[{i}].evidence[{j}].source", span=(0, len(src)),
                                     excerpt=src, message=f"evidence source '{src}' is not one of "
                                     f"{', '.join(sorted(_SOURCES))}; the recommendation cannot rest on it"))
            else:
                keep.append(e)
        clean.append({**r, "evidence": keep})
    return ({**raw, "recommendations": clean} if found else raw), found


class Agreement:
    """How the verdicts compare with the cases' ``expect`` labels, for the human report only.

    A label is read after its case's verdict is decided, and only to print whether they agree: the
    verdicts (and ``--json``) are the same with or without labels."""

    def __init__(self) -> None:
        self.labelled = 0
        self.agree = 0
        self.disagree: list[str] = []
        self.review: list[str] = []

    def note(self, case_id: Any, verdict_: str, label: Any) -> str:
        want = label.get("verdict") if isinstance(label, dict) else None
        if want not in ("pass", "fail"):
            return ""
        self.labelled += 1
        if verdict_ == "review":
            self.review.append(str(case_id))
            return f"  (label: {want}; a reviewer decides)"
        if verdict_ == want:
            self.agree += 1
            return f"  (label: {want}, agrees)"
        self.disagree.append(str(case_id))
        return f"  (label: {want}, DISAGREES)"

    def summary(self) -> str:
        text = (f"labels: {self.labelled} case(s) labelled; the verdict agrees with {self.agree}, "
                f"disagrees with {len(self.disagree)}")
        if self.review:
            text += f", {len(self.review)} left to review"
        if self.disagree:
            more = f" and {len(self.disagree) - 10} more" if len(self.disagree) > 10 else ""
            text += f" ({', '.join(self.disagree[:10])}{more})"
        return text


def check_case(raw: dict[str, Any], rules: RuleSet) -> tuple[str, list[Finding]]:
    """The verdict and findings for one case dict (its ``expect`` is ignored)."""
    raw, source_findings = _unknown_sources(raw)
    _, ctx = parse_case(raw)
    source_findings += _recs_outside_catalog(ctx)
    msg_raw = raw.get("message")
    schema = source_findings + validate_message_dict(msg_raw, ctx.channel)
    if schema:
        return verdict(schema), schema
    data = dict(msg_raw)  # type: ignore[arg-type]
    data["explanations"] = tuple(Explanation(product_id=e["product_id"], text=e["text"]) for e in data["explanations"])
    msg = RenderedMessage(**data)
    findings = source_findings + run_gates(msg, ctx, rules)
    return verdict(findings), findings


def _recs_outside_catalog(ctx: GateContext) -> list[Finding]:
    """A schema finding for each recommendation whose product the case's catalog lacks: nothing the
    message says of it can be checked (the pipeline's planner never recommends such a product)."""
    if not ctx.catalog:
        return []
    return [Finding(rule_id="schema.recommendation-product", gate="schema", severity="error",
                    field=f"recommendations[{i}].product_id", span=(0, len(r.product_id)), excerpt=r.product_id,
                    message=f"recommended product '{r.product_id}' is not in the catalog; recommend only "
                            "catalog products")
            for i, r in enumerate(ctx.recommendations) if r.product_id not in ctx.catalog]


def iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        fh = path.open(encoding="utf-8")
    except OSError as e:
        raise InputFileError(f"cannot read cases file: {e.strerror}", file=str(path)) from e
    with fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                yield n, line


def _error_text(e: Exception) -> str:
    if isinstance(e, json.JSONDecodeError):
        return f"invalid JSON: {e.msg} at column {e.colno}"
    if isinstance(e, ValidationError):
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        more = f" (+{e.error_count() - 1} more)" if e.error_count() > 1 else ""
        return f"invalid case: {loc}: {err['msg']}{more}"
    return f"invalid case: {e}"


def _marked(text: str, span: tuple[int, int] | None, width: int = 50) -> str:
    """The excerpt marked «» in its context."""
    if not span or span[0] == span[1] or span[1] > len(text):
        return ""
    a, b = span
    lo, hi = max(0, a - width), min(len(text), b + width)
    s = ("…" if lo else "") + text[lo:a] + "«" + text[a:b] + "»" + text[b:hi] + ("…" if hi < len(text) else "")
    return s.replace("\n", "⏎")


def _field_text(raw: dict[str, Any], field: str) -> str:
    msg = raw.get("message") or {}
    try:
        if field.startswith("explanations["):
            i = int(field[len("explanations["):field.index("]")])
            return msg["explanations"][i]["text"]
        v = msg.get(field, "")
        return v if isinstance(v, str) else ""
    except (KeyError, IndexError, TypeError, ValueError):
        return ""


def check_cases(path: Path | str, *, as_json: bool = False, rules_dirs: Sequence[Path] | None = None,
                out: IO[str] | None = None) -> int:
    out = out or sys.stdout
    rules = load_rules(rules_dirs)
    counts: Counter[str] = Counter()
    gates: Counter[str] = Counter()
    bad = 0
    labels = Agreement()
    for n, line in iter_lines(Path(path)):
        try:
            raw = json.loads(line)
            if not isinstance(raw, dict):
                raise ValueError("a case is a JSON object")
            label = raw.pop("expect", None)  # set aside unread: the verdict never sees it
            v, findings = check_case(raw, rules)
        except (json.JSONDecodeError, ValidationError, ValueError, KeyError, TypeError) as e:
            bad += 1
            text = _error_text(e)
            cid = None
            try:
                cid = json.loads(line).get("case_id")
            except Exception:
                pass
            print(f"{path}:{n}: {text}", file=sys.stderr)
            if as_json:
                out.write(json.dumps({"case_id": cid, "line": n, "verdict": "error", "error": text, "findings": []})
                          + "\n")
            else:
                out.write(f"line {n}: ERROR {text}\n\n")
            counts["error"] += 1
            continue
        counts[v] += 1
        for f in findings:
            if f.severity == "error":
                gates[f.gate] += 1
        if as_json:
            out.write(json.dumps({"case_id": raw.get("case_id"), "verdict": v,
                                  "findings": [finding_json(f) for f in findings]}, ensure_ascii=False) + "\n")
            continue
        out.write(f"{raw.get('case_id')}: {v.upper()}{labels.note(raw.get('case_id'), v, label)}\n")
        for f in sort_findings(findings):
            if f.severity == "info":
                continue
            flag = "" if f.decidable else " (needs review)"
            out.write(f"  {f.severity:<7} {f.gate:<10} {f.rule_id} [{f.field}]{flag}: {f.message}\n")
            ctx = _marked(_field_text(raw, f.field), f.span)
            if ctx:
                out.write(f"          {ctx}\n")
        out.write("\n")
    total = sum(counts.values())
    if not as_json:
        parts = ", ".join(f"{counts[k]} {k}" for k in ("pass", "review", "fail", "error") if counts[k])
        out.write(f"{total} case(s): {parts or 'none'}\n")
        if gates:
            out.write("error findings by gate: " + ", ".join(f"{g} {c}" for g, c in sorted(gates.items())) + "\n")
        if labels.labelled:
            out.write(labels.summary() + "\n")
        if bad:
            out.write(f"{bad} malformed line(s); exit status 2\n")
    return 2 if bad else 0


def print_rules(*, as_json: bool = False, out: IO[str] | None = None) -> None:
    out = out or sys.stdout
    rules = load_rules()
    if as_json:
        for cr in rules:
            r = cr.rule
            out.write(json.dumps({"id": r.id, "gate": r.gate, "severity": r.severity, "kind": r.kind,
                                  "message": r.message, "fix": r.fix, "ref": r.ref, "file": cr.file,
                                  "line": cr.line}) + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(rules)} rules")
    for col in ("id", "gate", "severity", "kind", "message", "fix"):
        table.add_column(col, overflow="fold")
    for cr in rules:
        r = cr.rule
        table.add_row(r.id, r.gate, r.severity, r.kind, r.message, r.fix)
    Console(file=out, width=160).print(table)
