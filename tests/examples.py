"""Small contexts for the rule packs' own examples and the gate tests (test helpers, not the engine).

A rule's ``examples:`` entry is a text (or a small mapping: field, tier, segment, first name,
send date, product, channel, or a whole message) judged against :func:`example_context`: a
nine-product catalog, six recommendations with evidence and three offers.
"""

from __future__ import annotations

import datetime as dt

from contentgen.gates.engine.model import Example, Rule
from contentgen.models import Evidence, Explanation, GateContext, Member, Offer, Product, Recommendation, RenderedMessage


def example_catalog() -> list[Product]:
    rows = [
        ("P100", "TrailLite Running Socks", "running", 14.0, True, None, ["moisture-wicking"]),
        ("P200", "Summit Hydration Vest 5L", "running", 59.0, True, None, ["lightweight"]),
        ("P300", "Aurora Rain Jacket", "outdoor", 129.0, True, None, ["waterproof", "recycled"]),
        ("P400", "Cedar Wool Scarf", "apparel", 39.0, True, None, ["merino wool"]),
        ("P500", "Harbor Ceramic Mug Set", "home", 32.0, False, 0, []),
        ("P600", "Glow Daily Moisturizer SPF 30", "beauty", 24.0, True, None, ["SPF 30", "fragrance-free"]),
        ("P700", "Peak Trail Running Shoes", "running", 119.0, True, 2, []),
        ("P800", "Linen Throw Blanket", "home", 49.0, True, None, ["organic linen"]),
        ("P900", "Puzzle Globe", "gifts", 27.0, True, None, []),
    ]
    return [Product(product_id=p, name=n, category=c, price=pr, in_stock=s, stock=st, claims=tuple(cl))
            for p, n, c, pr, s, st, cl in rows]


def example_context(tier: int = 3, segment: str = "Enthusiasts", first_name: str = "Nia",
                    send_date: dt.date | None = None, channel: str = "email") -> GateContext:
    send = send_date or dt.date(2026, 11, 24)
    ev = {
        "P100": [("purchase", "bought running shoes"), ("similar_members", "rated highly")],
        "P200": [("purchase", "bought trail shoes"), ("inventory", "in stock")],
        "P300": [("purchase", "bought hiking boots"), ("predicted", "likely to hike")],
        "P400": [("browsing", "viewed scarves"), ("stated_preference", "likes wool")],
        "P600": [("purchase", "bought sunscreen")],
        "P700": [("segment", "popular with Enthusiasts")],
    }
    recs = tuple(Recommendation(product_id=p, evidence=tuple(Evidence(source=s, detail=d) for s, d in e))  # type: ignore[arg-type]
                 for p, e in ev.items())
    offers = (
        Offer(offer_id="O1", kind="percent_off", value=15, applies_to=("P300",), valid_from=dt.date(2026, 11, 20),
              valid_until=dt.date(2026, 12, 6)),
        Offer(offer_id="O2", kind="points_multiplier", value=2, applies_to_category="running",
              valid_from=dt.date(2026, 11, 20), valid_until=dt.date(2026, 11, 30)),
        Offer(offer_id="O3", kind="free_shipping", min_order=50, valid_from=dt.date(2026, 11, 1),
              valid_until=dt.date(2026, 12, 31)),
        # a churn-prevention offer: tier 3 only (compliance.churn-offer-tier)
        Offer(offer_id="O4", kind="percent_off", value=35, applies_to=("P300",), valid_from=dt.date(2026, 11, 1),
              valid_until=dt.date(2026, 12, 31), audience="churn_prevention"),
    )
    member = Member(member_id="M0001", first_name=first_name, segment=segment, churn_risk=0.2,  # type: ignore[arg-type]
                    opt_in_tier=tier)  # type: ignore[arg-type]
    return GateContext(send_date=send, member=member, recommendations=recs, offers=offers,
                       catalog={p.product_id: p for p in example_catalog()}, channel=channel)


def example_case(rule: Rule, ex: str | Example) -> tuple[RenderedMessage, GateContext]:
    """The message and context of one of a rule's examples."""
    if isinstance(ex, str):
        ex = Example(text=ex)
    ctx = example_context(tier=ex.tier or 3, segment=ex.segment or "Enthusiasts",
                          first_name="Nia" if ex.first_name is None else ex.first_name, send_date=ex.send_date,
                          channel=ex.channel or "email")
    if ex.message is not None:
        data = dict(ex.message)
        if "explanations" in data:
            data["explanations"] = [Explanation(**e) if isinstance(e, dict) else e for e in data["explanations"]]
        return RenderedMessage(**data), ctx
    fld = ex.field or rule.fields[0]
    if fld == "explanations":
        msg = RenderedMessage(explanations=(Explanation(product_id=ex.product_id or "P100", text=ex.text),))
    else:
        msg = RenderedMessage(**{fld: ex.text})
    return msg, ctx
