"""Facts: prices, percent offers, points and free shipping against the catalog and the offers
valid on the send date. The phrases (what counts as an offer word, a threshold, a points
multiplier...) are the rules' params."""

from __future__ import annotations

import re
from collections.abc import Iterator
from ...models import Offer
from .. import text as T
from ..engine.findings import Hit
from ..engine.model import Rule
from ..engine.phrases import Phrases
from ..engine.plugin import Build, Check, Params
from ..engine.view import MessageView
from .catalog import FACT_FIELDS, Prep, catalog_claim_spans, in_catalog_name, prep
from .offers_models import PricesParams, PercentParams, PointsParams, FreeShippingParams


def words_rx(words: tuple[str, ...], flags: int = re.I) -> re.Pattern[str]:
    """``\\b(?:w1|w2|...)\\b`` (the words are regex fragments)."""
    return re.compile(r"\b(?:" + "|".join(words) + r")\b", flags)


def allowed_cents(p: Prep, pid: str) -> set[int]:
    """Prices (cents) a product may be quoted at: its price, its discounted price and the saving
    (computed once per message and product; callers must not mutate the set)."""
    cache = p.extra.get("cents")
    if cache is None:
        cache = p.extra["cents"] = {}
    out: set[int] | None = cache.get(pid)
    if out is not None:
        return out
    prod = p.idx.products.get(pid)
    if prod is None:
        out = set()
    else:
        base = T.cents(prod.price)
        out = {base}
        for o in p.valid_offers:
            if o.kind == "percent_off" and o.value and o.applies_to_product(prod):
                for d in T.discounted(prod.price, o.value):
                    out.add(d)
                    out.add(base - d)
    cache[pid] = out
    return out


def fmt_money(c: int) -> str:
    return f"${c // 100}" if c % 100 == 0 else f"${c / 100:.2f}"


class Prices(Check):
    """Every price matches a product's catalog price, its offer price or the saving, or a total."""
    name = "facts.prices"

    Params = PricesParams

    def __init__(self, params: PricesParams, build: Build) -> None:
        super().__init__(params, build)
        self.ship = Phrases(build, params.shipping_phrases, re.I, head="", tail="")
        self.ship_word = words_rx(params.shipping_words)
        self.under = re.compile(r"(?:" + "|".join(params.ceiling_words) + r")\s*$")
        self.money = self.needs = build.feature("money")

    def run(self, rule: Rule, view: MessageView) -> Iterator[Hit]:
        p = prep(view)
        mentioned = p.all_mentioned()
        pool = set(mentioned) | {x for x in p.rec_ids if x in p.idx.products}
        pool_allowed: set[int] | None = None  # computed when first needed
        totals = {sum(T.cents(p.idx.products[x].price) for x in mentioned)} if len(mentioned) > 1 else set()
        for label, text in view.fields_with(self.money, FACT_FIELDS):
            for a, b, val in T.money_matches(text):
                c = T.cents(val)
                sent = p.sentence_text(label, text, a)
                low = sent.lower()  # every shipping pattern's match holds "ship" or "deliver"
                if ("ship" in low or "deliver" in low or not sent.isascii()) and (
                        self.ship.get(view).search(sent, None) or self.ship_word.search(sent)):
                    continue  # thresholds in shipping sentences: facts.free-shipping checks them
                targets = p.sentence_products(label, a)
                if any(c in allowed_cents(p, pid) for pid in (targets or p.attribute(label, a, b))):
                    continue
                if not targets:
                    if pool_allowed is None:
                        pool_allowed = set()
                        for pid in pool:
                            pool_allowed |= allowed_cents(p, pid)
                    if c in pool_allowed:
                        continue
                pre = text[max(0, a - 16):a].lower()
                if self.under.search(pre):
                    if any(p.idx.products[x].price <= val for x in pool):
                        continue
                if c in totals:
                    continue
                names = ", ".join(f"{p.name(x)} {fmt_money(T.cents(p.idx.products[x].price))}"
                                  for x in (targets or p.attribute(label, a, b)) if x in p.idx.products)
                yield Hit(label, a, b, slots={"expected": names or "no product this price belongs to"})


