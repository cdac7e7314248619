"""The reviewer queue: every message that ended in review, rejected, fallback or repaired.

Filterable by outcome, rule, gate, segment, tier, decision status and member id;
sortable; paginated with LIMIT/OFFSET over indexed columns (m002_studio adds
``members(outcome, seq)``, ``findings(rule_id, member_key)`` and friends), so
a page of a 50,000-message queue is a few milliseconds of SQL.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

QUEUE_OUTCOMES = ("review", "rejected", "fallback", "repaired")
SORTS = {
    "seq": "m.seq",
    "member": "m.member_id",
    "outcome": "m.outcome",
    "segment": "m.segment",
    "tier": "m.tier",
    "errors": "(SELECT COUNT(*) FROM findings f WHERE f.member_key = m.member_key AND f.severity = 'error')",
    "updated": "m.updated_at",
}
PAGE_SIZES = (25, 50, 100, 200)


@dataclass
class QueueFilter:
    outcome: str = ""
    rule: str = ""
    gate: str = ""
    segment: str = ""
    tier: str = ""
    status: str = ""  # "" | open | decided
    q: str = ""
    sort: str = "seq"
    order: str = "asc"
    page: int = 1
    per_page: int = 50

    @classmethod
    def from_query(cls, qp) -> QueueFilter:
        def num(name: str, default: int) -> int:
            try:
                return max(1, int(qp.get(name, default)))
            except (TypeError, ValueError):
                return default

        f = cls(outcome=qp.get("outcome", ""), rule=qp.get("rule", ""), gate=qp.get("gate", ""),
                segment=qp.get("segment", ""), tier=qp.get("tier", ""), status=qp.get("status", ""),
                q=qp.get("q", "").strip(), sort=qp.get("sort", "seq"), order=qp.get("order", "asc"),
                page=num("page", 1), per_page=num("per_page", 50))
        if f.outcome not in QUEUE_OUTCOMES:
            f.outcome = ""
        if f.sort not in SORTS:
            f.sort = "seq"
        if f.order not in ("asc", "desc"):
            f.order = "asc"
        if f.per_page not in PAGE_SIZES:
            f.per_page = 50
        if f.status not in ("open", "decided"):
            f.status = ""
        return f

    def params(self, **changes: Any) -> str:
        d = {k: getattr(self, k) for k in ("outcome", "rule", "gate", "segment", "tier", "status", "q", "sort",
                                           "order", "page", "per_page")}
        d.update(changes)
        defaults = QueueFilter()
        return urlencode({k: v for k, v in d.items() if v not in ("", None) and v != getattr(defaults, k)})


def where_clause(f: QueueFilter) -> tuple[str, list[Any]]:
    conds: list[str] = []
    args: list[Any] = []
    if f.outcome:
        conds.append("m.outcome = ?")
        args.append(f.outcome)
    else:
        conds.append(f"m.outcome IN ({','.join('?' * len(QUEUE_OUTCOMES))})")
        args.extend(QUEUE_OUTCOMES)
    if f.rule:
        conds.append("m.member_key IN (SELECT member_key FROM findings WHERE rule_id = ?)")
        args.append(f.rule)
    if f.gate:
        conds.append("m.member_key IN (SELECT member_key FROM findings WHERE gate = ?)")
        args.append(f.gate)
    if f.segment:
        conds.append("m.segment = ?")
        args.append(f.segment)
    if f.tier:
        try:
            args.append(int(f.tier))
            conds.append("m.tier = ?")
        except ValueError:
            pass
    decided = ("EXISTS (SELECT 1 FROM decisions d WHERE d.member_key = m.member_key "
               "AND d.action IN ('approve', 'reject'))")
    if f.status == "open":
        conds.append("NOT " + decided)
    elif f.status == "decided":
        conds.append(decided)
    if f.q:  # id prefix, as a range so the members(member_id) index serves it
        conds.append("m.member_id >= ? AND m.member_id < ?")
        args.extend([f.q, f.q + "\U0010ffff"])
    return " AND ".join(conds), args


def query(db, f: QueueFilter) -> dict[str, Any]:
    """One page of the queue plus the total, for filter ``f``."""
    where, args = where_clause(f)
    total = db.execute(f"SELECT COUNT(*) FROM members m WHERE {where}", args).fetchone()[0]
    pages = max(1, math.ceil(total / f.per_page))
    page = min(f.page, pages)
    order = f"{SORTS[f.sort]} {f.order.upper()}" + (f", m.seq {f.order.upper()}" if f.sort != "seq" else "")
    rows = db.execute(
        f"SELECT m.member_key, m.member_id, m.outcome, m.segment, m.tier, m.updated_at, "
        f"json_extract(m.record, '$.message.subject') FROM members m WHERE {where} "
        f"ORDER BY {order} LIMIT ? OFFSET ?", args + [f.per_page, (page - 1) * f.per_page]).fetchall()
    keys = [r[0] for r in rows]
    rules: dict[str, list[tuple[str, str]]] = {k: [] for k in keys}
    latest: dict[str, tuple[str, str]] = {}
    if keys:
        marks = ",".join("?" * len(keys))
        for key, rule, sev in db.execute(
                f"SELECT member_key, rule_id, MIN(CASE severity WHEN 'error' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END) "
                f"FROM findings WHERE member_key IN ({marks}) GROUP BY member_key, rule_id ORDER BY 3, 2", keys):
            rules[key].append((rule, ("error", "warning", "info")[sev]))
        for key, action, reviewer in db.execute(
                f"SELECT member_key, action, reviewer FROM decisions WHERE id IN (SELECT MAX(id) FROM decisions "
                f"WHERE member_key IN ({marks}) GROUP BY member_key)", keys):
            latest[key] = (action, reviewer)
    items = [{"key": r[0], "member_id": r[1] or r[0], "outcome": r[2], "segment": r[3], "tier": r[4],
              "updated_at": r[5], "subject": r[6] or "", "rules": rules.get(r[0], []),
              "decision": latest.get(r[0])} for r in rows]
    return {"items": items, "total": total, "page": page, "pages": pages}


def store_version(db) -> tuple[int, int, int]:
    """Changes whenever members or findings change (O(1): max rowids; a re-saved member gets a new rowid)."""
    return tuple(db.execute("SELECT (SELECT MAX(rowid) FROM members), (SELECT MAX(rowid) FROM findings), "
                            "(SELECT COUNT(*) FROM studio_variants)").fetchone())


_FACETS: dict[str, tuple[Any, dict[str, Any]]] = {}


def cached_facets(db, path: str) -> dict[str, Any]:
    ver = store_version(db)
    hit = _FACETS.get(path)
    if hit is None or hit[0] != ver:
        hit = (ver, facets(db))
        _FACETS[path] = hit
    return hit[1]


def facets(db) -> dict[str, Any]:
    """Values for the filter menus (rules with counts, gates, segments, tiers) and counts by outcome."""
    marks = ",".join("?" * len(QUEUE_OUTCOMES))
    # covering-index scans: findings(rule_id, member_key) and findings(gate, member_key)
    counts_by_rule = db.execute("SELECT rule_id, COUNT(DISTINCT member_key) FROM findings GROUP BY rule_id").fetchall()
    gate_of = {r: db.execute("SELECT gate FROM findings WHERE rule_id = ? LIMIT 1", (r,)).fetchone()[0]
               for r, _ in counts_by_rule}
    rules = sorted(((r, gate_of.get(r, ""), n) for r, n in counts_by_rule), key=lambda x: (-x[2], x[0]))
    gates = sorted(set(gate_of.values()))
    segments = [s for (s,) in db.execute("SELECT DISTINCT segment FROM members WHERE segment IS NOT NULL ORDER BY 1")]
    tiers = [t for (t,) in db.execute("SELECT DISTINCT tier FROM members WHERE tier IS NOT NULL ORDER BY 1")]
    counts = dict(db.execute(f"SELECT outcome, COUNT(*) FROM members WHERE outcome IN ({marks}) GROUP BY outcome",
                             QUEUE_OUTCOMES).fetchall())
    return {"rules": rules, "gates": gates, "segments": segments, "tiers": tiers,
            "counts": {o: counts.get(o, 0) for o in QUEUE_OUTCOMES}}


async def page(request: Request) -> Response:
    from .app import render

    studio = request.app.state.studio
    f = QueueFilter.from_query(request.query_params)
    res = query(studio.db, f)
    return render(request, "queue.html", {"f": f, "res": res, "facets": cached_facets(studio.db, str(studio.run_dir)),
                                          "outcomes": QUEUE_OUTCOMES, "sorts": list(SORTS), "page_sizes": PAGE_SIZES,
                                          "json": json})
