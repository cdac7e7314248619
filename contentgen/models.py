"""The records that flow through the pipeline.

load -> Member, Product, Offer, Recommendation  (validated input rows)
plan -> Plan                                    (what to say, to whom, with which evidence)
generate -> Draft                               (the model's words, with {first_name})
assemble -> RenderedMessage                     (what the member would receive)
gates -> Finding                                (records, never exceptions)
decide -> Outcome
"""

from __future__ import annotations

import datetime as dt
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .config import Brand

Segment = Literal[
    "Enthusiasts", "Routine Buyers", "Bargain Hunters", "Lapsed VIPs", "New Members", "Gift Givers", "Browsers"
]
SEGMENTS: tuple[str, ...] = get_args(Segment)

EvidenceSource = Literal[
    "purchase", "stated_preference", "browsing", "predicted", "similar_members", "inventory", "segment"
]
EVIDENCE_SOURCES: tuple[str, ...] = get_args(EvidenceSource)

#: Which evidence sources each opt-in tier allows (compliance policy section 1).
TIER_SOURCES: dict[int, frozenset[str]] = {
    1: frozenset({"segment"}),
    2: frozenset({"segment", "purchase", "stated_preference", "similar_members", "inventory"}),
    3: frozenset(EVIDENCE_SOURCES),
}

Channel = Literal["email", "push", "sms", "inapp"]
CHANNELS: tuple[str, ...] = get_args(Channel)
MemberStatus = Literal["active", "unsubscribed", "suppressed", "bounced"]
Outcome = Literal["approved", "repaired", "fallback", "review", "rejected", "suppressed", "holdout", "invalid"]
OUTCOMES: tuple[str, ...] = get_args(Outcome)
Gate = Literal["schema", "facts", "brand", "compliance"]
Severity = Literal["error", "warning", "info"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Member(_Frozen):
    member_id: str = Field(min_length=1)
    first_name: str = ""
    segment: Segment
    churn_risk: float = Field(ge=0.0, le=1.0)
    opt_in_tier: Literal[1, 2, 3]
    locale: str = "en-US"
    email: str = ""
    status: MemberStatus = "active"
    age: int | None = None
    stated_preferences: str = ""
    timezone: str = "America/Los_Angeles"
    last_engaged_hour: int | None = Field(default=None, ge=0, le=167)  # hour of week, 0 = Monday 00:00 local
    channels: tuple[Channel, ...] = ("email",)  # channels the member consented to
    preferred_channel: Channel | None = None

    @field_validator("channels", mode="before")
    @classmethod
    def _split_channels(cls, v: object) -> object:
        if isinstance(v, str):
            return tuple(x.strip() for x in v.split(";") if x.strip())
        return v

    @field_validator("first_name", "stated_preferences", "email", mode="before")
    @classmethod
    def _none_is_empty(cls, v: object) -> object:
        if v is None:
            return ""
        if isinstance(v, float) and v != v:  # pandas NaN
            return ""
        return v

    @field_validator("opt_in_tier", mode="before")
    @classmethod
    def _tier_number(cls, v: object) -> object:
        if isinstance(v, str) and v.strip().isdigit():
            return int(v)
        if isinstance(v, float) and v.is_integer():
            return int(v)
        return v

    @field_validator("first_name", "stated_preferences", "email", mode="after")
    @classmethod
    def _strip(cls, v: str) -> str:
        return v.strip()


class Evidence(_Frozen):
    source: EvidenceSource
    detail: str = ""
    weight: float = 1.0


class Recommendation(_Frozen):
    product_id: str
    score: float = 0.0
    evidence: tuple[Evidence, ...] = ()


class Product(_Frozen):
    product_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    category: str
    price: float = Field(ge=0.0)
    in_stock: bool = True
    stock: int | None = None
    claims: tuple[str, ...] = ()
    margin: float | None = None


class Offer(_Frozen):
    offer_id: str
    kind: Literal["percent_off", "points_multiplier", "free_shipping"]
    value: float | None = None
    applies_to: tuple[str, ...] | None = None
    applies_to_category: str | None = None
    min_order: float | None = None
    valid_from: dt.date
    valid_until: dt.date
    audience: str = "all"

    def valid_on(self, day: dt.date) -> bool:
        return self.valid_from <= day <= self.valid_until

    def applies_to_product(self, product: Product) -> bool:
        if self.applies_to:
            return product.product_id in self.applies_to
        if self.applies_to_category:
            return product.category == self.applies_to_category
        return True  # sitewide (e.g. free shipping)


class Explanation(_Frozen):
    product_id: str
    text: str


class Draft(_Frozen):
    """What the model writes. Text may contain the ``{first_name}`` placeholder."""

    subject: str
    preheader: str
    body: str
    explanations: tuple[Explanation, ...] = ()


class RenderedMessage(_Frozen):
    """The message as a member would receive it (the check-case ``message`` form)."""

    model_config = ConfigDict(frozen=True, extra="allow")
    subject: str = ""
    preheader: str = ""
    body: str = ""
    cta_text: str = ""
    cta_url: str = ""
    explanations: tuple[Explanation, ...] = ()
    footer: str = ""
    html: str = ""


class Finding(_Frozen):
    rule_id: str
    gate: Gate
    severity: Severity
    field: str = ""
    span: tuple[int, int] | None = None
    excerpt: str = ""
    message: str = ""
    decidable: bool = True  # False: the rule could not decide -> review
    fix: str = ""  # what to change, in the rule's words (the repair prompt's instruction)


class GateContext(_Frozen):
    """Everything the gates may look at besides the message itself."""

    send_date: dt.date
    member: Member
    recommendations: tuple[Recommendation, ...] = ()
    offers: tuple[Offer, ...] = ()
    catalog: dict[str, Product] = Field(default_factory=dict)
    hero_product_id: str | None = None
    allowed_domains: tuple[str, ...] = ("athena.example", "athenaplus.example")
    channel: str = "email"
    #: the campaign's brand identity (program name, sender, sign-off, postal address): rules that
    #: name the sender read it from here, never from code
    brand: Brand = Field(default_factory=Brand)


class PlannedProduct(_Frozen):
    product: Product
    evidence: tuple[Evidence, ...]  # already filtered by the member's tier
    withheld: tuple[Evidence, ...] = ()  # evidence the tier did not allow (never prompted)
    offer: Offer | None = None
    offer_price: float | None = None


class Withheld(_Frozen):
    """One evidence item the member's tier kept out of the prompt, with the product it was about."""

    product_id: str
    source: EvidenceSource
    detail: str = ""
    reason: str = ""
    picked: bool = False  # whether that product is in the message (for other reasons the tier allows)

    @classmethod
    def of(cls, product_id: str, ev: Evidence, tier: int, *, picked: bool) -> Withheld:
        return cls(product_id=product_id, source=ev.source, detail=ev.detail, picked=picked,
                   reason=f"opt-in tier {tier} does not allow {ev.source} evidence")


class Plan(_Frozen):
    member: Member
    action: Literal["send", "suppress", "holdout"]
    reason: str = ""
    framing: str = ""
    products: tuple[PlannedProduct, ...] = ()
    offers: tuple[Offer, ...] = ()  # offers valid on the send date that apply to this member
    variant: str = "default"
    channel: str = "email"
    basic: bool = False  # the pre-approved tier-1 content (fallback, holdout): judged as tier 1
    send_at: dt.datetime | None = None  # scheduled send time, UTC
    withheld: tuple[Withheld, ...] = ()  # per evidence item: what the tier kept out of the prompt
    lever_cell: str = ""  # the lever this member's randomized cell switched off (levers.py); "" = none
