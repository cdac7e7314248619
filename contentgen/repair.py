"""Generate -> assemble -> gates -> repair (at most N) -> decide, for one member.

An output with error findings is re-asked with the findings in words the model
can act on; after ``max_repairs`` the member gets a fallback (or goes to review),
and the failure is recorded. The fallback is personal for tier-2/3 members: their
own picks in human-written copy, each explained from the evidence their tier
allows (``fallback.py``); tier-1 members, and anyone whose personal fallback fails
a gate, get the pre-approved tier-1 message for their segment.
A provider that is down is NOT a content failure: transport errors propagate
and the member stays pending.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import failpoints, gates
from .assemble import assemble, text_version
from .config import Campaign
from .errors import ContentgenError
from .gates.schema import DRAFT_SCHEMA, validate_draft
from .models import Finding, GateContext, Plan, RenderedMessage
from .plan import delivery_date
from .prompts import Prompts


@dataclass
class Decision:
    outcome: str
    message: RenderedMessage | None
    findings: list[Finding]
    attempts: list[dict[str, Any]] = field(default_factory=list)
    send: bool = True
    fallback: str | None = None  # "personal" or "segment" when a fallback message is what the member gets


def finding_dicts(findings: list[Finding]) -> list[dict[str, Any]]:
    return [f.model_dump(mode="json") for f in findings]


def gate_context(plan: Plan, campaign: Campaign, offers, catalog) -> GateContext:
    from .models import Recommendation

    recs = tuple(Recommendation(product_id=pp.product.product_id, evidence=pp.evidence) for pp in plan.products)
    member = plan.member.model_copy(update={"opt_in_tier": 1}) if plan.basic else plan.member
    # offers, deadlines and dates are judged on the day the message arrives in the member's time zone.
    # Built without re-validation: every part is already a validated model, and the run's catalog dict and
    # offers tuple are passed as they are (validation would copy the catalog for every message, ~300
    # products, and the gates' per-catalog and per-offer-list caches, keyed on identity, would miss)
    return GateContext.model_construct(
        send_date=delivery_date(plan) or campaign.send_date, member=member, recommendations=recs,
        offers=offers if isinstance(offers, tuple) else tuple(offers), catalog=catalog,
        hero_product_id=campaign.hero_product_id, allowed_domains=tuple(campaign.brand.allowed_domains),
        channel=plan.channel, brand=campaign.brand)


def grammar_schema(plan: Plan) -> dict[str, Any]:
    """The draft schema narrowed to this plan, for a backend that turns the schema into a grammar
    (llama.cpp): explanations only for the plan's products, one each from tier 2, none in tier 1, and the
    subject and preheader limits of the brand rules. (OpenAI's strict mode does not take all of these.)"""
    ids = [pp.product.product_id for pp in plan.products]
    explained = plan.channel in ("email", "inapp") and not plan.basic and plan.member.opt_in_tier >= 2
    n = len(ids) if explained else 0  # push and SMS show no explanations: the model need not write them
    props = DRAFT_SCHEMA["properties"]
    item = props["explanations"]["items"]
    explanations = {**props["explanations"], "minItems": n, "maxItems": n,
                    "items": {**item, "properties": {**item["properties"],
                                                     "product_id": {"type": "string", "enum": ids or ["-"]},
                                                     "text": {"type": "string", "minLength": 20,
                                                              "maxLength": 200}}}}
    return {**DRAFT_SCHEMA, "properties": {**props, "subject": {"type": "string", "minLength": 8, "maxLength": 60},
                                           "preheader": {"type": "string", "minLength": 8, "maxLength": 100},
                                           "body": {"type": "string", "minLength": 20, "maxLength": 300},
                                           "explanations": explanations}}


class Decider:
    def __init__(self, campaign: Campaign, prompts: Prompts, rules, generate, offers, catalog, planner,
                 max_repairs: int | None = None, *, grammar: bool = False):
        self.campaign = campaign
        self.max_repairs = campaign.max_repairs if max_repairs is None else max_repairs
        self.prompts = prompts
        self.rules = rules
        self.generate = generate  # async (messages, schema) -> dict(text, finish_reason, refusal, tokens..., cached)
        self.offers = tuple(offers)  # one tuple for the run: the gates cache per offer list by identity
        self.catalog = catalog
        self.planner = planner
        self.grammar = grammar  # the backend makes a grammar of the schema: narrow it to each plan

    def check(self, plan: Plan, msg: RenderedMessage) -> list[Finding]:
        failpoints.hit("gate")
        ctx = gate_context(plan, self.campaign, self.offers, self.catalog)
        return gates.run_gates(msg, ctx, self.rules)

    def _try(self, plan: Plan, draft, kind: str, attempts: list[dict[str, Any]]):
        msg = assemble(plan, draft, self.campaign)
        findings = self.check(plan, msg)
        attempts.append({"n": len(attempts), "kind": "fallback", "fallback": kind, "prompt": None,
                         "response": draft.model_dump_json(), "findings": finding_dicts(findings)})
        return msg, findings

    def fallback(self, plan: Plan, failed: list[Finding], attempts: list[dict[str, Any]],
                 outcome: str = "fallback") -> Decision:
        fb = self.prompts.fallbacks
        if (outcome == "fallback" and not plan.basic and plan.member.opt_in_tier >= 2 and plan.products
                and fb.has_personal(plan.member.segment)):
            for slots in (True, False):  # words from the evidence, then only the reasons that take none
                draft = fb.personal(plan, self.planner.framings.churn_threshold, slots=slots)
                msg, findings = self._try(plan, draft, "personal", attempts)
                if gates.verdict(findings) == "pass":
                    return Decision(outcome, msg, failed, attempts, send=True, fallback="personal")
        fb_plan = self.planner.basic_plan(plan.member)
        msg, fb_findings = self._try(fb_plan, self.prompts.fallback(fb_plan), "segment", attempts)
        if gates.verdict(fb_findings) == "fail":
            # even the human-written message fails for this member: nothing is sent, a human decides
            return Decision("rejected", msg, failed + fb_findings, attempts, send=False)
        return Decision(outcome, msg, failed, attempts, send=True,
                        fallback="segment" if outcome == "fallback" else None)

    async def decide(self, plan: Plan) -> Decision:
        if plan.action == "holdout":
            if self.campaign.holdout_message == "none":
                return Decision("holdout", None, [], [], send=False)
            d = self.fallback(plan, [], [], outcome="holdout")
            return d
        if plan.lever_cell == "content":  # per-lever holdout: the pre-approved template, no model copy
            return self.fallback(plan, [], [], outcome="approved")
        pair = self.prompts.build(plan)
        messages = pair.messages()
        schema = grammar_schema(plan) if self.grammar else DRAFT_SCHEMA
        attempts: list[dict[str, Any]] = []
        last: list[Finding] = []
        last_msg: RenderedMessage | None = None
        for n in range(self.max_repairs + 1):
            try:
                res = await self.generate(messages, schema)
            except ContentgenError as e:
                if getattr(e, "fatal", True) or not hasattr(e, "provider_message"):
                    raise  # a misconfigured run (401/403/404) or a transport failure: not this member's fault
                res = {"text": None, "refusal": f"the provider rejected the request: {e.provider_message}"}
            draft, findings = validate_draft(res.get("text"), finish_reason=res.get("finish_reason"),
                                             refusal=res.get("refusal"))
            msg = None
            if draft is not None:
                msg = assemble(plan, draft, self.campaign)
                findings = findings + self.check(plan, msg)
                last_msg = msg
            attempts.append({"n": n, "kind": "generate" if n == 0 else "repair",
                             "prompt": messages[-1]["content"], "response": res.get("text"),
                             "findings": finding_dicts(findings), "prompt_tokens": res.get("prompt_tokens", 0),
                             "completion_tokens": res.get("completion_tokens", 0), "cached": res.get("cached", False)})
            v = gates.verdict(findings)
            if v == "pass" and msg is not None:
                return Decision("approved" if n == 0 else "repaired", msg, findings, attempts)
            if v == "review" and msg is not None:
                return Decision("review", msg, findings, attempts, send=False)
            last = findings
            if n < self.max_repairs:
                instructions = gates.repair_instructions([f for f in findings if f.severity == "error"])
                messages = messages + [{"role": "assistant", "content": res.get("text") or ""},
                                       {"role": "user", "content": self.prompts.repair(instructions, plan)}]
        if self.campaign.on_exhausted == "review":
            return Decision("review", last_msg, last, attempts, send=False)
        return self.fallback(plan, last, attempts)


def export_record(plan_or_member, decision: Decision | None, *, outcome: str | None = None,
                  reason: str = "", variant: str = "default") -> dict[str, Any]:
    member = plan_or_member.member if hasattr(plan_or_member, "member") else plan_or_member
    channel = getattr(plan_or_member, "channel", "email")
    rec: dict[str, Any] = {"member_id": member.member_id, "outcome": outcome or (decision.outcome if decision else ""),
                           "segment": member.segment, "tier": member.opt_in_tier, "channel": channel,
                           "variant": variant, "send": False, "reason": reason, "message": None, "findings": [],
                           "send_at_utc": None, "lever_cell": getattr(plan_or_member, "lever_cell", "")}
    if getattr(plan_or_member, "send_at", None) is not None:
        rec["send_at_utc"] = plan_or_member.send_at.isoformat().replace("+00:00", "Z")
    if hasattr(plan_or_member, "products") and plan_or_member.action == "send":
        plan = plan_or_member
        rec["plan"] = {
            "framing": plan.framing,
            "offers": [o.offer_id for o in plan.offers],
            "products": [{"product_id": pp.product.product_id, "name": pp.product.name,
                          "offer_id": pp.offer.offer_id if pp.offer else None,
                          "evidence": [e.model_dump() for e in pp.evidence],
                          "withheld": [e.model_dump() for e in pp.withheld]} for pp in plan.products],
            "withheld": [w.model_dump() for w in plan.withheld],
        }
    if decision is not None:
        rec["send"] = decision.send and decision.message is not None
        m = decision.message
        products = list(getattr(m, "products", None) or ()) if m is not None else []
        if m is not None and channel in ("push", "inapp"):
            rec["message"] = {"title": m.subject, "body": m.body, "url": m.cta_url,
                              "explanations": [e.model_dump() for e in m.explanations], "products": products}
        elif m is not None and channel == "sms":
            rec["message"] = {"text": m.body}
        elif m is not None:
            rec["message"] = {"subject": m.subject, "preheader": m.preheader, "text": text_version(m), "html": m.html,
                              "body": m.body, "cta_text": m.cta_text, "cta_url": m.cta_url, "footer": m.footer,
                              "explanations": [e.model_dump() for e in m.explanations], "products": products}
        rec["findings"] = finding_dicts(decision.findings)
        rec["attempts"] = len([a for a in decision.attempts if a["kind"] != "fallback"])
        if decision.fallback:
            rec["fallback"] = decision.fallback
    return rec
