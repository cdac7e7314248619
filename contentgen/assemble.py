"""Model words + catalog facts -> the message a member receives (text and HTML).

The model writes the subject, preheader, a short body and the explanations.
Everything factual comes from here: product names and prices from the catalog,
offer terms from the offers, links, the sign-off and the legal footer from the
campaign config. The first name is filled in here, never sent to the model.
"""

from __future__ import annotations

import hashlib
import re

from .config import Campaign
from .models import Draft, Explanation, Offer, Plan, PlannedProduct, RenderedMessage

# the placeholder as models actually write it: {first_name}, {{ first_name }}, {first name}, {name}
_PH = r"\{\{?\s*(?:first[_ ]?name|name)\s*\}?\}"
_PLACEHOLDER = re.compile(_PH, re.I)
_EMPTY_NAME = [
    (re.compile(r",\s*" + _PH, re.I), ""),
    (re.compile(_PH + r"\s*,\s*", re.I), ""),
    (re.compile(r"\s*" + _PH, re.I), ""),
]
_MULTIPLIER = {2: "double", 3: "triple"}


def fill_name(text: str, first_name: str) -> str:
    if first_name:
        return _PLACEHOLDER.sub(first_name, text)
    for pattern, repl in _EMPTY_NAME:
        text = pattern.sub(repl, text)
    text = text.strip()
    return text[:1].upper() + text[1:] if text else text


def money(amount: float) -> str:
    return f"${amount:,.2f}"


def human_date(d) -> str:
    return f"{d.strftime('%B')} {d.day}"


def product_line(pp: PlannedProduct) -> str:
    line = f"{pp.product.name}: {money(pp.product.price)}"
    if pp.offer is not None and pp.offer_price is not None and pp.offer.value:
        line += (f", {pp.offer.value:g}% off until {human_date(pp.offer.valid_until)} "
                 f"({money(pp.offer_price)} for members)")
    return line


def offer_line(offer: Offer, plan: Plan) -> str | None:
    if offer.kind == "free_shipping":
        if offer.min_order:
            return f"Orders over {money(offer.min_order).replace('.00', '')} ship free through {human_date(offer.valid_until)}."
        return f"Shipping is free through {human_date(offer.valid_until)}."
    if offer.kind == "points_multiplier" and offer.value:
        mult = _MULTIPLIER.get(int(offer.value), f"{offer.value:g}x")
        what = offer.applies_to_category or "these picks"
        return f"Earn {mult} points on {what} gear through {human_date(offer.valid_until)}."
    return None  # percent-off offers are shown on their product line


def unsubscribe_token(campaign_id: str, member_id: str) -> str:
    return hashlib.sha256(f"{campaign_id}:{member_id}:unsubscribe".encode()).hexdigest()[:20]


def footer(campaign: Campaign, plan: Plan) -> str:
    b = campaign.brand
    parts = [
        f"You're receiving this because you're an {b.program} member.",
        f"Unsubscribe: {b.unsubscribe_url.format(token=unsubscribe_token(campaign.campaign_id, plan.member.member_id))}",
        f"Manage your preferences: {b.preferences_url}",
    ]
    if plan.member.opt_in_tier == 3:
        parts.append(f"Your privacy dashboard: {b.privacy_dashboard_url}")
    parts.append(f"{b.sender}, {b.postal_address}")
    return " | ".join(parts)


def _explanations(plan: Plan, draft: Draft) -> tuple[Explanation, ...]:
    if plan.member.opt_in_tier < 2 or plan.basic:
        return ()
    planned = {pp.product.product_id for pp in plan.products}
    return tuple(Explanation(product_id=e.product_id, text=fill_name(e.text.strip(), plan.member.first_name))
                 for e in draft.explanations if e.product_id in planned)


def assemble_short(plan: Plan, draft: Draft, campaign: Campaign) -> RenderedMessage:
    """Push, SMS and in-app: the model's short text; link, brand and opt-out from config."""
    name = plan.member.first_name
    b = campaign.brand
    text = fill_name(draft.body.strip(), name)
    if plan.channel == "sms":
        return RenderedMessage(body=f"{b.program}: {text} {b.cta_url} Reply STOP to opt out.",
                               cta_text="", cta_url=b.cta_url)
    return RenderedMessage(subject=fill_name(draft.subject.strip(), name), body=text, cta_text=b.cta_text,
                           cta_url=b.cta_url,
                           explanations=_explanations(plan, draft) if plan.channel == "inapp" else ())


def assemble(plan: Plan, draft: Draft, campaign: Campaign) -> RenderedMessage:
    if plan.channel != "email":
        return assemble_short(plan, draft, campaign)
    member = plan.member
    name = member.first_name
    greeting = f"Hi {name}," if name else "Hi there,"
    words = fill_name(draft.body.strip(), name)
    lines = [greeting, "", words, ""]
    lines += [product_line(pp) for pp in plan.products]
    extra = [t for t in (offer_line(o, plan) for o in plan.offers) if t]
    if extra:
        lines += [""] + extra
    lines += ["", campaign.brand.signoff]
    body = "\n".join(lines)
    explanations = _explanations(plan, draft)
    msg = RenderedMessage(
        subject=fill_name(draft.subject.strip(), name),
        preheader=fill_name(draft.preheader.strip(), name),
        body=body,
        cta_text=campaign.brand.cta_text,
        cta_url=campaign.brand.cta_url,
        explanations=explanations,
        footer=footer(campaign, plan),
    )
    return msg.model_copy(update={"html": render_html(msg, plan, campaign)})


def render_html(msg: RenderedMessage, plan: Plan, campaign: Campaign) -> str:
    """HTML built by us from the message's parts (table layout via MJML; every text escaped): email_html."""
    from .email_html import render_html as render

    return render(msg, plan, campaign)


def text_version(msg: RenderedMessage) -> str:
    parts = [msg.body]
    for x in msg.explanations:
        parts.append(f"Why was this recommended? {x.text}")
    parts.append(f"{msg.cta_text}: {msg.cta_url}")
    parts.append(msg.footer.replace(" | ", "\n"))
    return "\n\n".join(parts)
