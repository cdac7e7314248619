"""Per-lever holdout cells: which lever drove the lift?

Beyond the global holdout (members who get the basic message), a campaign can
put randomized shares of the other members into cells that switch off ONE
lever each and keep the rest of the personalization:

=========  ==================================================================
cell       what the member gets instead
=========  ==================================================================
content    the segment's pre-approved template message (what fallback sends:
           segment picks, offers open to all members) instead of model copy
timing     the segment's default send hour instead of their best hour
channel    email instead of their preferred channel (when they consented to it)
offer      no offers and no offer prices
=========  ==================================================================

Assignment is deterministic, like variants: a SHA-256 of campaign id, the
salt ``lever`` and member id gives u in [0, 1); the cells take consecutive
intervals of the configured shares (``levers:`` in the campaign file), so a
member is in at most one cell, the same in every shard and resumed process,
and independently of the holdout and variant hashes.

``contentgen report`` estimates each lever's lift as (all levers on) - (that
lever off) among members the run sent a message to, with the report's
intervals (Newcombe for rates, Welch for revenue). It is an intention-to-treat
estimate: in the channel cell, members whose preferred channel already is
email are counted although nothing changed for them, so the lift is the
lever's effect on the whole sent population, as it would be switched off.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .config import LeverCells
    from .models import Plan
    from .plan import Planner

__all__ = ["LEVERS", "DESCRIPTIONS", "lever_fraction", "lever_cell", "switch_off", "lever_lift"]

LEVERS = ("content", "timing", "channel", "offer")
DESCRIPTIONS = {
    "content": "personalized copy and picks → the segment's pre-approved template",
    "timing": "best send time → the segment's default hour",
    "channel": "preferred channel → email",
    "offer": "offers → none",
}


def lever_fraction(campaign_id: str, member_id: str) -> float:
    """Deterministic, uniform in [0, 1), independent of the holdout and variant hashes."""
    h = hashlib.sha256(f"{campaign_id}\x00lever\x00{member_id}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64


def lever_cell(campaign_id: str, member_id: str, cells: LeverCells) -> str:
    """The lever this member's cell switches off, or "" (all levers on)."""
    u = lever_fraction(campaign_id, member_id)
    for name in LEVERS:
        share = getattr(cells, name)
        if u < share:
            return name
        u -= share
    return ""


def switch_off(plan: Plan, cell: str, planner: Planner) -> Plan:
    """The plan with the cell's lever switched off (a plan to send; everything else unchanged)."""
    if not cell or plan.action != "send":
        return plan
    reason = f"lever cell: {cell} off ({DESCRIPTIONS[cell]})"
    if cell == "content":
        basic = planner.basic_plan(plan.member)
        return basic.model_copy(update={"lever_cell": cell, "reason": reason, "variant": plan.variant})
    if cell == "timing":
        default = plan.member.model_copy(update={"last_engaged_hour": None})
        return plan.model_copy(update={"lever_cell": cell, "reason": reason, "send_at": planner.send_at(default)})
    if cell == "channel":
        usable = [ch for ch in plan.member.channels if ch in planner.campaign.channels]
        channel = "email" if "email" in usable else plan.channel
        return plan.model_copy(update={"lever_cell": cell, "reason": reason, "channel": channel})
    if cell == "offer":
        products = tuple(pp.model_copy(update={"offer": None, "offer_price": None}) for pp in plan.products)
        return plan.model_copy(update={"lever_cell": cell, "reason": reason, "products": products, "offers": ()})
    raise ValueError(f"unknown lever {cell!r}")


def lever_lift(joined: pd.DataFrame) -> dict[str, Any]:
    """Each lever's lift: treated members with all levers on vs treated members of the lever's cell.

    ``joined``: the report's run x outcomes frame (``arm``, ``lever_cell`` and the outcome columns).
    """
    from .report import MIN_N, RATE_METRICS, REVENUE_METRIC, _rate_lift, _revenue_lift

    treated = joined[joined["arm"] == "treated"]
    cells = treated["lever_cell"].fillna("") if "lever_cell" in treated else None
    if cells is None or not (cells != "").any():
        return {"configured": False, "levers": [], "n_all_on": int(len(treated))}
    on = treated[cells == ""]
    out = []
    for name in LEVERS:
        off = treated[cells == name]
        if not len(off):
            continue
        small = len(on) < MIN_N or len(off) < MIN_N
        # lift of the lever = (lever on) - (lever off): the report's helpers take (treated, control)
        metrics = {key: _rate_lift(on, off, col) for key, col, _ in RATE_METRICS}
        metrics[REVENUE_METRIC[0]] = _revenue_lift(on, off)
        out.append({"lever": name, "description": DESCRIPTIONS[name], "n_on": int(len(on)), "n_off": int(len(off)),
                    "small_n": small, "note": "n too small" if small else "", "metrics": metrics})
    return {"configured": True, "levers": out, "n_all_on": int(len(on)),
            "method": "difference (all levers on) - (lever off) among sent members, same intervals as the lift; "
                      "intention-to-treat: cell members for whom the switch changed nothing are counted"}
