"""Compliance: a churn-prevention offer is a tier 3 intervention (compliance-policy.md section 1:
tier 2 allows no churn interventions, tier 1 only offers open to all members)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from .. import text as T
from ..engine.findings import Hit
from ..engine.model import Rule
from ..engine.plugin import Build, Check, Params
from ..engine.view import MessageView
from .catalog import FACT_FIELDS
from .churn_models import ChurnOfferParams


_POINTS = re.compile(r"(\d+(?:\.\d+)?)\s*[x×]\s*points|(double|triple|quadruple)\s+points", re.I)
_MULT = {"double": 2.0, "triple": 3.0, "quadruple": 4.0}


class ChurnOfferTier(Check):
    """The message states a churn-prevention offer (its percentage, its points multiplier, or free
    shipping when that is the offer) to a member below tier 3."""
    name = "compliance.churn_offer_tier"

    Params = ChurnOfferParams

    def __init__(self, params: ChurnOfferParams, build: Build) -> None:
        super().__init__(params, build)
        self.audiences = frozenset(a.strip().lower() for a in params.audiences)

    def run(self, rule: Rule, view: MessageView) -> Iterator[Hit]:
        ctx = view.ctx
        if ctx.member.opt_in_tier >= 3:
            return
        churn = [o for o in ctx.offers if (o.audience or "all").strip().lower() in self.audiences]
        if not churn:
            return
        percents = {float(o.value) for o in churn if o.kind == "percent_off" and o.value is not None}
        points = {float(o.value) for o in churn if o.kind == "points_multiplier" and o.value is not None}
        for label, text in view.fields(FACT_FIELDS):
            if percents:
                for a, b, val in T.percent_matches(text):
                    if float(val) in percents:
                        yield Hit(label, a, b)
            if points:
                for m in _POINTS.finditer(text):
                    val = float(m.group(1)) if m.group(1) else _MULT[m.group(2).lower()]
                    if val in points:
                        yield Hit(label, m.start(), m.end())
