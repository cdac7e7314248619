"""What the studio needs from the campaign: members, plans, the gates, the model.

Loaded once, lazily, from the campaign file the run used (``campaign_path`` in
the store's meta, or ``serve --campaign``). Member rows are found by streaming
the members file (the store keeps the plan, not the whole member row); found
rows are cached.

``recheck`` is the reviewer's "edit and re-check": it builds a
``RenderedMessage`` and the member's ``GateContext`` and calls the same gates
as the pipeline and ``contentgen check`` (structure checks + ``run_gates``).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from .. import gates
from ..assemble import assemble, render_html, text_version
from ..config import load_campaign
from ..load import MemberRow, iter_members, load_catalog, load_offers, load_suppression
from ..models import Explanation, Plan, RenderedMessage
from ..plan import Planner
from ..prompts import Prompts
from ..repair import finding_dicts, gate_context

CHURN_BANDS = {"low": (0.0, 0.33), "medium": (0.33, 0.66), "high": (0.66, 1.01)}


def churn_band(risk: float) -> str:
    for name, (lo, hi) in CHURN_BANDS.items():
        if lo <= risk < hi:
            return name
    return "high"


def message_dict(m: RenderedMessage) -> dict[str, Any]:
    """The export record's ``message`` shape (repair.export_record)."""
    return {"subject": m.subject, "preheader": m.preheader, "text": text_version(m), "html": m.html,
            "body": m.body, "cta_text": m.cta_text, "cta_url": m.cta_url, "footer": m.footer,
            "explanations": [e.model_dump() for e in m.explanations],
            "products": list(getattr(m, "products", None) or ())}


class CampaignContext:
    def __init__(self, path: Path, studio):
        self.path = Path(path)
        self.studio = studio
        self.campaign = load_campaign(self.path)
        c = self.campaign
        self.catalog, _ = load_catalog(c.inputs.catalog)
        self.offers, _ = load_offers(c.inputs.offers)
        self.suppression = load_suppression(c.inputs.suppression)
        self.planner = Planner(c, self.catalog, self.offers, self.suppression)
        self.rules = gates.load_rules(c.rules_dirs)
        self.prompts = Prompts(c.prompts_dir, c)
        self._rows: OrderedDict[str, MemberRow] = OrderedDict()
        self._backend: tuple[str, str | None, str, bool] | None = None

    # -- members
    def _remember(self, row: MemberRow) -> None:
        self._rows[row.member.member_id] = row
        self._rows.move_to_end(row.member.member_id)
        while len(self._rows) > 2048:
            self._rows.popitem(last=False)

    def iter_rows(self):
        c = self.campaign
        for row in iter_members(c.inputs.members, c.inputs.recommendations, self.catalog):
            if row.member is not None:
                yield row

    def member_row(self, member_id: str) -> MemberRow | None:
        if member_id in self._rows:
            return self._rows[member_id]
        for row in self.iter_rows():
            if row.member.member_id == member_id:
                self._remember(row)
                return row
        return None

    def find_members(self, *, segment: str = "", tier: str = "", churn: str = "", q: str = "",
                     limit: int = 24, scan_max: int = 200_000) -> list[MemberRow]:
        out = []
        q = q.strip().lower()
        for n, row in enumerate(self.iter_rows()):
            if n >= scan_max:
                break
            m = row.member
            if segment and m.segment != segment:
                continue
            if tier and str(m.opt_in_tier) != tier:
                continue
            if churn and churn_band(m.churn_risk) != churn:
                continue
            if q and q not in m.member_id.lower():
                continue
            if m.status != "active":
                continue
            self._remember(row)
            out.append(row)
            if len(out) >= limit:
                break
        return out

    def plan(self, member_id: str, *, basic: bool = False) -> Plan | None:
        row = self.member_row(member_id)
        if row is None:
            return None
        if basic:
            return self.planner.basic_plan(row.member)
        plan = self.planner.plan(row.member, row.recommendations)
        if plan.action == "holdout":
            return self.planner.basic_plan(row.member)
        return plan

    # -- messages
    def assemble_draft(self, plan: Plan, response: str | None) -> RenderedMessage | None:
        from ..gates.schema import validate_draft

        draft, _ = validate_draft(response)
        if draft is None:
            return None
        return assemble(plan, draft, self.campaign)

    def rebuild(self, plan: Plan, base: dict[str, Any], edits: dict[str, Any]) -> RenderedMessage:
        """The reviewer's edited words in the engine's frame: CTA, links and footer stay the engine's."""
        expl = []
        for i, x in enumerate(base.get("explanations") or []):
            text = edits.get(f"explanation_{i}", x.get("text", ""))
            expl.append(Explanation(product_id=x["product_id"], text=str(text).strip()))
        msg = RenderedMessage(subject=str(edits.get("subject", base.get("subject", ""))).strip(),
                              preheader=str(edits.get("preheader", base.get("preheader", ""))).strip(),
                              body=str(edits.get("body", base.get("body", ""))).replace("\r\n", "\n").strip(),
                              cta_text=base.get("cta_text", ""), cta_url=base.get("cta_url", ""),
                              explanations=tuple(expl), footer=base.get("footer", ""),
                              products=tuple(base.get("products") or ()))
        return msg.model_copy(update={"html": render_html(msg, plan, self.campaign)})

    def check(self, plan: Plan, msg: RenderedMessage) -> list[dict[str, Any]]:
        ctx = gate_context(plan, self.campaign, self.offers, self.catalog)
        return finding_dicts(gates.run_gates(msg, ctx, self.rules))

    def recheck(self, plan: Plan, base: dict[str, Any], edits: dict[str, Any]):
        msg = self.rebuild(plan, base, edits)
        findings = self.check(plan, msg)
        return message_dict(msg), findings, _verdict(findings)

    # -- the model (preview)
    def backend(self) -> tuple[str, str | None, str, bool]:
        """(base_url, api_key, model, is_local), opened once for the app's lifetime."""
        if self._backend is None:
            from ..pipeline import RunOptions, _backend

            cfg = self.studio.cfg
            opts = RunOptions(out=self.studio.run_dir, base_url=cfg.base_url, api_key=cfg.api_key, model=cfg.model)
            self._backend = self.studio.stack.enter_context(_backend(self.campaign, opts))
        return self._backend

    def names(self, plan: Plan | None = None) -> dict[str, str]:
        if plan is not None:
            return {pp.product.product_id: pp.product.name for pp in plan.products}
        return {pid: p.name for pid, p in self.catalog.items()}


def _verdict(findings: list[dict[str, Any]]) -> str:
    from ..models import Finding

    return gates.verdict([Finding.model_validate(f) for f in findings])


def names_plan(names: dict[str, str]) -> SimpleNamespace:
    """A stand-in plan for render_html when only product names are known."""
    return SimpleNamespace(products=[SimpleNamespace(product=SimpleNamespace(product_id=k, name=v))
                                     for k, v in names.items()])

