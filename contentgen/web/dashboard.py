"""The run dashboard: outcomes, top rules, findings by segment and tier, repair/fallback rates, cost."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from ..models import OUTCOMES
from . import charts

GENERATED = ("approved", "repaired", "fallback", "review", "rejected")


def data(db, run_dir) -> dict[str, Any]:
    counts = {o: 0 for o in OUTCOMES}
    counts.update(dict(db.execute("SELECT outcome, COUNT(*) FROM members GROUP BY outcome").fetchall()))
    total = sum(counts.values())
    rules = db.execute(
        "SELECT rule_id, gate, MIN(CASE severity WHEN 'error' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END), "
        "COUNT(DISTINCT member_key) FROM findings GROUP BY rule_id, gate ORDER BY 4 DESC, 1 LIMIT 12").fetchall()
    seg_tier = {}
    for seg, tier, n in db.execute("SELECT segment, tier, COUNT(*) FROM members WHERE outcome IN "
                                   f"({','.join('?' * len(GENERATED))}) GROUP BY 1, 2", GENERATED):
        seg_tier[(seg or "?", f"tier {tier}")] = [0, n]
    for seg, tier, n in db.execute(
            "SELECT m.segment, m.tier, COUNT(DISTINCT f.member_key) FROM findings f JOIN members m "
            "ON m.member_key = f.member_key WHERE f.severity = 'error' AND m.outcome IN "
            f"({','.join('?' * len(GENERATED))}) GROUP BY 1, 2", GENERATED):
        seg_tier.setdefault((seg or "?", f"tier {tier}"), [0, 0])[0] = n
    gates = db.execute("SELECT gate, COUNT(DISTINCT member_key) FROM findings WHERE severity = 'error' "
                       "GROUP BY gate ORDER BY 2 DESC").fetchall()
    decisions = dict(db.execute("SELECT action, COUNT(*) FROM decisions GROUP BY action").fetchall())
    preview = db.execute("SELECT COUNT(*), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0), "
                         "SUM(cost_usd) FROM studio_previews").fetchone()
    attempts = db.execute("SELECT COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0), "
                          "COUNT(*) FROM attempts WHERE kind != 'fallback'").fetchone()
    manifest = {}
    mp = run_dir / "manifest.json"
    if mp.exists():
        try:
            manifest = json.loads(mp.read_text(encoding="utf-8"))
        except ValueError:
            manifest = {}
    return {"counts": counts, "total": total, "rules": rules, "seg_tier": seg_tier, "gates": gates,
            "decisions": decisions, "preview": preview, "attempts": attempts, "manifest": manifest}


def page_context(d: dict[str, Any]) -> dict[str, Any]:
    counts = d["counts"]
    outcome_chart = charts.hbars([(o, counts[o], f"o-{o}") for o in OUTCOMES if counts[o] or o in GENERATED],
                                 href=[f"/queue?{urlencode({'outcome': o})}" if o in ("review", "rejected", "fallback",
                                                                                       "repaired") else ""
                                       for o in OUTCOMES if counts[o] or o in GENERATED],
                                 title="Members by outcome")
    sev = ("error", "warning", "info")
    rules_chart = charts.hbars([(r, n, f"sev-{sev[s]}") for r, g, s, n in d["rules"]],
                               href=[f"/queue?{urlencode({'rule': r})}" for r, *_ in d["rules"]],
                               label_w=230, title="Top rules fired (members)")
    generated = sum(counts[o] for o in GENERATED)
    rates_chart = charts.stacked([("first pass", counts["approved"], "o-approved"),
                                  ("repaired", counts["repaired"], "o-repaired"),
                                  ("fallback", counts["fallback"], "o-fallback"),
                                  ("review", counts["review"], "o-review"),
                                  ("rejected", counts["rejected"], "o-rejected")], title="Generation outcomes")
    segs = sorted({s for s, _ in d["seg_tier"]})
    tiers = sorted({t for _, t in d["seg_tier"]})
    heat = charts.heat(segs, tiers, {k: tuple(v) for k, v in d["seg_tier"].items()},
                       title="Members with error findings by segment and tier")
    gates_chart = charts.hbars([(g, n, f"gate-{g}") for g, n in d["gates"]],
                               href=[f"/queue?{urlencode({'gate': g})}" for g, _ in d["gates"]],
                               title="Members with error findings by gate")
    m = d["manifest"]
    usage = m.get("usage") or {}
    rate = (lambda n: f"{100 * n / generated:.1f}%" if generated else "n/a")
    return {"outcome_chart": outcome_chart, "rules_chart": rules_chart, "rates_chart": rates_chart,
            "heat": heat, "gates_chart": gates_chart, "generated": generated,
            "repair_rate": rate(counts["repaired"]), "fallback_rate": rate(counts["fallback"]),
            "review_rate": rate(counts["review"] + counts["rejected"]), "usage": usage,
            "cost": m.get("cost_usd"), "model": m.get("model"), "manifest": m}


async def page(request: Request) -> Response:
    from .app import render

    studio = request.app.state.studio
    d = data(studio.db, studio.run_dir)
    return render(request, "dashboard.html", {"d": d, **page_context(d)})
