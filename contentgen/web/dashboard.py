"""The run dashboard: outcomes, top rules, findings by segment and tier and by gate, rates, cost.

Every figure is a sum over the aggregates the run keeps (``queue_index``), the
same numbers the queue counts, and every figure that counts members links to
the queue filter that lists exactly those members.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from ..models import OUTCOMES
from . import charts
from ..store import queue_index as QI

GENERATED = ("approved", "repaired", "fallback", "review", "rejected")


def queue_link(*, outcomes: tuple[str, ...] | str = "all", **kw: Any) -> str:
    """The queue URL listing the members a dashboard figure counts."""
    pairs = [("outcome", o) for o in ([outcomes] if isinstance(outcomes, str) else outcomes)]
    pairs += [(k, str(v)) for k, v in kw.items() if v not in ("", None)]
    return "/queue?" + urlencode(pairs)


def data(db, sdb, run_dir) -> dict[str, Any]:
    counts = {o: 0 for o in OUTCOMES}
    for o, n in QI.sums(db, "all", ["outcome"]):
        counts[o] = counts.get(o, 0) + int(n)
    open_ = {o: int(n) for o, n in QI.sums(db, "all", ["outcome"], outcomes=("review", "rejected"))}
    undecided = sum(int(n) for o, d, n in QI.sums(db, "all", ["outcome", "decided"], outcomes=("review", "rejected"))
                    if d == 0)
    gates_of = QI.rule_info(db)
    err_rules = {r for r, n in QI.sums(db, "rule_err", ["value"])}
    rules = sorted(((r, gates_of.get(r, ""), 0 if r in err_rules else 1, int(n))
                    for r, n in QI.sums(db, "rule", ["value"])), key=lambda x: (-x[3], x[0]))[:12]
    seg_tier: dict[tuple[str, int], list[int]] = {}
    for seg, tier, n in QI.sums(db, "all", ["segment", "tier"], outcomes=GENERATED):
        seg_tier[(seg, tier)] = [0, int(n)]
    for seg, tier, n in QI.sums(db, "err", ["segment", "tier"], outcomes=GENERATED):
        seg_tier.setdefault((seg, tier), [0, 0])[0] = int(n)
    gates = sorted(((g, int(n)) for g, n in QI.sums(db, "gate_err", ["value"])), key=lambda x: -x[1])
    manifest = {}
    mp = run_dir / "manifest.json"
    if mp.exists():
        try:
            manifest = json.loads(mp.read_text(encoding="utf-8"))
        except ValueError:
            manifest = {}
    return {"counts": counts, "total": sum(counts.values()), "rules": rules, "seg_tier": seg_tier, "gates": gates,
            "decisions": sdb.decision_counts(), "preview": sdb.preview_totals(), "manifest": manifest,
            "open": open_, "undecided": undecided}


def page_context(d: dict[str, Any]) -> dict[str, Any]:
    counts = d["counts"]
    shown = [o for o in OUTCOMES if counts[o] or o in GENERATED]
    outcome_chart = charts.hbars([(o, counts[o], f"o-{o}") for o in shown],
                                 href=[queue_link(outcomes=o) for o in shown], title="Members by outcome")
    sev = ("error", "warning", "info")
    rules_chart = charts.hbars([(r, n, f"sev-{sev[s]}") for r, g, s, n in d["rules"]],
                               href=[queue_link(rule=r) for r, *_ in d["rules"]],
                               label_w=230, title="Top rules fired (members)")
    generated = sum(counts[o] for o in GENERATED)
    rates_chart = charts.stacked([("first pass", counts["approved"], "o-approved"),
                                  ("repaired", counts["repaired"], "o-repaired"),
                                  ("fallback", counts["fallback"], "o-fallback"),
                                  ("review", counts["review"], "o-review"),
                                  ("rejected", counts["rejected"], "o-rejected")], title="Generation outcomes")
    segs = sorted({s for s, _ in d["seg_tier"]})
    tiers = sorted({t for _, t in d["seg_tier"]})
    cols = [f"tier {t}" for t in tiers]
    cells = {(s or "?", f"tier {t}"): tuple(v) for (s, t), v in d["seg_tier"].items()}
    links = {(s or "?", f"tier {t}"): queue_link(outcomes=GENERATED, severity="error", segment=s, tier=t)
             for (s, t) in d["seg_tier"]}
    heat = charts.heat([s or "?" for s in segs], cols, cells, href=links,
                       title="Members with error findings by segment and tier")
    gates_chart = charts.hbars([(g, n, f"gate-{g}") for g, n in d["gates"]],
                               href=[queue_link(gate=g, severity="error") for g, _ in d["gates"]],
                               title="Members with error findings by gate")
    m = d["manifest"]
    usage = m.get("usage") or {}
    rate = (lambda n: f"{100 * n / generated:.1f}%" if generated else "n/a")
    return {"outcome_chart": outcome_chart, "rules_chart": rules_chart, "rates_chart": rates_chart,
            "heat": heat, "gates_chart": gates_chart, "generated": generated,
            "repair_rate": rate(counts["repaired"]), "fallback_rate": rate(counts["fallback"]),
            "review_rate": rate(counts["review"] + counts["rejected"]), "usage": usage,
            "cost": m.get("cost_usd"), "model": m.get("model"), "manifest": m,
            "links": {"review_rejected": queue_link(outcomes=("review", "rejected")),
                      "open": queue_link(outcomes=("review", "rejected"), status="open"),
                      "repaired": queue_link(outcomes="repaired"), "fallback": queue_link(outcomes="fallback"),
                      "generated": queue_link(outcomes=GENERATED), "all": queue_link()}}


def page(request: Request, form) -> Response:
    from .app import render

    studio = request.app.state.studio
    d = data(studio.db, studio.sdb, studio.run_dir)
    return render(request, "dashboard.html", {"d": d, **page_context(d)})
