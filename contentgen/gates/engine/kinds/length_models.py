"""The spec model of :mod:`.length`: pydantic, so kept out of the compiled module and
interpreted (see :mod:`contentgen.gates.compiled`)."""

from __future__ import annotations

import pydantic.main  # noqa: F401

from pydantic import model_validator

from ..model import Strict


class LengthSpec(Strict):
    max: int | None = None
    min: int | None = None

    @model_validator(mode="after")
    def _need(self) -> LengthSpec:
        if self.max is None and self.min is None:
            raise ValueError("kind 'length' needs max or min")
        return self
