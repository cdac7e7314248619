"""The params models of :mod:`.offers`: pydantic, so kept out of the compiled module and
interpreted (see :mod:`contentgen.gates.compiled`)."""

from __future__ import annotations

import pydantic.main  # noqa: F401

from ..engine.plugin import Params


class PricesParams(Params):
    #: free-shipping phrases: a price in a sentence that holds one is a threshold (facts.free-shipping's)
    shipping_phrases: tuple[str, ...]
    #: words that mean delivery ("shipping", "delivery"): same
    shipping_words: tuple[str, ...]
    #: words before a price that make it a ceiling ("under $40"): true when a product costs no more
    ceiling_words: tuple[str, ...]


class PercentParams(Params):
    #: words near a percentage that make it an offer ("15% off", "save 15%"): "100% merino" is not one
    offer_words: tuple[str, ...]
    #: words that stretch an offer to a group ("every", "all", "any")
    scope_quantifiers: tuple[str, ...]
    #: phrases that stretch it to everything ("sitewide", "everything")
    scope_everything: tuple[str, ...]
    #: nouns for everything a shop sells ("items", "products", "orders")
    scope_group_nouns: tuple[str, ...]
    product_nouns: tuple[str, ...]
    #: words that say an offer covers every recommended product ("both", "all three")
    collective_words: tuple[str, ...] = ()


class PointsParams(Params):
    #: multiplier words and their factor ("double": 2, "two times the": 2)
    multiplier_words: dict[str, int]
    #: words between a multiplier and "points" ("bonus", "member"); the program's name counts too
    points_qualifiers: tuple[str, ...]
    #: words between a number and "points" in an absolute amount ("500 bonus points")
    amount_qualifiers: tuple[str, ...]
    #: what after "N points" makes it an earning rate, not an amount ("per", "for every")
    rate_words: tuple[str, ...]
    #: phrases that promise points without a number ("bonus points")
    bonus_phrases: tuple[str, ...]
    scope_quantifiers: tuple[str, ...]
    scope_everything: tuple[str, ...]
    scope_group_nouns: tuple[str, ...]
    product_nouns: tuple[str, ...]


class FreeShippingParams(Params):
    #: phrases that promise free shipping
    shipping_phrases: tuple[str, ...]
    #: words right before an amount that make it an order threshold ("over $50", "orders of $50")
    threshold_words: tuple[str, ...]
    #: phrases that say free shipping has no minimum ("any order", "sitewide")
    unconditional_phrases: tuple[str, ...]
    #: words a sentence about "it" opens with ("It ships free"): the product before it is meant
    pronouns: tuple[str, ...]
