"""The params models of :mod:`.voice`: pydantic, so kept out of the compiled module and
interpreted (see :mod:`contentgen.gates.compiled`)."""

from __future__ import annotations

import pydantic.main  # noqa: F401

from ..engine.plugin import Params


class ShoutingParams(Params):
    #: words in capitals that are fine (acronyms); catalog brand names in capitals are fine too
    allowed: tuple[str, ...] = ()
    #: regexes for phrases where capitals are expected ("Reply STOP to opt out")
    allowed_phrases: tuple[str, ...] = ()


class MaxParams(Params):
    max: int = 1


class NameUseParams(Params):
    max: int = 2
    #: greetings followed by a name ("Hi Nia,")
    name_greetings: tuple[str, ...]
    #: a greeting whose name slot is empty ("Hi ,", "Dear,"): regexes up to the name
    empty_greetings: tuple[str, ...]
    #: who a greeting may address besides the member ("there", "friend", "{program} member")
    generic_greetees: tuple[str, ...]
    #: unfilled name placeholders ("{first_name}", "[Name]")
    placeholders: tuple[str, ...]


class InternalIdsParams(Params):
    #: regexes for id-shaped tokens (SKU-12, P1234, "member id 4471")
    id_patterns: tuple[str, ...]


class ContractionsParams(Params):
    #: a message with more words than this and no contraction reads stiff
    min_words: int = 40
    #: contraction endings after an apostrophe ("re", "ve", "ll", "t")
    suffixes: tuple[str, ...]
