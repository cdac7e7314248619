"""The spec model of :mod:`.occurrence`: pydantic, so kept out of the compiled module and
interpreted (see :mod:`contentgen.gates.compiled`)."""

from __future__ import annotations

import pydantic.main  # noqa: F401

from typing import Literal

from pydantic import model_validator

from ..model import Strict


class OccurrenceSpec(Strict):
    pattern: str | None = None
    tokens: tuple[str, ...] = ()
    exceptions: tuple[str, ...] = ()
    max: int | None = None
    min: int | None = None
    scope: Literal["field", "message"] = "field"

    @model_validator(mode="after")
    def _need(self) -> OccurrenceSpec:
        if not ((self.pattern or self.tokens) and (self.max is not None or self.min is not None)):
            raise ValueError("kind 'occurrence' needs pattern or tokens, and max or min")
        return self
