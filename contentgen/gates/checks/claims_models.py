"""The params models of :mod:`.claims`: pydantic, so kept out of the compiled module and
interpreted (see :mod:`contentgen.gates.compiled`)."""

from __future__ import annotations

import pydantic.main  # noqa: F401

from pydantic import BaseModel, ConfigDict

from ..engine.plugin import Params


class Claim(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    #: a regex for the claim as written
    pattern: str
    #: catalog words any of which supports it (normalized: lowercase, spaces for - _ /)
    supported_by: tuple[str, ...] = ()
    #: said of a kit, pattern or supplies (``maker_nouns``), the claim describes what the member
    #: makes with it ("a handmade wallet" from a pattern pack), not the product
    of_what_is_made: bool = False
    #: words of the claim that carry no claim ("needs", "is", "required"): the claim is supported when
    #: the catalog has its other words ("needs no kiln" by "no kiln needed")
    filler: tuple[str, ...] = ()


class _Features(BaseModel):
    model_config = ConfigDict(extra="forbid")
    features: tuple[Claim, ...]


class _Families(BaseModel):
    model_config = ConfigDict(extra="forbid")
    families: dict[str, tuple[str, ...]]


class _Units(BaseModel):
    model_config = ConfigDict(extra="forbid")
    #: unit as written -> (dimension, factor to the dimension's base unit)
    units: dict[str, tuple[str, float]]
    not_counted: tuple[str, ...] = ()
    numbers: dict[str, float] = {}


class ClaimsParams(Params):
    #: the claims to check: a word ("vegan": supported by itself) or {pattern, supported_by}
    claims: tuple[str | Claim, ...]
    #: words right before a claim that negate it ("not waterproof")
    negations: tuple[str, ...]
    #: data files in the rules folder's vocab/: features (more claims), material and component
    #: families (a swap contradicts the catalog), units (numeric specifications)
    features_file: str | None = None
    families_file: str | None = None
    units_file: str | None = None
    #: name or category words of products that are made with (kits, patterns, supplies)
    maker_nouns: tuple[str, ...] = ()
