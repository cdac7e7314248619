"""The base of every check's params model: pydantic, so interpreted (see
:mod:`contentgen.gates.compiled`); :mod:`.plugin` re-exports both."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Params(BaseModel):
    """Base of a check's typed params (unknown keys are an error in the rule file)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class NoParams(Params):
    pass
