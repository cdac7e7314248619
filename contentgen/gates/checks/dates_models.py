"""The params models of :mod:`.dates`: pydantic, so kept out of the compiled module and
interpreted (see :mod:`contentgen.gates.compiled`)."""

from __future__ import annotations

import pydantic.main  # noqa: F401

import datetime as dt
import re

from pydantic import field_validator

from ..engine.plugin import Params


class OfferKindCues(Params):
    """Regexes that say which kind of offer a sentence is about."""

    percent_off: str
    points_multiplier: str
    free_shipping: str

    def compiled(self) -> tuple[tuple[str, re.Pattern[str]], ...]:
        return tuple((k, re.compile(v, re.I)) for k, v in (("percent_off", self.percent_off),
                                                            ("points_multiplier", self.points_multiplier),
                                                            ("free_shipping", self.free_shipping)))


class OfferDatesParams(Params):
    #: words before a date that make it the member's behaviour ("ordered", "since"): brand.value-first's
    behaviour_words: tuple[str, ...]
    #: words between such a cue and the date that make it an offer's date after all ("until", "ends")
    deadline_words: tuple[str, ...]
    #: words that make a date in a sentence an offer's date ("through", "sale", "off")
    offer_date_words: tuple[str, ...]
    offer_kind_cues: OfferKindCues
    #: free-shipping phrases (a sentence with one is about the free-shipping offer)
    shipping_phrases: tuple[str, ...]
    #: month-day of holidays a date may name without being an offer's ("12-25")
    holidays: tuple[str, ...]

    @field_validator("holidays")
    @classmethod
    def _md(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for x in v:
            dt.date(2000, int(x.split("-")[0]), int(x.split("-")[1]))
        return v


class BehaviourDatesParams(Params):
    behaviour_words: tuple[str, ...]
    deadline_words: tuple[str, ...]
    #: words right before a numeric date that make it an offer's ("until 12/6"): facts.offer-dates'
    offer_words_before: tuple[str, ...]
