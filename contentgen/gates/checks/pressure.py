"""Facts: time pressure needs an offer that really ends soon; stock pressure needs real low stock."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

from .. import text as T
from ..engine.findings import Hit
from ..engine.model import Rule
from ..engine.phrases import Phrases
from ..engine.plugin import Build, Check, Params
from ..engine.view import MessageView
from .catalog import FACT_FIELDS, Prep, prep
from .pressure_models import UrgencyParams, ScarcityParams

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "a few": 3, "few": 3}
#: a countdown's length in a time-pressure phrase ("48 hours", "three days")
_COUNTDOWN = re.compile(r"\b(\d+|one|two|three|four|five|six|seven|a few|few)[- ](hours?|days?)\b")

#: a small count in inventory evidence ("3 units left in stock", "2 remaining")
_LEFT_COUNT = re.compile(r"(?<![\d.])(\d{1,3})(?:\s+[a-z]+){0,2}\s+(?:left|remaining|in stock)", re.I)


def _count(word: str) -> int:
    return int(word) if word.isdigit() else _NUMBER_WORDS[word]


class Urgency(Check):
    """Time pressure ("ends tonight", "last chance") needs a valid offer ending within the window."""
    name = "facts.urgency"

    Params = UrgencyParams

    def __init__(self, params: UrgencyParams, build: Build) -> None:
        super().__init__(params, build)
        self.time = Phrases(build, params.phrases, re.I)
        self.any_offer = Phrases(build, params.offer_phrases, re.I)
        self.same_day = re.compile("|".join(params.same_day_words))
        self.next_day = re.compile("|".join(params.next_day_words))
        self.weekday = re.compile(
            r"\b(?:" + "|".join(params.deadline_verbs) + r")\s+(?:this |next |on |this coming )?("
            + "|".join(_WEEKDAYS) + r")\b", re.I)
        self.kinds = params.offer_kind_cues.compiled()
        weekdays = build.patterns(_WEEKDAYS, re.I)
        assert self.time.ids is not None and self.any_offer.ids is not None
        self.needs = self.time.ids | self.any_offer.ids | weekdays
        self._weekday_cache: dict[tuple[str, dt.date, tuple[tuple[str, dt.date], ...]],
                                  tuple[tuple[int, int, str], ...]] = {}

    def run(self, rule: Rule, view: MessageView) -> Iterator[Hit]:
        p = prep(view)
        limit = self.params.within_days
        send = view.ctx.send_date
        if any(d in view.lower(FACT_FIELDS) for d in _WEEKDAYS):
            for label, text in p.fields:
                ends = tuple(sorted({(o.kind, o.valid_until) for o in p.valid_offers}))
                for a, b, reason in self._weekday_hits(text, send, ends):
                    yield Hit(label, a, b, slots={"reason": reason})
        any_offer = not p.valid_offers
        for label, text in p.fields:
            if any_offer:
                for m in self.any_offer.finditer(view, text):
                    yield Hit(label, m.start(), m.end(), slots={"reason": "no offer is valid on the send date"})
            for m in self.time.finditer(view, text):
                phrase = m.group().lower()
                need = 0 if self.same_day.search(phrase) else (1 if self.next_day.search(phrase) else limit)
                span = _COUNTDOWN.search(phrase)
                if span is not None:  # "the next 48 hours", "only 3 days left": the offer must end within that
                    n = _count(span.group(1))  # (an offer ending today has under 24 hours left, tomorrow under 48)
                    need = max(0, -(-n // 24) - 1) if span.group(2).startswith("hour") else n
                prods = [p.idx.products[t] for t in p.attribute(label, m.start(), m.end()) if t in p.idx.products]
                if "weekend" in phrase:  # "this weekend only": an offer ending on the coming weekend (Fri-Mon)
                    if any((o.valid_until - send).days <= 7 and o.valid_until.weekday() in (4, 5, 6) and (
                            o.kind == "free_shipping" or not prods or any(o.applies_to_product(pr) for pr in prods))
                           for o in p.valid_offers):
                        continue
                    yield Hit(label, m.start(), m.end(),
                              slots={"reason": "no offer valid on the send date ends this weekend"})
                    continue
                if any((o.valid_until - send).days <= need and (
                        o.kind == "free_shipping" or not prods or any(o.applies_to_product(pr) for pr in prods))
                       for o in p.valid_offers):
                    continue
                yield Hit(label, m.start(), m.end(),
                          slots={"reason": "no offer valid on the send date ends within "
                                           f"{need * 24 if need else 24} hours"})

    def _weekday_hits(self, text: str, send: dt.date,
                      ends: tuple[tuple[str, dt.date], ...]) -> tuple[tuple[int, int, str], ...]:
        """(start, end, reason) of each weekday deadline that is no offer's end date. A weekday is the
        next one on or after the send date ("next Friday": the one after); a sentence that names a
        kind of offer (percent, points, shipping) is held to offers of that kind."""
        key = (text, send, ends)
        got = self._weekday_cache.get(key)
        if got is not None:
            return got
        low = text.lower()
        out = []
        if any(d in low for d in _WEEKDAYS):
            dates = None
            for m in self.weekday.finditer(text):
                if dates is None:
                    dates = [a for a, _, _ in T.date_matches(text, send)]
                if any(0 <= a - m.end(1) <= 3 for a in dates):
                    continue  # "Sunday, December 6": the date says which Sunday (facts.offer-dates checks it)
                wd = _WEEKDAYS.index(m.group(1).lower())
                ahead = (wd - send.weekday()) % 7
                if "next " in m.group(0).lower() and ahead < 7:
                    ahead += 7
                day = send + dt.timedelta(days=ahead)
                sent = next((text[a:b] for a, b in T.split_sentences(text) if a <= m.start() < b), text)
                kinds = {k for k, cue in self.kinds if cue.search(sent)}
                days = sorted({d for k, d in ends if not kinds or k in kinds})
                if day in days:
                    continue
                said = ", ".join(f"{d:%A %B} {d.day}" for d in days) or "none"
                out.append((m.start(1), m.end(1),
                            f"{day:%A %B} {day.day} is no offer's end date; offers valid on the send date end {said}"))
        got = tuple(out)
        if len(self._weekday_cache) > 8192:
            self._weekday_cache.clear()
        self._weekday_cache[key] = got
        return got


class Scarcity(Check):
    """Stock pressure ("only 2 left", "selling fast") needs real low stock of that product."""
    name = "facts.scarcity"

    Params = ScarcityParams

    def __init__(self, params: ScarcityParams, build: Build) -> None:
        super().__init__(params, build)
        self.stock = Phrases(build, params.phrases, re.I)
        self.few = re.compile(r"\b(?:" + "|".join(params.low_stock_words) + r")\b", re.I)
        self.counts = {k.lower(): v for k, v in params.count_words.items()}
        self.number = re.compile(r"\b(\d+|" + "|".join(re.escape(w).replace(r"\ ", " ") for w in params.count_words)
                                 + r")\b", re.I)
        self.needs = self.stock.ids

    def _inventory_backs(self, view: MessageView, pid: str, n: int | None) -> bool:
        """The product's recommendation carries inventory evidence with that count ("only 4 left in
        stock"), or, for a claim without a number, any low-stock wording."""
        for r in view.ctx.recommendations:
            if r.product_id != pid:
                continue
            for e in r.evidence:
                if e.source != "inventory":
                    continue
                if n is not None:
                    if re.search(rf"(?<!\d){n}(?!\d)", e.detail):
                        return True
                elif self.few.search(e.detail):
                    return True
                else:  # "3 units left in stock" backs "only a few are left"
                    c = _LEFT_COUNT.search(e.detail)
                    if c and int(c.group(1)) <= self.params.low_stock:
                        return True
        return False

    def run(self, rule: Rule, view: MessageView) -> Iterator[Hit]:
        p: Prep = prep(view)
        low_stock = self.params.low_stock
        for label, text in p.fields:
            for m in self.stock.finditer(view, text):
                targets = p.attribute(label, m.start(), m.end())
                prods = [p.idx.products[t] for t in targets if t in p.idx.products]
                num = self.number.search(m.group())
                n = None
                g = ""
                if num:
                    g = num.group(1).lower()
                    n = int(g) if g.isdigit() else self.counts.get(g)
                backed = False
                for pr in prods:
                    if pr.stock is None:  # the catalog doesn't say: the recommendation's inventory evidence may
                        fuzzy = num is not None and g in ("a few", "a couple")
                        backed = backed or self._inventory_backs(view, pr.product_id, None if fuzzy else n)
                        continue
                    if pr.stock <= 0:
                        continue
                    if n is not None:
                        backed = backed or (pr.stock == n or (g in ("a few", "a couple") and pr.stock <= 5))
                    else:
                        backed = backed or pr.stock <= low_stock
                if backed:
                    continue
                stock = ", ".join(f"{pr.name}: {'unknown' if pr.stock is None else pr.stock}" for pr in prods) or "none"
                yield Hit(label, m.start(), m.end(), slots={"reason": f"stock on hand is {stock}"})
