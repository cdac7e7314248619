"""Dates: an offer's dates must be the offer's (facts), and no raw date of what the member did
(brand, value first). Which words make a date a behaviour's or an offer's are the rules' params."""

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
from .catalog import FACT_FIELDS, in_catalog_name, prep
from .dates_models import OfferDatesParams, BehaviourDatesParams


class BehaviourCue:
    """"ordered on", "since": a date right after a behaviour word, with no offer word in between."""

    def __init__(self, behaviour_words: tuple[str, ...], deadline_words: tuple[str, ...]) -> None:
        # a product name may stand between the verb and its date ("ordered Hex Glass Honey Jars, 12-Pack on June 20")
        self.before = re.compile(r"\b(?:" + "|".join(behaviour_words) + r")\b[^.!?\n]{0,60}$", re.I)
        self.deadline = re.compile(r"\b(?:" + "|".join(deadline_words) + r")\b", re.I)

    def __call__(self, text: str, a: int) -> bool:
        m = self.before.search(text[max(0, a - 80):a])
        return m is not None and self.deadline.search(m.group(0)) is None


class OfferDates(Check):
    """Every date is an offer's start or end date (a human checks dates with no offer word near)."""
    name = "facts.offer_dates"

    Params = OfferDatesParams

    def __init__(self, params: OfferDatesParams, build: Build) -> None:
        super().__init__(params, build)
        self.behaviour = BehaviourCue(params.behaviour_words, params.deadline_words)
        self.offer_cue = re.compile(r"\b(?:" + "|".join(params.offer_date_words) + r")\b", re.I)
        self.kinds = params.offer_kind_cues.compiled()
        self.ship = Phrases(build, params.shipping_phrases, re.I, head="", tail="")
        self.holidays = frozenset(tuple(int(x) for x in h.split("-")) for h in params.holidays)
        self.date = self.needs = build.feature("date")

    def run(self, rule: Rule, view: MessageView) -> Iterator[Hit]:
        p = prep(view)
        send = view.ctx.send_date
        ship = self.ship.get(view)
        for label, text in view.fields_with(self.date, FACT_FIELDS):
            for a, b, md in T.date_matches(text, send):
                if in_catalog_name(p, label, a, b):
                    continue  # part of a product's name
                if self.behaviour(text, a):
                    continue  # a date of the member's behaviour: brand.value-first
                sent = p.sentence_text(label, text, a, with_prev=True)
                kinds = set()
                for k, cue in self.kinds:
                    if cue.search(sent) or (k == "free_shipping" and ship.search(sent, None)):
                        kinds.add(k)
                cands = [o for o in p.valid_offers if not kinds or o.kind in kinds]
                if any(T.date_equals(md, o.valid_until) or T.date_equals(md, o.valid_from) for o in cands):
                    continue
                if any(T.date_equals(md, o.valid_until) or T.date_equals(md, o.valid_from) for o in p.valid_offers):
                    continue
                own = p.sentence_text(label, text, a)
                if kinds or self.offer_cue.search(own):
                    dates = sorted({o.valid_until for o in cands} or {o.valid_until for o in p.valid_offers})
                    expect = ", ".join(f"{d:%B} {d.day}" for d in dates) or "no offer is valid on the send date"
                    if (md[0], md[1]) in self.holidays and not kinds:
                        continue
                    yield Hit(label, a, b, slots={"expected": expect})
                elif (md[0], md[1]) not in self.holidays:
                    yield Hit(label, a, b, decidable=False, severity="warning",
                              slots={"expected": "a date that matches an offer (a human should check this one)"})


_RAW_DATE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}(?:/\d{2,4})?")


class BehaviourDates(Check):
    """Raw dates and timestamps of what the member did ("on 2/14", "2026-11-18")."""
    name = "brand.behaviour_dates"

    Params = BehaviourDatesParams

    def __init__(self, params: BehaviourDatesParams, build: Build) -> None:
        super().__init__(params, build)
        self.behaviour = BehaviourCue(params.behaviour_words, params.deadline_words)
        self.offer_before = re.compile(r"\b(?:" + "|".join(params.offer_words_before) + r")\s*$", re.I)
        self.cache: dict[tuple[str, dt.date], tuple[tuple[int, int], ...]] = {}
        self.date = self.needs = build.feature("date")

    def run(self, rule: Rule, view: MessageView) -> Iterator[Hit]:
        send = view.ctx.send_date
        cache = self.cache
        for label, text in view.fields_with(self.date, rule.fields):
            key = (text, send)  # pure in the text and the send date (explanations, subjects repeat)
            spans = cache.get(key)
            if spans is None:
                found = []
                for a, b, _ in T.date_matches(text, send):
                    raw = _RAW_DATE.fullmatch(text, a, b) is not None
                    behaviour = self.behaviour(text, a)
                    if raw or behaviour:
                        if raw and not behaviour and self.offer_before.search(text[max(0, a - 20):a]):
                            continue  # an offer date written numerically: facts.offer-dates checks it
                        found.append((a, b))
                spans = tuple(found)
                if len(cache) > 8192:
                    cache.clear()
                cache[key] = spans
            for a, b in spans:
                if not in_catalog_name(prep(view), label, a, b):  # (part of a product's name)
                    yield Hit(label, a, b)
