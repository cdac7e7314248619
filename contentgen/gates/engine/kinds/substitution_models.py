"""The spec model of :mod:`.substitution`: pydantic, so kept out of the compiled module and
interpreted (see :mod:`contentgen.gates.compiled`)."""

from __future__ import annotations

import pydantic.main  # noqa: F401

from pydantic import model_validator

from ..model import Strict


class SubstitutionSpec(Strict):
    swap: dict[str, str] = {}
    exceptions: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _need(self) -> SubstitutionSpec:
        if not self.swap:
            raise ValueError("kind 'substitution' needs swap")
        return self
