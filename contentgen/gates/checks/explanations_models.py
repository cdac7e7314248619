"""The params models of :mod:`.explanations`: pydantic, so kept out of the compiled module and
interpreted (see :mod:`contentgen.gates.compiled`)."""

from __future__ import annotations

import pydantic.main  # noqa: F401

from ..engine.plugin import Params


class EvidenceParams(Params):
    #: evidence source -> phrases that cite it ("you bought" cites purchase)
    sources: dict[str, tuple[str, ...]]
    #: phrases that report what the member told us ("you told us"): cues inside them are not cited
    stated_cues: tuple[str, ...]


class Tier1Params(Params):
    #: segment-level reasons a tier 1 explanation may give ("popular with", "bestseller")
    segment_phrases: tuple[str, ...]
    #: words that make a reason personal ("you", "your", "you've")
    personal: str
