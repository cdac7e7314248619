"""The params models of :mod:`.pressure`: pydantic, so kept out of the compiled module and
interpreted (see :mod:`contentgen.gates.compiled`)."""

from __future__ import annotations

import pydantic.main  # noqa: F401

from ..engine.plugin import Params
from .dates_models import OfferKindCues


class UrgencyParams(Params):
    #: the offer must end within this many days for time pressure without a stronger word
    within_days: int = 2
    #: time-pressure phrases (an offer valid on the send date must end soon enough)
    phrases: tuple[str, ...]
    #: phrases that only need some offer to be valid ("limited time")
    offer_phrases: tuple[str, ...]
    #: words in a phrase that mean the offer ends today ("tonight", "midnight")
    same_day_words: tuple[str, ...]
    #: words in a phrase that mean it ends tomorrow
    next_day_words: tuple[str, ...]
    #: verbs before a weekday that make it a deadline ("ends Friday", "through Sunday")
    deadline_verbs: tuple[str, ...]
    offer_kind_cues: OfferKindCues


class ScarcityParams(Params):
    #: at most this many in stock backs "low stock" wording without a number
    low_stock: int = 10
    #: stock-pressure phrases
    phrases: tuple[str, ...]
    #: inventory evidence words that back stock pressure without a number ("few", "low", "only")
    low_stock_words: tuple[str, ...]
    #: counts in words ("two", "a few") and what they stand for
    count_words: dict[str, int]
