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


class ClaimsParams(Params):
    #: the claims to check: a word ("vegan": supported by itself) or {pattern, supported_by}
    claims: tuple[str | Claim, ...]
    #: words right before a claim that negate it ("not waterproof")
    negations: tuple[str, ...]
