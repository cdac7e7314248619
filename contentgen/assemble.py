"""Model words + catalog facts -> the message a member receives (text and HTML).

The model writes the subject, preheader, a short body and the explanations.
Everything factual comes from here: product names and prices from the catalog,
offer terms from the offers, links, the sign-off and the legal footer from the
campaign config. The first name is filled in here, never sent to the model.

Every product gets its own link (``brand.product_url``) and the call to action
is tracked too (``tracking``: UTM parameters and a per-campaign member hash).
The message keeps its structure for other renderers: ``products`` (id, name,
price, offer, line, url) and ``explanations`` keyed by product id. In the
plain-text part each product is followed by its link and its "Why was this
recommended? (product name) ..." (``text_layout``); the HTML (``email_html``)
puts each product in a card: its name linking to ``url``, its explanation under it.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from .config import Campaign
from .links import unsubscribe_url
from .scrub import header_safe
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
    """Put the member's first name where the model wrote the placeholder. The name is data, never a
    replacement template: ``Jo\\1`` is inserted as it is."""
    if first_name:
        return _PLACEHOLDER.sub(lambda _m: first_name, text)
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


@lru_cache(maxsize=1024)
def member_hash(campaign_id: str, member_id: str) -> str:
    """The member in tracking links: a per-campaign hash (the ESP joins clicks on it; no member id in URLs)."""
    return hashlib.sha256(f"{campaign_id}\x00track\x00{member_id}".encode()).hexdigest()[:16]


# a link's parts and its query without the member hash, per link, campaign, variant, channel, product and
# tracking settings: the same for every member, so parsed and encoded once (a member adds only its hash)
_TRACKED: dict[tuple[Any, ...], tuple[Any, str]] = {}


def tracked(url: str, campaign: Campaign, plan: Plan, product_id: str = "") -> str:
    """``url`` with the campaign's tracking parameters (ours replace any of the same name already there)."""
    t = getattr(campaign, "tracking", None)  # None: a campaign-like object without tracking settings
    if t is None or not t.enabled or not url:
        return url
    key = (url, campaign.campaign_id, plan.variant, plan.channel, product_id, t.utm_source, t.utm_medium,
           t.utm_campaign, t.utm_content, t.utm_term, tuple(t.extra.items()), t.member_param)
    hit = _TRACKED.get(key)
    if hit is None:
        vals = {"campaign_id": campaign.campaign_id, "variant": plan.variant, "channel": plan.channel,
                "product_id": product_id}
        ours = [(k, getattr(t, k).format_map(vals)) for k in ("utm_source", "utm_medium", "utm_campaign",
                                                              "utm_content", "utm_term")]
        ours += [(k, v.format_map(vals)) for k, v in t.extra.items()]
        ours = [(k, v) for k, v in ours if v]
        parts = urlsplit(url)
        names = {k for k, _ in ours}
        if t.member_param:
            names.add(t.member_param)  # the hash, added last, is never empty
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in names] + ours
        if len(_TRACKED) >= 4096:
            _TRACKED.clear()
        hit = _TRACKED[key] = (parts, urlencode(query))
    parts, query = hit
    if t.member_param:  # urlencode joins its pairs with "&": the hash's pair appended to the rest's encoding
        pair = urlencode([(t.member_param, member_hash(campaign.campaign_id, plan.member.member_id))])
        query = f"{query}&{pair}" if query else pair
    return urlunsplit(parts._replace(query=query))


def product_url(campaign: Campaign, plan: Plan, product_id: str) -> str:
    return tracked(campaign.brand.product_url.format(product_id=quote(product_id, safe="")), campaign, plan,
                   product_id)


def product_items(plan: Plan, campaign: Campaign) -> tuple[dict[str, Any], ...]:
    """The products as the message shows them: for other renderers (the ESP's HTML) and the text part."""
    out = []
    for pp in plan.products:
        o = pp.offer if pp.offer is not None and pp.offer_price is not None else None
        out.append({"product_id": pp.product.product_id, "name": pp.product.name, "price": pp.product.price,
                    "offer_id": o.offer_id if o else None, "offer_price": pp.offer_price if o else None,
                    "offer_until": o.valid_until.isoformat() if o else None, "line": product_line(pp),
                    "url": product_url(campaign, plan, pp.product.product_id)})
    return tuple(out)