class Scope:
    """An offer said of a whole group ("every reel", "all sunglasses", "sitewide") when it applies
    to some products only (or to another category): its scope stretched."""

    def __init__(self, quantifiers: tuple[str, ...], everything: tuple[str, ...], group_nouns: tuple[str, ...],
                 product_nouns: tuple[str, ...]) -> None:
        self.rx = re.compile(r"\b(?:(?P<all>" + "|".join(everything) + r")|(?:" + "|".join(quantifiers)
                             + r")(?: of)?(?: (?:our|the|your|these|those))? (?:[a-z-]+ )??(?P<noun>[a-z-]+))\b", re.I)
        self.group = frozenset(w.lower() for w in group_nouns)
        self.nouns = frozenset(w.lower() for w in product_nouns)

    def stretched(self, p: Prep, sent: str, offers: list[Offer]) -> str | None:
        """What the sentence stretches the offers to (None: not stretched)."""
        words = p.idx.extra.get("name_words")
        if words is None:
            words = p.idx.extra["name_words"] = (
                {t for toks in p.idx.tokens.values() for t in toks if len(t) > 2}
                | {w for pr in p.idx.products.values() for w in re.split(r"[\s_/-]+", (pr.category or "").lower()) if w})
        for m in self.rx.finditer(sent):
            noun = (m.group("noun") or "").lower()
            single = noun[:-1] if noun.endswith("s") and not noun.endswith("ss") else noun
            if m.group("all") or single in self.group or noun in self.group:
                wide = True  # everything: any narrower offer is stretched
            elif noun in words or single in words or noun in self.nouns or single in self.nouns:
                wide = False  # a kind of product: stretched past a product list, not past its own category
            else:
                continue  # "every season", "all day": not a product group
            if any(_category_in(sent, o) for o in offers) or _IN_THE_CATEGORY.search(sent):
                return None  # "everything in our fencing range": the category the offer is for
            for o in offers:
                if not o.applies_to and not o.applies_to_category:
                    return None  # the offer is for everything
                if not wide and o.applies_to_category and single and single in o.applies_to_category.lower():
                    return None  # "every reel" under a reels-category offer
            return m.group(0)
        return None


class PercentOffers(Check):
    """A percentage offer exists, is valid on the send date and applies to the product it is said of."""
    name = "facts.percent_offers"

    Params = PercentParams

    def __init__(self, params: PercentParams, build: Build) -> None:
        super().__init__(params, build)
        self.offish = words_rx(params.offer_words)
        self.scope = Scope(params.scope_quantifiers, params.scope_everything, params.scope_group_nouns,
                           params.product_nouns)
        self.percent = self.needs = build.feature("percent")
        self.collective = words_rx(params.collective_words) if params.collective_words else None

    def run(self, rule: Rule, view: MessageView) -> Iterator[Hit]:
        p = prep(view)
        for label, text in view.fields_with(self.percent, FACT_FIELDS):
            found = T.percent_matches(text)
            claims = catalog_claim_spans(p.idx, text) if p.idx.claims_rx is not None else ()
            for k, (a, b, val) in enumerate(found):
                if any(ca <= a and b <= cb for ca, cb in claims) or in_catalog_name(p, label, a, b):
                    continue  # "100% linen": a catalog claim or part of a product's name, not an offer
                # the offer word must be this percentage's: not past a neighbouring one ("100% linen, 15% off")
                lo = max(a - 25, found[k - 1][1] if k else 0)
                hi = min(b + 25, found[k + 1][0] if k + 1 < len(found) else len(text))
                if not self.offish.search(text[lo:hi]):
                    continue
                allx = [o for o in view.ctx.offers if o.kind == "percent_off" and o.value is not None and
                        abs(o.value - val) < 1e-6]
                valid = [o for o in allx if o in p.valid_offers]
                if not allx:
                    yield Hit(label, a, b, slots={"reason": f"there is no {val:g}% offer"})
                    continue
                if not valid:
                    o = allx[0]
                    yield Hit(label, a, b, slots={"reason": f"the {val:g}% offer runs {o.valid_from:%B} "
                                                            f"{o.valid_from.day} to {o.valid_until:%B} "
                                                            f"{o.valid_until.day} and is not valid on "
                                                            f"{view.ctx.send_date:%B} {view.ctx.send_date.day} "
                                                            "(or not open to this member)"})
                    continue
                named = p.sentence_products(label, a)
                if not named:
                    cl = clause(p, label, text, a, b)
                    wider = self.scope.stretched(p, cl, valid)
                    if wider is None and self.collective is not None and len(p.rec_ids) > 1:
                        cm = self.collective.search(cl)  # "both 15% off": every recommended product
                        recs = [p.idx.products[x] for x in sorted(p.rec_ids) if x in p.idx.products]
                        if cm and not all(any(o.applies_to_product(pr) for o in valid) for pr in recs):
                            wider = cm.group(0)
                    if wider is not None:
                        yield Hit(label, a, b, slots={"reason": f"the {val:g}% offer applies to {_scope_of(p, valid)}, "
                                                                f"not to '{wider}'"})
                        continue
                if not named and any(_category_in(clause(p, label, text, a, b), o) for o in valid):
                    continue  # "Arrows are 10% off": said of the offer's category
                targets = named or p.attribute(label, a, b)
                prods = [p.idx.products[t] for t in targets if t in p.idx.products]
                if prods and not any(o.applies_to_product(pr) for o in valid for pr in prods):
                    yield Hit(label, a, b, slots={"reason": f"the {val:g}% offer does not apply to "
                                                            + ", ".join(pr.name for pr in prods)})


