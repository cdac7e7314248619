"""The params models of :mod:`.privacy`: pydantic, so kept out of the compiled module and
interpreted (see :mod:`contentgen.gates.compiled`)."""

from __future__ import annotations

import pydantic.main  # noqa: F401

from ..engine.plugin import Params


class PiiParams(Params):
    #: street-type words a street address ends with ("Street", "St.", "Avenue")
    street_suffixes: tuple[str, ...]
    #: regexes for part of a phone, card or account number ("the card ending in 0042")
    partial_numbers: tuple[str, ...]
    #: capitalized words that follow a first name without being a surname (besides the sentence
    #: openers, the capitalized non-products and the campaign's names)
    not_surnames: tuple[str, ...] = ()


class EchoParams(Params):
    #: words that make member-supplied text read as an instruction ("ignore", "discount", "%")
    instruction_words: tuple[str, ...]
    #: member text shorter than this is never an instruction worth flagging
    min_length: int = 12