def footer(campaign: Campaign, plan: Plan) -> str:
    b = campaign.brand
    parts = [
        f"You're receiving this because you're an {b.program} member.",
        f"Unsubscribe: {unsubscribe_url(campaign, plan.member.member_id)}",
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
    if plan.channel == "sms":  # 160 characters: the link stays short (untracked)
        return RenderedMessage(body=f"{b.program}: {text} {b.cta_url} Reply STOP to opt out.",
                               cta_text="", cta_url=b.cta_url)
    return RenderedMessage(subject=header_safe(fill_name(draft.subject, name)), body=text, cta_text=b.cta_text,
                           cta_url=tracked(b.cta_url, campaign, plan),
                           explanations=_explanations(plan, draft) if plan.channel == "inapp" else (),
                           products=product_items(plan, campaign))


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
        subject=header_safe(fill_name(draft.subject, name)),  # one line: these become mail headers
        preheader=header_safe(fill_name(draft.preheader, name)),
        body=body,
        cta_text=campaign.brand.cta_text,
        cta_url=tracked(campaign.brand.cta_url, campaign, plan),
        explanations=explanations,
        footer=footer(campaign, plan),
        products=product_items(plan, campaign),
    )
    return msg.model_copy(update={"html": render_html(msg, plan, campaign)})


def _field(msg: Any, key: str, default: Any = None) -> Any:
    return msg.get(key, default) if isinstance(msg, dict) else getattr(msg, key, default)


def _expl_dicts(msg: Any) -> list[dict[str, Any]]:
    return [x if isinstance(x, dict) else x.model_dump() for x in (_field(msg, "explanations") or ())]


WHY = "Why was this recommended? "


def text_layout(msg: Any) -> tuple[str, list[tuple[str, int, int, int]]]:
    """The plain-text part of a message (a ``RenderedMessage`` or the export's message dict) and where each
    field's text sits in it: ``(field, field_start, text_start, length)`` segments, fields named like a
    finding's (``body``, ``explanations[i].text``), so a span in a field maps into the text.

    Layout: the body, with each product line followed by the product's link and its "Why was this
    recommended? (name) ..."; then the call to action and the footer. A message without ``products``
    (stored before links existed) keeps the older layout: explanations after the body."""
    body = _field(msg, "body", "") or ""
    expls = _expl_dicts(msg)
    products = [p for p in (_field(msg, "products") or ()) if isinstance(p, dict) and p.get("line")]
    by_line = {p["line"]: p for p in products}
    names = {p["product_id"]: p["name"] for p in products}
    first_expl: dict[str, int] = {}
    for i, x in enumerate(expls):
        first_expl.setdefault(x.get("product_id", ""), i)
    out: list[str] = []
    segs: list[tuple[str, int, int, int]] = []
    pos = 0

    def put(text: str, field: str | None = None, start: int = 0) -> None:
        nonlocal pos
        if field is not None and text:
            segs.append((field, start, pos, len(text)))
        out.append(text)
        pos += len(text)

    placed: set[int] = set()
    lines = body.split("\n")
    chunk = off = 0
    for k, line in enumerate(lines):
        end = off + len(line)
        p = by_line.get(line)
        if p is not None:
            put(body[chunk:end], "body", chunk)
            if p.get("url"):
                put(f"\n{p['url']}")
            i = first_expl.get(p["product_id"])
            if i is not None and i not in placed:
                placed.add(i)
                put(f"\n{WHY}({p['name']}) ")
                put(expls[i].get("text") or "", f"explanations[{i}].text")
            if k + 1 < len(lines) and lines[k + 1] in by_line:
                put("\n")  # a blank line between product blocks
            chunk = end
        off = end + 1
    put(body[chunk:], "body", chunk)
    for i, x in enumerate(expls):
        if i not in placed:
            name = names.get(x.get("product_id", ""))
            put("\n\n" + WHY + (f"({name}) " if name else ""))
            put(x.get("text") or "", f"explanations[{i}].text")
    put(f"\n\n{_field(msg, 'cta_text', '')}: {_field(msg, 'cta_url', '')}")
    put("\n\n" + (_field(msg, "footer", "") or "").replace(" | ", "\n"))
    return "".join(out), segs


def text_version(msg: RenderedMessage) -> str:
    return text_layout(msg)[0]


def render_html(msg: RenderedMessage, plan: Plan, campaign: Campaign) -> str:
    """HTML built by us from the message's parts (table layout via MJML; every text escaped): email_html."""
    from .email_html import render_html as render

    return render(msg, plan, campaign)