_WORDS_RE = re.compile(r"[a-z][a-z'’-]*")
_ORDER_WORD = re.compile(r"\b(?:orders?|baskets?|carts?|everything)\b", re.I)


def _words_of(low: str) -> set[str]:
    return {w.rstrip("s") for w in _WORDS_RE.findall(low)}


def _head_noun(name: str) -> str:
    """The last word of a product name, singular ("Maple Ave Candle" -> "candle")."""
    ws = _WORDS_RE.findall(name.lower())
    return ws[-1].rstrip("s") if ws else ""


_CLAUSE_BREAK = re.compile(r"[,;:()–—]")


def clause(p: Prep, label: str, text: str, a: int, b: int) -> str:
    """The clause of its sentence that holds text[a:b] (between commas, semicolons, dashes...)."""
    _, (sa, sb) = p.sentence_of(label, a)
    lo = sa
    for m in _CLAUSE_BREAK.finditer(text, sa, a):
        lo = m.end()
    m2 = _CLAUSE_BREAK.search(text, b, sb)
    return text[lo:m2.start() if m2 else sb]


def _scope_of(p: Prep, offers: list[Offer]) -> str:
    parts = []
    for o in offers:
        if o.applies_to_category:
            parts.append(f"the {o.applies_to_category} category")
        parts.extend(p.name(x) for x in (o.applies_to or ()))
    return ", ".join(dict.fromkeys(parts)) or "some products only"


_CATEGORY_FILLER = frozenset(("accessories", "supplies", "gear", "tools", "equipment", "goods", "products", "items",
                              "essentials", "basics", "kits", "and"))


def _category_in(sent: str, offer: Offer) -> bool:
    """The sentence names the offer's category, whole or by one of its own words ("our fencing range"
    for "Fencing", "terrarium" for "Terrarium & reptile", "Arrows are 10% off")."""
    if not offer.applies_to_category:
        return False
    low = sent.lower()
    cat = offer.applies_to_category.lower()
    if re.search(r"\b" + re.escape(cat.rstrip("s")), low):
        return True
    words = [w.rstrip("s") for w in re.findall(r"[a-z]{4,}", cat) if w not in _CATEGORY_FILLER]
    for w in words:
        for m in re.finditer(r"\b" + re.escape(w) + r"[a-z]*(?:[ \t]+([a-z]+))?", low):
            nxt = m.group(1)
            # the word names the category unless another noun makes it something else ("soap additives"
            # is not the "Soap bases" category; "our terrarium range" is the "Terrarium & reptile" one)
            if nxt is None or nxt.rstrip("s") in words or nxt in _CATEGORY_NEXT:
                return True
    return False


