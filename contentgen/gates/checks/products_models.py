"""The params models of :mod:`.products`: pydantic, so kept out of the compiled module and
interpreted (see :mod:`contentgen.gates.compiled`)."""

from __future__ import annotations

import pydantic.main  # noqa: F401

from ..engine.plugin import Params


class UnknownProductParams(Params):
    #: nouns that end a product name: an unknown capitalized phrase ending with one names a product
    product_nouns: tuple[str, ...]
    #: capitalized phrases that are never products ("Black Friday"); ``{program}`` and ``{sender}``
    #: stand for the campaign's names
    ignore_phrases: tuple[str, ...] = ()
    #: last words that make a line-named phrase a group, not a product ("the Tidewater Collection")
    group_words: tuple[str, ...] = ()
