"""``contentgen rules impact OLD NEW --on RUN_DIR``: what a rule edit would change on a past run.

Every message the run produced (``messages.jsonl``: the model's, the repaired ones and the
pre-approved fallbacks) is gated again with both rule sets, in the member's context rebuilt from
the run's campaign (its catalog, offers and member rows; the recommendations and evidence the
plan the run made; segment fallbacks and holdout messages as tier 1, as the run judged them). For each
rule: the messages it newly flags, the messages it no longer flags, with examples; and how many
verdicts change. An analyst reads this before shipping a rule edit.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputFileError, RuleFileError
from ..models import Evidence, Explanation, Finding, GateContext, RenderedMessage, Recommendation
from . import load_rules, run_gates, verdict
from .engine.ruleset import RuleSet


def rule_folders(path: Path) -> list[Path]:
    """The rule folders of OLD or NEW: ``brand_rules/`` and ``compliance/`` under it (a checkout),
    or the folder itself."""
    path = Path(path)
    if not path.is_dir():
        raise RuleFileError("rules folder not found", file=str(path),
                            hint="give a folder of rule files, or a checkout holding brand_rules/ and compliance/")
    subs = [path / n for n in ("brand_rules", "compliance") if (path / n).is_dir()]
    return subs or [path]


def _campaign_path(run_dir: Path, campaign: Path | None) -> Path:
    if campaign is not None:
        return campaign
    from ..store import read_meta

    path = read_meta(run_dir, "campaign_path")
    if path and Path(path).is_file():
        return Path(path)
    raise InputFileError("cannot tell which campaign file this run used", file=str(run_dir),
                         hint="pass --campaign CAMPAIGN.yaml")


def _message(record: dict[str, Any]) -> RenderedMessage | None:
    m = record.get("message")
    if not isinstance(m, dict):
        return None
    expl = tuple(Explanation(product_id=str(e.get("product_id", "")), text=str(e.get("text", "")))
                 for e in m.get("explanations") or [] if isinstance(e, dict))
    channel = record.get("channel") or "email"
    if channel in ("push", "inapp"):
        return RenderedMessage(subject=m.get("title", ""), body=m.get("body", ""), cta_url=m.get("url", ""),
                               explanations=expl)
    if channel == "sms":
        return RenderedMessage(body=m.get("text", ""))
    return RenderedMessage(subject=m.get("subject", ""), preheader=m.get("preheader", ""), body=m.get("body", ""),
                           cta_text=m.get("cta_text", ""), cta_url=m.get("cta_url", ""), explanations=expl,
                           footer=m.get("footer", ""))


@dataclass
class Gated:
    member_id: str
    outcome: str
    message: RenderedMessage
    ctx: GateContext


def run_messages(run_dir: Path, campaign: Path | None = None) -> Iterator[Gated]:
    """Every message of a finished run with the context it was gated in."""
    from ..config import load_campaign
    from ..load import iter_members, load_catalog, load_offers
    from ..plan import Planner, delivery_date

    run_dir = Path(run_dir)
    path = run_dir / "messages.jsonl"
    if not path.is_file():
        raise InputFileError("no messages.jsonl: is this a finished run's folder?", file=str(path))
    c = load_campaign(_campaign_path(run_dir, campaign))
    catalog, _ = load_catalog(c.inputs.catalog)
    offers, _ = load_offers(c.inputs.offers)
    planner = Planner(c, catalog, offers)
    records: dict[str, dict[str, Any]] = {}
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputFileError(f"not valid JSON: {e.msg}", file=str(path), line=n) from e
            if rec.get("message") and rec.get("member_id"):
                records[str(rec["member_id"])] = rec
    if not records:
        return
    for row in iter_members(c.inputs.members, c.inputs.recommendations, catalog):
        member = row.member
        if member is None or member.member_id not in records:
            continue
        rec = records.pop(member.member_id)
        msg = _message(rec)
        if msg is None:
            continue
        # the plan the run judged this message on: the segment's tier-1 plan for a segment fallback or a
        # holdout message, else the member's own plan (a model message, or a personal fallback)
        basic = rec.get("outcome") in ("fallback", "holdout") and rec.get("fallback") != "personal"
        plan = None if basic else planner.plan(member, row.recommendations, recently_bought=row.recently_bought,
                                                returned=row.returned)
        if plan is None or plan.action != "send":
            plan = planner.basic_plan(member)
        recs = tuple(Recommendation(product_id=pp.product.product_id, evidence=pp.evidence) for pp in plan.products)
        if plan.basic:
            member = member.model_copy(update={"opt_in_tier": 1})
        # offers, deadlines and dates are judged on the day the message arrives (repair.gate_context)
        ctx = GateContext(send_date=delivery_date(plan) or c.send_date, member=member, recommendations=recs,
                          offers=tuple(offers), catalog=catalog, hero_product_id=c.hero_product_id,
                          allowed_domains=c.brand.allowed_domains, channel=rec.get("channel") or plan.channel,
                          brand=c.brand)
        yield Gated(member.member_id, str(rec.get("outcome", "")), msg, ctx)
        if not records:
            return


@dataclass
class RuleImpact:
    rule_id: str
    flagged: list[dict[str, Any]] = field(default_factory=list)   # fires under NEW, not under OLD
    cleared: list[dict[str, Any]] = field(default_factory=list)   # fires under OLD, not under NEW
    n_flagged: int = 0
    n_cleared: int = 0


@dataclass
class Impact:
    messages: int = 0
    rules: dict[str, RuleImpact] = field(default_factory=dict)
    verdicts: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # "pass -> fail": n
    added_rules: list[str] = field(default_factory=list)
    removed_rules: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"messages": self.messages, "verdict_changes": dict(self.verdicts),
                "added_rules": self.added_rules, "removed_rules": self.removed_rules,
                "rules": {k: {"newly_flagged": v.n_flagged, "newly_cleared": v.n_cleared,
                              "flagged_examples": v.flagged, "cleared_examples": v.cleared}
                          for k, v in sorted(self.rules.items())}}


def _by_rule(findings: Sequence[Finding]) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        if f.gate != "schema":
            out[f.rule_id].append(f)
    return out


def _example(g: Gated, fs: list[Finding]) -> dict[str, Any]:
    f = fs[0]
    return {"member_id": g.member_id, "outcome": g.outcome, "field": f.field, "excerpt": f.excerpt,
            "severity": f.severity, "message": f.message}


def impact(old: RuleSet, new: RuleSet, messages: Iterator[Gated], examples: int = 3) -> Impact:
    out = Impact()
    old_ids, new_ids = {cr.id for cr in old}, {cr.id for cr in new}
    out.added_rules = sorted(new_ids - old_ids)
    out.removed_rules = sorted(old_ids - new_ids)
    for g in messages:
        out.messages += 1
        before, after = run_gates(g.message, g.ctx, old), run_gates(g.message, g.ctx, new)
        vb, va = verdict(before), verdict(after)
        if vb != va:
            out.verdicts[f"{vb} -> {va}"] += 1
        b, a = _by_rule(before), _by_rule(after)
        for rid in set(b) | set(a):
            if (rid in a) == (rid in b):
                continue
            ri = out.rules.setdefault(rid, RuleImpact(rid))
            if rid in a:
                ri.n_flagged += 1
                if len(ri.flagged) < examples:
                    ri.flagged.append(_example(g, a[rid]))
            else:
                ri.n_cleared += 1
                if len(ri.cleared) < examples:
                    ri.cleared.append(_example(g, b[rid]))
    return out


def rules_impact(old: Path, new: Path, run_dir: Path, campaign: Path | None = None, examples: int = 3) -> Impact:
    return impact(load_rules(rule_folders(old)), load_rules(rule_folders(new)), run_messages(run_dir, campaign),
                  examples)


def format_impact(imp: Impact, old: str, new: str) -> str:
    lines = [f"{imp.messages} message(s) re-gated with {old} (old) and {new} (new)"]
    if imp.added_rules:
        lines.append("rules only in new: " + ", ".join(imp.added_rules))
    if imp.removed_rules:
        lines.append("rules only in old: " + ", ".join(imp.removed_rules))
    if imp.verdicts:
        lines.append("verdicts changed: " + ", ".join(f"{k}: {v}" for k, v in sorted(imp.verdicts.items())))
    else:
        lines.append("verdicts changed: none")
    if not imp.rules:
        lines.append("no rule fires on a different message")
    for rid, ri in sorted(imp.rules.items(), key=lambda kv: (-(kv[1].n_flagged + kv[1].n_cleared), kv[0])):
        lines.append(f"\n{rid}: newly flags {ri.n_flagged} message(s), no longer flags {ri.n_cleared}")
        for label, exs in (("+", ri.flagged), ("-", ri.cleared)):
            for e in exs:
                excerpt = e["excerpt"].replace("\n", " ")[:80]
                lines.append(f"  {label} {e['member_id']} ({e['outcome']}) [{e['field']}] \"{excerpt}\": {e['message']}")
    return "\n".join(lines) + "\n"