#: words after a category's word that keep it the category ("fencing range", "arrows are 10% off")
_CATEGORY_NEXT = frozenset(("range", "ranges", "line", "lineup", "collection", "category", "section", "department", "aisle",
                            "gear", "supplies", "picks", "selection", "shop", "is", "are", "was", "were", "and", "or",
                            "for", "with", "in", "on", "at", "from", "through", "until", "till", "this", "that", "now",
                            "get", "gets", "earn", "earns", "ship", "ships", "all", "every", "items", "products"))


#: "everything in the category": the offer's own category, said back
_IN_THE_CATEGORY = re.compile(r"\b(?:in|from|across) (?:the|this|that|our) (?:category|range|section|department|aisle)\b", re.I)


def _other_category(p: Prep, sent: str, offers: list[Offer]) -> str | None:
    """A catalog category the sentence gives the offer to ("double points on apparel") that none
    of the offers covers: the offer's scope stretched from its products to another category."""
    cats = {pr.category.lower() for pr in p.idx.products.values() if pr.category}
    if not cats or any(not o.applies_to and not o.applies_to_category for o in offers):
        return None
    covered = {(o.applies_to_category or "").lower() for o in offers} | {
        pr.category.lower() for o in offers for pr in p.idx.products.values() if o.applies_to_product(pr) and pr.category}
    low = sent.lower()
    for cat in sorted(cats - covered, key=len, reverse=True):
        m = re.search(r"\b(?:on|for|across|in)\s+(?:(?:all|every|any|our|the|your)\s+)?(?:[a-z-]+\s+)?"
                      + re.escape(cat.rstrip("s")) + r"s?\b", low)
        if m:
            return cat
    return None


