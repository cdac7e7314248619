"""The reviewer queue: messages that ended in review, rejected, fallback or repaired (or any outcome asked for).

Filterable by outcome (one or more), rule, gate, error findings only,
segment, tier, decision status and member-id prefix; sortable by run order,
member id or error count; keyset-paginated (``after``/``before`` cursors, so a
deep page costs what the first costs). Totals and menus come from the
aggregates the run keeps (``queue_index``). Each row says what the export
sends now. A malformed parameter is a 400 that names it.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from ..models import OUTCOMES
from ..store import queue_index as QI

QUEUE_OUTCOMES = QI.QUEUE_OUTCOMES
SORTS = ("seq", "member", "errors")
SORT_LABELS = {"seq": "run order", "member": "member id", "errors": "error findings"}
PAGE_SIZES = (25, 50, 100, 200)
MAX_TEXT = 200


def _bad(name: str, value: str, want: str) -> HTTPException:
    shown = value if len(value) <= 40 else value[:40] + "…"
    return HTTPException(400, f"The query parameter {name}={shown!r} is not valid: {want}.")


def encode_cursor(c: tuple[Any, int]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(c), separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(s: str, sort: str) -> tuple[Any, int]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))
        val, seq = raw
    except (ValueError, TypeError):
        raise _bad("cursor", s, "use the page links") from None
    if not (isinstance(seq, int) and -(2 ** 63) <= seq < 2 ** 63):
        raise _bad("cursor", s, "use the page links")
    if sort == "member" and not isinstance(val, str):
        raise _bad("cursor", s, "use the page links")
    if sort in ("seq", "errors") and not (isinstance(val, int) and -(2 ** 63) <= val < 2 ** 63):
        raise _bad("cursor", s, "use the page links")
    return val, seq


@dataclass
class QueueFilter:
    """The queue's query parameters, validated. ``flt`` is what the aggregates are asked."""

    flt: QI.Filter
    outcome_param: tuple[str, ...] = ()
    per_page: int = 50
    after: tuple[Any, int] | None = None
    before: tuple[Any, int] | None = None
    end: bool = False

    @classmethod
    def from_query(cls, qp, *, cursors: bool = True) -> QueueFilter:
        def one(name: str) -> str:
            vals = qp.getlist(name) if hasattr(qp, "getlist") else [qp[name]] if name in qp else []
            if len(vals) > 1:
                raise _bad(name, vals[1], "give it once")
            v = vals[0] if vals else ""
            if len(v) > MAX_TEXT or any(ord(ch) < 32 for ch in v):
                raise _bad(name, v, f"at most {MAX_TEXT} printable characters")
            return v.strip()

        outcomes = tuple(qp.getlist("outcome")) if hasattr(qp, "getlist") else tuple(
            x for x in [qp.get("outcome")] if x)
        outcomes = tuple(o for o in outcomes if o != "")
        for o in outcomes:
            if o != "all" and o not in OUTCOMES:
                raise _bad("outcome", o, f"one of {', '.join(OUTCOMES)} or all")
        chosen = OUTCOMES if "all" in outcomes else tuple(o for o in OUTCOMES if o in outcomes) or QUEUE_OUTCOMES
        if set(chosen) == set(QUEUE_OUTCOMES):
            chosen, outcomes = QUEUE_OUTCOMES, ()
        elif chosen == OUTCOMES:
            outcomes = ("all",)
        else:
            outcomes = chosen
        gate = one("gate")
        if gate and gate not in QI.GATE_BITS:
            raise _bad("gate", gate, f"one of {', '.join(QI.GATE_BITS)}")
        severity = one("severity")
        if severity not in ("", "error"):
            raise _bad("severity", severity, "'error' or nothing")
        tier_s = one("tier")
        tier = None
        if tier_s:
            if not (tier_s.isascii() and tier_s.isdigit() and len(tier_s) == 1):
                raise _bad("tier", tier_s, "a tier number, 1 to 3")
            tier = int(tier_s)
        status = one("status")
        if status not in ("", "open", "decided"):
            raise _bad("status", status, "open, decided or nothing")
        sort = one("sort") or "seq"
        if sort not in SORTS:
            raise _bad("sort", sort, f"one of {', '.join(SORTS)}")
        order = one("order") or ("desc" if sort == "errors" else "asc")
        if order not in ("asc", "desc"):
            raise _bad("order", order, "asc or desc")
        pp = one("per_page") if "per_page" in qp else ""
        per_page = 50
        if pp:
            if not (pp.isascii() and pp.isdigit() and int(pp) in PAGE_SIZES):
                raise _bad("per_page", pp, f"one of {', '.join(map(str, PAGE_SIZES))}")
            per_page = int(pp)
        f = cls(QI.Filter(outcomes=chosen, rule=one("rule"), gate=gate, severity=severity, segment=one("segment"),
                          tier=tier, status=status, q=one("q"), sort=sort, order=order),
                outcome_param=outcomes, per_page=per_page)
        if cursors:
            after, before, end = one("after") if "after" in qp else "", one("before") if "before" in qp else "", \
                one("end") if "end" in qp else ""
            if after:
                f.after = decode_cursor(after, sort)
            if before:
                f.before = decode_cursor(before, sort)
            if end not in ("", "1"):
                raise _bad("end", end, "1 or nothing")
            f.end = end == "1"
            if sum(bool(x) for x in (f.after, f.before, f.end)) > 1:
                raise HTTPException(400, "Give at most one of after, before and end.")
        return f

    def filter_params(self, **changes: Any) -> list[tuple[str, str]]:
        """The filter (no page position) as query pairs; ``changes`` override fields."""
        fl = self.flt
        d: dict[str, Any] = {"rule": fl.rule, "gate": fl.gate, "severity": fl.severity, "segment": fl.segment,
                             "tier": "" if fl.tier is None else str(fl.tier), "status": fl.status, "q": fl.q,
                             "sort": "" if fl.sort == "seq" else fl.sort,
                             "order": "" if fl.order == ("desc" if fl.sort == "errors" else "asc") else fl.order,
                             "per_page": "" if self.per_page == 50 else str(self.per_page)}
        outcomes = list(self.outcome_param)
        if "outcome" in changes:
            o = changes.pop("outcome")
            outcomes = list(o) if isinstance(o, (list, tuple)) else [o] if o else []
        if "sort" in changes:
            s = changes.pop("sort")
            d["sort"] = "" if s == "seq" else s
            d["order"] = changes.pop("order", "")
        d.update({k: ("" if v is None else str(v)) for k, v in changes.items()})
        pairs = [("outcome", o) for o in outcomes]
        pairs += [(k, v) for k, v in d.items() if v]
        return pairs

    def params(self, **changes: Any) -> str:
        return urlencode(self.filter_params(**changes))

    def page_params(self, **position: str) -> str:
        return urlencode(self.filter_params() + [(k, v) for k, v in position.items() if v])

    @property
    def is_default_outcomes(self) -> bool:
        return self.flt.outcomes == QUEUE_OUTCOMES


