"""What the studio needs from the campaign: members, plans, the gates, the model.

Loaded once, lazily, from the campaign file the run used (``campaign_path`` in
the store's meta, or ``serve --campaign``). Member rows are found by streaming
the members file (the store keeps the plan, not the whole member row); found
rows are cached.

A reviewer's edit is words only: ``reassemble`` puts them in the engine's
frame with the run's own assembler (prices, offer terms, links, sign-off and
footer come from the plan), and ``check`` calls the same gates as the pipeline
and ``contentgen check``.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from .. import gates
from ..assemble import assemble, text_version
from ..config import load_campaign
from ..load import MemberRow, iter_members, load_catalog, load_offers, load_suppression
from ..models import Draft, Member, Plan, Recommendation, RenderedMessage
from ..plan import Planner
from ..prompts import Prompts
from ..repair import finding_dicts, gate_context

_PROBE = "\u2063words\u2063"  # invisible separators: never in a real message
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
        self._rows_lock = threading.Lock()
        self._backend: tuple[str, str | None, str, bool] | None = None
        self.index = MemberIndex(self, studio)

    # -- members
    def _remember(self, row: MemberRow) -> None:
        with self._rows_lock:
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
        """The member's input row: from memory, from the studio's member index (one indexed read), or,
        until the index is built, by reading the members file."""
        with self._rows_lock:
            hit = self._rows.get(member_id)
        if hit is not None:
            return hit
        if self.index.ready():
            row = self.index.get(member_id)
            if row is not None:
                self._remember(row)
                return row
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
        """The member's plan as the run made it (same planner inputs), or the tier-1 basic plan."""
        row = self.member_row(member_id)
        if row is None:
            return None
        if basic:
            return self.planner.basic_plan(row.member)
        plan = self.planner.plan(row.member, row.recommendations, recently_bought=row.recently_bought,
                                 returned=row.returned)
        if plan.action == "holdout":
            return self.planner.basic_plan(row.member)
        return plan

    # -- messages
    def draft_of(self, response: str | None) -> Draft | None:
        """A model attempt's (or the fallback's) words, if its answer parses as a draft."""
        from ..gates.schema import validate_draft

        draft, _ = validate_draft(response)
        return draft

    def assemble_draft(self, plan: Plan, response: str | None) -> RenderedMessage | None:
        draft = self.draft_of(response)
        return None if draft is None else assemble(plan, draft, self.campaign)

    def reassemble(self, plan: Plan, draft: Draft) -> RenderedMessage:
        """The reviewer's words in the engine's frame: greeting, prices, offer terms, links, sign-off and
        footer are rebuilt from the plan, exactly as the run's assembler builds them."""
        return assemble(plan, draft, self.campaign)

    def frame(self, plan: Plan) -> tuple[str, str]:
        """The engine's lines before and after the words of the body (greeting; products, offers, sign-off)."""
        probe = assemble(plan, Draft(subject="", preheader="", body=_PROBE), self.campaign)
        head, _, tail = probe.body.partition(_PROBE)
        return head, tail

    def check(self, plan: Plan, msg: RenderedMessage) -> list[dict[str, Any]]:
        """The gates, as the run and ``contentgen check`` call them."""
        ctx = gate_context(plan, self.campaign, self.offers, self.catalog)
        return finding_dicts(gates.run_gates(msg, ctx, self.rules))

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


def verdict(findings: list[dict[str, Any]]) -> str:
    from ..models import Finding

    return gates.verdict([Finding.model_validate(f) for f in findings])


def export_message(m: RenderedMessage, channel: str) -> dict[str, Any]:
    """The export record's ``message`` for ``channel`` (the shape ``repair.export_record`` writes)."""
    if channel in ("push", "inapp"):
        return {"title": m.subject, "body": m.body, "url": m.cta_url,
                "explanations": [e.model_dump() for e in m.explanations],
            "products": list(getattr(m, "products", None) or ())}
    if channel == "sms":
        return {"text": m.body}
    return message_dict(m)


class MemberIndex:
    """The input rows of the members in the review queue, saved in the run store once, read by key.

    Reading a member's row from a members file of 500,000 rows takes seconds; the detail page needs it
    for every message it opens (the plan is rebuilt from it). A background thread reads the files once
    and stores each queued member's validated row (``studio_member_rows``); ``ready`` says when the
    index matches the campaign's input files (their names, sizes and times), until then lookups read
    the file as before."""

    def __init__(self, ctx: CampaignContext, studio):
        self.ctx, self.studio = ctx, studio
        inputs = ctx.campaign.inputs
        stamp = []
        for p in (inputs.members, inputs.recommendations, inputs.catalog):
            try:
                st = Path(p).stat()
                stamp.append(f"{Path(p).resolve()}:{st.st_size}:{st.st_mtime_ns}")
            except OSError:
                stamp.append(str(p))
        self.fingerprint = hashlib.sha256("|".join(stamp).encode()).hexdigest()[:32]
        self._ready = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def ready(self) -> bool:
        if not self._ready:
            self._ready = self.studio.sdb.member_index_state() == self.fingerprint
        return self._ready

    def start(self) -> None:
        """Build the index in the background unless it is there already."""
        if self.ready() or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._build, name="contentgen-member-index", daemon=True)
        self._thread.start()
        self.studio.stack.callback(self.stop)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def _build(self) -> None:
        sdb = self.studio.sdb
        try:
            wanted = sdb.queued_member_ids()
            sdb.member_index_reset()
            batch: list[tuple[str, str]] = []
            for row in self.ctx.iter_rows():
                if self._stop.is_set():
                    return
                if row.member.member_id not in wanted:
                    continue
                batch.append((row.member.member_id, _dump_row(row)))
                if len(batch) >= 2000:
                    sdb.member_index_add(batch)
                    batch = []
            sdb.member_index_add(batch)
            sdb.member_index_done(self.fingerprint)
        except Exception:  # noqa: BLE001  (the index is an optimisation: without it, lookups read the file)
            import logging

            logging.getLogger("contentgen.studio").exception("studio: building the member index failed")

    def get(self, member_id: str) -> MemberRow | None:
        raw = self.studio.sdb.member_index_get(member_id)
        return _load_row(raw) if raw else None


def _dump_row(row: MemberRow) -> str:
    return json.dumps({"seq": row.seq, "line": row.line, "member": row.member.model_dump(mode="json"),
                       "recs": [r.model_dump(mode="json") for r in row.recommendations],
                       "bought": sorted(row.recently_bought), "returned": sorted(row.returned)}, ensure_ascii=False)


def _load_row(raw: str) -> MemberRow:
    d = json.loads(raw)
    return MemberRow(d["seq"], Member.model_validate(d["member"]),
                     tuple(Recommendation.model_validate(r) for r in d["recs"]), [], d["line"],
                     frozenset(d["bought"]), frozenset(d["returned"]))