class Points(Check):
    """Points multipliers and amounts match a points offer valid on the send date, for the product."""
    name = "facts.points"

    Params = PointsParams

    def __init__(self, params: PointsParams, build: Build) -> None:
        super().__init__(params, build)
        self.mult_words = {k.lower(): v for k, v in params.multiplier_words.items()}
        words = sorted(self.mult_words, key=len, reverse=True)
        self._mult_head = r"\b(?:(" + "|".join(re.escape(w).replace(r"\ ", " ") for w in words) + r")"
        self._by_brand: dict[str, re.Pattern[str]] = {}
        self.abs_points = re.compile(
            r"(?=[0-9])(?<![\w.$])(\d{1,3}(?:,\d{3})+|\d+)\s+(?:(?:" + "|".join(params.amount_qualifiers) +
            r")\s+)?points?\b(?!\s+(?:" + "|".join(params.rate_words) + r")\b)", re.I)
        self.bonus = re.compile(r"\b(?:" + "|".join(params.bonus_phrases) + r")\b", re.I)
        self.scope = Scope(params.scope_quantifiers, params.scope_everything, params.scope_group_nouns,
                           params.product_nouns)
        self.point = self.needs = build.patterns(["point"], re.I)  # every points pattern holds "point"

    def mult_rx(self, view: MessageView) -> re.Pattern[str]:
        program = view.ctx.brand.program
        rx = self._by_brand.get(program)
        if rx is None:
            quals = "|".join([*self.params.points_qualifiers, re.escape(program.lower())])
            rx = self._by_brand[program] = re.compile(
                self._mult_head + r"|(\d+)\s?[x×]|[x×](\d+))\s+(?:the\s+)?(?:(?:" + quals + r")\s+)?points?\b", re.I)
        return rx

    def run(self, rule: Rule, view: MessageView) -> Iterator[Hit]:
        if "point" not in view.lower(FACT_FIELDS):
            return
        p = prep(view)
        mult_rx = self.mult_rx(view)
        allpts = [o for o in view.ctx.offers if o.kind == "points_multiplier"]
        validpts = [o for o in allpts if o in p.valid_offers]
        for label, text in view.fields_with(self.point, FACT_FIELDS):
            seen: list[tuple[int, int]] = []
            for m in mult_rx.finditer(text):
                seen.append(m.span())
                if m.group(1):
                    mult = self.mult_words.get(" ".join(m.group(1).lower().split()), 0)
                else:
                    mult = int(m.group(2) or m.group(3))
                same = [o for o in allpts if o.value is not None and abs(o.value - mult) < 1e-6]
                ok = [o for o in same if o in validpts]
                if not same:
                    yield Hit(label, m.start(), m.end(), slots={"reason": f"there is no {mult}x points offer"})
                    continue
                if not ok:
                    o = same[0]
                    yield Hit(label, m.start(), m.end(),
                              slots={"reason": f"the {mult}x points offer runs {o.valid_from.isoformat()} to "
                                               f"{o.valid_until.isoformat()}, not on the send date"})
                    continue
                sent = p.sentence_text(label, text, m.start())
                if not p.sentence_products(label, m.start()):
                    wider = self.scope.stretched(p, clause(p, label, text, m.start(), m.end()), ok)
                    if wider is not None:
                        yield Hit(label, m.start(), m.end(),
                                  slots={"reason": f"the {mult}x points offer applies to {_scope_of(p, ok)}, "
                                                   f"not to '{wider}'"})
                        continue
                if any(_category_in(sent, o) or (not o.applies_to and not o.applies_to_category) for o in ok):
                    continue
                targets = p.sentence_products(label, m.start())
                if not targets:  # no product named in the sentence: a head noun ("The candle") names one
                    low_sent = sent.lower()
                    targets = [pid for pid in p.rec_ids if pid in p.idx.products
                               and _head_noun(p.idx.products[pid].name) in _words_of(low_sent)]
                if not targets and (other := _other_category(p, sent, ok)) is not None:
                    yield Hit(label, m.start(), m.end(),
                              slots={"reason": f"the {mult}x points offer applies to {_scope_of(p, ok)}, not to {other}"})
                    continue
                if not targets:  # none referred to: true if it applies to a recommended product
                    recs = [p.idx.products[t] for t in p.rec_ids if t in p.idx.products]
                    if any(o.applies_to_product(pr) for o in ok for pr in recs):
                        continue
                    targets = p.attribute(label, m.start(), m.end())
                prods = [p.idx.products[t] for t in targets if t in p.idx.products]
                if prods and not any(o.applies_to_product(pr) for o in ok for pr in prods):
                    where = ok[0].applies_to_category or ", ".join(ok[0].applies_to or ())
                    yield Hit(label, m.start(), m.end(),
                              slots={"reason": f"the {mult}x points offer applies to {where}, not to "
                                               + ", ".join(pr.name for pr in prods)})
            for m in self.abs_points.finditer(text):
                if any(a <= m.start() < b for a, b in seen):
                    continue
                n = float(m.group(1).replace(",", ""))
                if any(o.value is not None and abs(o.value - n) < 1e-6 for o in validpts):
                    continue
                yield Hit(label, m.start(), m.end(), slots={"reason": f"no offer gives {m.group(1)} points"})
            if not validpts:
                for m in self.bonus.finditer(text):
                    if not any(a <= m.start() < b for a, b in seen):
                        yield Hit(label, m.start(), m.end(),
                                  slots={"reason": "no points offer is valid on the send date"})


