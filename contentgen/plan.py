"""The decision engine (no LLM): who gets what, framed how, with which evidence.

Data minimization happens here: evidence a member's tier does not allow is
moved to ``withheld`` and never reaches a prompt.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
import yaml

from .config import Campaign
from .errors import ConfigError, InputFileError
from .levers import lever_cell, switch_off
from .models import (
    SEGMENTS,
    TIER_SOURCES,
    Evidence,
    Member,
    Offer,
    Plan,
    PlannedProduct,
    Product,
    Recommendation,
    Withheld,
)
from .product_types import ProductTypes
from .scrub import soften_detail  # evidence details: personal data, counts and times out (scrub.py)


@dataclass(frozen=True)
class Framings:
    churn_threshold: float
    segments: dict[str, dict[str, Any]]
    high_churn: dict[str, Any]

    @classmethod
    def load(cls, path: Path) -> Framings:
        try:
            raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f"cannot read framing table: {e}", file=str(path),
                              hint="fix the YAML (see prompts/framings.yaml in the repo)") from None
        segs = raw.get("segments") or {}
        missing = [s for s in SEGMENTS if s not in segs]
        if missing:
            raise ConfigError(f"framing table lacks segment(s) {', '.join(missing)}", file=str(path),
                              key="segments", hint="add a framing for every segment")
        for s, v in segs.items():
            if not isinstance(v, dict) or "framing" not in v:
                raise ConfigError(f"segment {s!r} needs a 'framing' text", file=str(path), key=f"segments.{s}")
        return cls(float(raw.get("churn_threshold", 0.6)), segs, raw.get("high_churn") or {})

    def framing_for(self, member: Member) -> str:
        seg = self.segments[member.segment]
        if member.churn_risk >= self.churn_threshold and self.high_churn:
            return f"{self.high_churn['framing']} (segment: {seg['framing']})"
        return str(seg["framing"])


def send_time(member: Member, send_date: dt.date, default_how: int) -> dt.datetime:
    """The first time at or after the send date's midnight (member's time zone) at the member's best
    hour of week (past opens/clicks), else the segment default; returned in UTC."""
    tz = member_zone(member)
    how = member.last_engaged_hour if member.last_engaged_hour is not None else default_how
    start = dt.datetime.combine(send_date, dt.time(0), tzinfo=tz)
    start_how = start.weekday() * 24
    delta_h = (how - start_how) % 168
    local = start + dt.timedelta(hours=delta_h)
    local = local.replace(tzinfo=None).replace(tzinfo=tz)  # wall-clock time across DST changes
    return local.astimezone(dt.timezone.utc)


def member_zone(member: Member) -> ZoneInfo:
    try:
        return ZoneInfo(member.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("America/Los_Angeles")


def delivery_date(plan_or_member, send_at: dt.datetime | None = None) -> dt.date | None:
    """The calendar day in the member's time zone on which the message arrives (``send_at``)."""
    member = getattr(plan_or_member, "member", plan_or_member)
    when = send_at if send_at is not None else getattr(plan_or_member, "send_at", None)
    if when is None:
        return None
    return when.astimezone(member_zone(member)).date()