def query(db, f: QueueFilter) -> dict[str, Any]:
    """One page of the queue, the total and the cursors for the pages around it."""
    total, exact = QI.count(db, f.flt)
    if total == 0 and exact:
        page = QI.Page([], False, None, None)
    else:
        page = QI.page_keys(db, f.flt, limit=f.per_page, after=f.after, before=f.before, from_end=f.end,
                            matches=total if exact else None)
    items = QI.rows_for(db, page.keys)
    backward = f.before is not None or f.end
    # is there a page before / after this one?
    has_prev = (page.has_more if backward else f.after is not None) and bool(page.keys)
    has_next = (f.before is not None if backward else page.has_more) and bool(page.keys)
    if f.end:
        has_next = False
    return {"items": items, "total": total, "exact": exact, "has_prev": has_prev, "has_next": has_next,
            "prev": encode_cursor(page.first) if page.first else "", "next": encode_cursor(page.last) if page.last
            else "", "first_page": not has_prev}


def neighbours(db, f: QueueFilter, member_key: str) -> tuple[str | None, str | None]:
    """(previous, next) member keys in the filter's order around ``member_key``."""
    pos = QI.position(db, f.flt, member_key)
    if pos is None:
        return None, None
    total, exact = QI.count(db, f.flt)
    if total == 0 and exact:
        return None, None
    m = total if exact else None
    prev = QI.page_keys(db, f.flt, limit=1, before=pos, matches=m).keys
    nxt = QI.page_keys(db, f.flt, limit=1, after=pos, matches=m).keys
    return (prev[0] if prev else None), (nxt[0] if nxt else None)


def cached_facets(studio, db) -> dict[str, Any]:
    """The filter menus, recomputed only when the run has written members since."""
    ver = QI.store_version(db)
    hit = getattr(studio, "_facets", None)
    if hit is None or hit[0] != ver:
        hit = (ver, QI.facets(db))
        studio._facets = hit
    return hit[1]


def page(request: Request, form) -> Response:
    from .app import render

    studio = request.app.state.studio
    f = QueueFilter.from_query(request.query_params)
    db = studio.db
    res = query(db, f)
    return render(request, "queue.html", {
        "f": f, "res": res, "facets": cached_facets(studio, db), "outcomes": OUTCOMES,
        "queue_outcomes": QUEUE_OUTCOMES, "sorts": SORTS, "sort_labels": SORT_LABELS, "page_sizes": PAGE_SIZES,
        "sends": QI.SENDS, "gates": list(QI.GATE_BITS), "detail_qs": f.params()})


def detail_filter(qp) -> QueueFilter:
    """The queue filter a detail page was opened from (its query carries the same parameters)."""
    return QueueFilter.from_query(qp, cursors=False)


def with_changes(f: QueueFilter, **kw: Any) -> QueueFilter:
    return replace(f, flt=replace(f.flt, **kw))