class FreeShipping(Check):
    """Free shipping only while a free-shipping offer is valid, with its minimum order."""
    name = "facts.free_shipping"

    Params = FreeShippingParams

    def __init__(self, params: FreeShippingParams, build: Build) -> None:
        super().__init__(params, build)
        self.ship = Phrases(build, params.shipping_phrases, re.I, head="", tail="")
        self.threshold = re.compile(r"(?:" + "|".join(params.threshold_words) + r")\s*$", re.I)
        self.unconditional = words_rx(params.unconditional_phrases)
        self.pronoun = re.compile(r"[\"'“‘(]*(?:" + "|".join(params.pronouns) + r")\b", re.I)
        self.needs = self.ship.ids

    def run(self, rule: Rule, view: MessageView) -> Iterator[Hit]:
        p = prep(view)
        allfs = [o for o in view.ctx.offers if o.kind == "free_shipping"]
        valid = [o for o in allfs if o in p.valid_offers]
        for label, text in p.fields:
            for m in self.ship.finditer(view, text):
                if not valid:
                    why = "no free-shipping offer is valid on the send date" if not allfs else \
                        f"the free-shipping offer runs {allfs[0].valid_from.isoformat()} to " \
                        f"{allfs[0].valid_until.isoformat()}"
                    yield Hit(label, m.start(), m.end(), slots={"reason": why})
                    continue
                i, (sa, sb) = p.sentence_of(label, m.start())
                sent = text[sa:sb]
                money = T.money_matches(sent)
                amounts = [T.cents(v) for _, _, v in money]
                mins = {T.cents(o.min_order) for o in valid if o.min_order}
                wrong = False
                prices = {T.cents(p.idx.products[x].price) for x in p.sentence_products(label, m.start())
                          if x in p.idx.products}
                for a0, e0, v in money:
                    c = T.cents(v)
                    threshold = self.threshold.search(sent[max(0, a0 - 18):a0])
                    if mins and c not in mins and (threshold or (c < min(mins) and c not in prices and not any(
                            c in allowed_cents(p, t) for t in p.attribute(label, sa + a0, sa + e0)
                            if t in p.idx.products))):
                        wrong = True  # a threshold that isn't the offer's (a product's own price is not one:
                        # "It's $32, and ... free shipping on orders over $50" prices the product "it" is)
                if wrong:
                    yield Hit(label, m.start(), m.end(),
                              slots={"reason": "the minimum order is " + " or ".join(fmt_money(x) for x in sorted(mins))})
                elif mins and all(c in own for c in amounts for own in [self._sentence_prices(p, label, m)]) and (
                        self.unconditional.search(sent) or self._below_minimum(p, label, m, mins)):
                    yield Hit(label, m.start(), m.end(),
                              slots={"reason": "free shipping needs a minimum order of "
                                               + " or ".join(fmt_money(x) for x in sorted(mins))})

    @staticmethod
    def _sentence_prices(p: Prep, label: str, m: re.Match[str]) -> set[int]:
        """Every price (cents) the products named in the match's sentence may be quoted at."""
        out: set[int] = set()
        for t in p.sentence_products(label, m.start()):
            if t in p.idx.products:
                out |= allowed_cents(p, t)
        return out

    def _below_minimum(self, p: Prep, label: str, m: re.Match[str], mins: set[int]) -> bool:
        """Free shipping said of the product(s) the sentence is about ("It ships free, too."), with no
        threshold named, when together they cost less than the smallest minimum order."""
        text = dict(p.fields)[label]
        if any(T.cents(v) in mins for _, _, v in T.money_matches(text)):
            return False  # the field names the minimum order: the line is qualified
        targets = p.sentence_products(label, m.start())
        if not targets:
            i, (sa, sb) = p.sentence_of(label, m.start())
            if self.pronoun.match(text, sa):
                targets = p.attribute(label, m.start(), m.end())  # "It ships free, too.": the product before
            elif m.group(0).lower().startswith("ship") and not _ORDER_WORD.search(text, sa, sb):
                # "Your rain cover ships free": the product named by two words of its name (not "the
                # order ships free", which is the basket's total)
                said = _words_of(text[sa:sb].lower())
                targets = [pid for pid in sorted(p.rec_ids) if pid in p.idx.products and len(
                    {t.rstrip("s") for t in p.idx.tokens.get(pid, ()) if len(t) > 2} & said) >= 2]
                if not targets:
                    return False  # a general line about shipping
            else:
                return False  # "plus free shipping": a general line about shipping
        targets = [t for t in targets if t in p.idx.products]
        return bool(targets) and sum(min(allowed_cents(p, t)) for t in targets) < min(mins)