def holdout_fraction(campaign_id: str, member_id: str) -> float:
    """Deterministic, uniform in [0, 1): the same member is in or out for the same campaign."""
    h = hashlib.sha256(f"{campaign_id}\x00holdout\x00{member_id}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64


def assign_variant(campaign_id: str, member_id: str, variants) -> str:
    """Deterministic weighted assignment from a hash of campaign and member ('default' without variants)."""
    if not variants:
        return "default"
    h = hashlib.sha256(f"{campaign_id}\x00variant\x00{member_id}".encode()).digest()
    x = int.from_bytes(h[:8], "big") / 2**64 * sum(v.weight for v in variants)
    for v in variants:
        x -= v.weight
        if x < 0:
            return v.name
    return variants[-1].name


def member_segments(members_path: Path) -> pd.DataFrame:
    """``member_id`` and ``segment`` of every valid member row (known segment, id not blank, first of
    repeated ids), from a CSV, Parquet or JSONL members file: one pass over two columns."""
    path = Path(members_path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            try:
                df = pd.read_csv(path, usecols=["member_id", "segment"], dtype=str, keep_default_na=False,
                                 encoding_errors="replace", on_bad_lines="skip", engine="c")
            except pd.errors.ParserError:  # broken quoting: the loader's reader quarantines it, and so go we on
                from .load import iter_rows

                df = pd.DataFrame([(str(r.get("member_id") or "").strip(), str(r.get("segment") or "").strip())
                                   for _, r, problems in iter_rows(path, 100_000_000) if not problems],
                                  columns=["member_id", "segment"])
        elif suffix in (".parquet", ".pq"):
            df = pd.read_parquet(path, columns=["member_id", "segment"])
        else:
            df = pd.concat(chunk.reindex(columns=["member_id", "segment"])
                           for chunk in pd.read_json(path, lines=True, dtype=False, chunksize=200_000))
    except (ValueError, KeyError, OSError) as e:
        raise InputFileError(f"cannot read member_id and segment for the holdout: {e}", file=str(path),
                             hint="the members file needs member_id and segment columns") from None
    df = df.dropna()
    df = df[df["segment"].isin(SEGMENTS) & (df["member_id"].astype(str).str.strip() != "")]
    return df.drop_duplicates("member_id", keep="first")


def stratified_holdout(members_path: Path, campaign_id: str, share: float) -> frozenset[str]:
    """Exactly round(share x n) members of every segment, the ones with the lowest holdout hash.

    One pass over two columns of the members file (member_id, segment); rows whose
    segment is not a known one, and repeated ids, are left out (they are quarantined
    by the run). Deterministic: the same file and campaign give the same set, in
    every shard and every resumed process.
    """
    if share <= 0:
        return frozenset()
    return holdout_of(member_segments(members_path), campaign_id, share)


def holdout_of(segments: pd.DataFrame, campaign_id: str, share: float) -> frozenset[str]:
    """``stratified_holdout`` of an already read ``member_segments`` frame."""
    if share <= 0:
        return frozenset()
    df = segments.copy()
    df["h"] = [holdout_fraction(campaign_id, str(m)) for m in df["member_id"]]
    chosen: set[str] = set()
    for _, group in df.groupby("segment", sort=True):
        k = int(round(share * len(group)))
        chosen.update(group.nsmallest(k, "h")["member_id"].astype(str))
    return frozenset(chosen)


def email_hash(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def offer_audience_ok(offer: Offer, member: Member, threshold: float) -> bool:
    aud = (offer.audience or "all").strip()
    if aud == "all":
        return True
    if aud in SEGMENTS:
        return member.segment == aud and member.opt_in_tier >= 2
    if aud in ("tier3", "churn", "tier3_churn"):
        # churn-prevention offers: tier 3 only (compliance policy section 1)
        return member.opt_in_tier == 3 and member.churn_risk >= threshold
    return False


class Planner:
    def __init__(self, campaign: Campaign, catalog: dict[str, Product], offers: list[Offer],
                 suppression: frozenset[str] = frozenset(), framings: Framings | None = None,
                 holdout: frozenset[str] | None = None):
        self.campaign = campaign
        self.holdout = holdout  # a segment-stratified set (stratified_holdout); None: per-member hash < share
        self.catalog = catalog
        self.offers = list(offers)
        self._offers_by_day: dict[dt.date, list[Offer]] = {}
        self.suppression = suppression
        self.framings = framings or Framings.load(campaign.prompts_dir / "framings.yaml")
        self.variant_framings = {v.name: Framings.load(campaign.prompts_dir / v.framings)
                                 for v in campaign.variants if v.framings}
        self.types = ProductTypes(p.name for p in catalog.values())
        self._segment_picks = {s: self._pick_segment_products(s) for s in SEGMENTS}

    def offers_on(self, day: dt.date) -> list[Offer]:
        """Offers valid on ``day`` (the member's local delivery day: an offer must still hold when the
        message arrives, not only on the campaign's send date)."""
        got = self._offers_by_day.get(day)
        if got is None:
            got = self._offers_by_day[day] = [o for o in self.offers if o.valid_on(day)]
        return got

    @property
    def offers_today(self) -> list[Offer]:
        """Offers valid on the campaign's send date (what a member delivered that day may be offered)."""
        return self.offers_on(self.campaign.send_date)

    def _pick_segment_products(self, segment: str) -> tuple[Product, ...]:
        """Tier-1 content: segment-level picks, the same for every member of the segment."""
        cats = list(self.framings.segments[segment].get("categories") or [])
        floor = self.campaign.selection.margin_floor
        in_stock = [p for p in self.catalog.values() if p.in_stock and (floor is None or p.margin is None
                                                                           or p.margin >= floor)]
        ranked = sorted(in_stock, key=lambda p: (cats.index(p.category) if p.category in cats else len(cats),
                                                 -(p.margin or 0.0), p.product_id))
        picks: list[Product] = []
        used: set[str] = set()
        for p in ranked:  # one per category first, for variety
            if p.category not in used and not any(self._same_type(p, q) for q in picks):
                picks.append(p)
                used.add(p.category)
            if len(picks) >= self.campaign.top_k:
                break
        return tuple(picks)

    def _same_type(self, a: Product, b: Product) -> bool:
        return self.types.near_duplicate(a.name, b.name, self.campaign.selection.max_name_similarity)

    def _offer_for(self, product: Product, member: Member, offers: list[Offer]) -> tuple[Offer | None, float | None]:
        for o in offers:
            if o.kind == "percent_off" and (o.applies_to or o.applies_to_category) and o.applies_to_product(product) \
                    and offer_audience_ok(o, member, self.framings.churn_threshold) and o.value:
                return o, round(product.price * (1 - o.value / 100.0) + 1e-9, 2)
        return None, None

    def channel_for(self, member: Member) -> str | None:
        """The member's preferred channel when they consented to it and the campaign uses it; else email;
        else any consented channel the campaign uses. None: no channel we may use."""
        usable = [ch for ch in member.channels if ch in self.campaign.channels]
        if member.preferred_channel in usable:
            return member.preferred_channel
        if "email" in usable:
            return "email"
        return usable[0] if usable else None

    def suppressed_reason(self, member: Member) -> str | None:
        if member.status != "active":
            return member.status
        if member.member_id in self.suppression or (member.email and email_hash(member.email) in self.suppression):
            return "suppression list"
        if member.age is not None and member.age < self.campaign.min_age:
            return f"under {self.campaign.min_age}"
        if self.channel_for(member) is None:
            return "no consented channel"
        return None

    def basic_plan(self, member: Member) -> Plan:
        """The tier-1 basic content for this member's segment: segment picks, offers open to all members
        that are valid on the member's delivery day."""
        cell = self.lever_cell(member)
        # the timing lever's cell is sent at the segment's default hour: offers are chosen for that delivery day
        send_at = self.send_at(member if cell != "timing" else member.model_copy(update={"last_engaged_hour": None}))
        valid = self.offers_on(delivery_date(member, send_at))
        seg_ev = (Evidence(source="segment", detail=f"popular with {member.segment} this season"),)
        products = tuple(PlannedProduct(product=p, evidence=seg_ev) for p in self._segment_picks[member.segment])
        cats = {p.product.category for p in products}
        ids = {p.product.product_id for p in products}
        offers = tuple(o for o in valid if (o.audience or "all") == "all" and (
            (o.kind == "free_shipping" and not o.applies_to and not o.applies_to_category)
            or (o.applies_to_category and o.applies_to_category in cats)
            or (o.applies_to and ids & set(o.applies_to))))
        priced = []
        for pp in products:
            o = next((o for o in offers if o.kind == "percent_off" and o.value and o.applies_to_product(pp.product)
                      and (o.applies_to or o.applies_to_category)), None)
            priced.append(pp.model_copy(update={"offer": o, "offer_price": round(pp.product.price * (1 - o.value / 100.0) + 1e-9, 2)}) if o else pp)
        return Plan(member=member, action="send", framing=self.framings.segments[member.segment]["framing"],
                    products=tuple(priced), offers=offers, basic=True, send_at=send_at,
                    channel=self.channel_for(member) or "email")

    def _selectable(self, p: Product, chosen: list[PlannedProduct], exclude: frozenset[str]) -> bool:
        sel = self.campaign.selection
        if not p.in_stock or p.product_id in exclude:
            return False
        if sel.margin_floor is not None and p.margin is not None and p.margin < sel.margin_floor:
            return False
        if sum(1 for q in chosen if q.product.category == p.category) >= sel.max_per_category:
            return False
        return not any(self._same_type(p, q.product) for q in chosen)  # one of each kind of product

    def plan(self, member: Member, recs: tuple[Recommendation, ...], *, recently_bought: frozenset[str] = frozenset(),
             returned: frozenset[str] = frozenset()) -> Plan:
        why = self.suppressed_reason(member)
        if why:
            return Plan(member=member, action="suppress", reason=why)
        in_holdout = (member.member_id in self.holdout if self.holdout is not None
                      else holdout_fraction(self.campaign.campaign_id, member.member_id) < self.campaign.holdout_share)
        if in_holdout:
            return Plan(member=member, action="holdout", reason="holdout group",
                        framing=self.framings.segments[member.segment]["framing"], send_at=self.send_at(member),
                        channel=self.channel_for(member) or "email")
        allowed = TIER_SOURCES[member.opt_in_tier]
        tier = member.opt_in_tier
        products: list[PlannedProduct] = []
        withheld: list[Withheld] = []  # every evidence item the tier kept out of the prompt, with its product
        if tier == 1:
            seg_ev = (Evidence(source="segment", detail=f"popular with {member.segment} this season"),)
            for p in self._segment_picks[member.segment]:
                products.append(PlannedProduct(product=p, evidence=seg_ev, withheld=()))
            withheld = [Withheld.of(r.product_id, e, tier, picked=False) for r in recs for e in r.evidence
                        if e.source not in allowed]
        else:
            sel = self.campaign.selection
            exclude = (recently_bought if sel.exclude_recently_bought else frozenset()) | \
                      (returned if sel.exclude_returned else frozenset())
            for r in sorted(recs, key=lambda r: (-r.score, r.product_id)):
                drop = tuple(e for e in r.evidence if e.source not in allowed)
                p = self.catalog.get(r.product_id)
                allowed_ev = [e for e in r.evidence if e.source in allowed]
                picked = (len(products) < self.campaign.top_k and p is not None and bool(allowed_ev)
                          and self._selectable(p, products, exclude))
                withheld += [Withheld.of(r.product_id, e, tier, picked=picked) for e in drop]
                if picked:  # evidence softened for the products that go into the prompt only
                    keep = tuple(e.model_copy(update={"detail": soften_detail(e.detail)}) for e in allowed_ev)
                    products.append(PlannedProduct(product=p, evidence=keep, withheld=drop))
            if not products:  # nothing personal we may use: fall back to segment picks
                seg_ev = (Evidence(source="segment", detail=f"popular with {member.segment} this season"),)
                products = [PlannedProduct(product=p, evidence=seg_ev) for p in self._segment_picks[member.segment]]
        cell = self.lever_cell(member)
        # the timing lever's cell is sent at the segment's default hour: offers are chosen for that delivery day
        send_at = self.send_at(member if cell != "timing" else member.model_copy(update={"last_engaged_hour": None}))
        valid = self.offers_on(delivery_date(member, send_at))
        # offers: a product's percent-off applies per product; sitewide offers (free shipping, category points)
        priced: list[PlannedProduct] = []
        for pp in products:
            offer, price = self._offer_for(pp.product, member, valid)
            priced.append(pp.model_copy(update={"offer": offer, "offer_price": price}) if offer else pp)
        chosen_cats = {pp.product.category for pp in priced}
        chosen_ids = {pp.product.product_id for pp in priced}
        member_offers = []
        for o in valid:
            if not offer_audience_ok(o, member, self.framings.churn_threshold):
                continue
            if o.kind == "free_shipping" and not o.applies_to and not o.applies_to_category:
                member_offers.append(o)
            elif o.applies_to and chosen_ids & set(o.applies_to):
                member_offers.append(o)
            elif o.applies_to_category and o.applies_to_category in chosen_cats:
                member_offers.append(o)
        variant = assign_variant(self.campaign.campaign_id, member.member_id, self.campaign.variants)
        framings = self.variant_framings.get(variant, self.framings)
        plan = Plan(member=member, action="send", framing=framings.framing_for(member),
                    products=tuple(priced), offers=tuple(member_offers), send_at=send_at,
                    channel=self.channel_for(member) or "email", variant=variant, withheld=tuple(withheld))
        return switch_off(plan, cell, self) if cell else plan

    def lever_cell(self, member: Member) -> str:
        """Per-lever holdouts (contentgen/levers.py): the lever this member's randomized cell switches off."""
        cells = self.campaign.levers
        if not (cells.content or cells.timing or cells.channel or cells.offer):
            return ""
        return lever_cell(self.campaign.campaign_id, member.member_id, cells)

    def send_at(self, member: Member) -> dt.datetime:
        default = int(self.framings.segments[member.segment].get("send_hour_of_week", 34))
        return send_time(member, self.campaign.send_date, default)
