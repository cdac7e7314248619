"""The spec model of :mod:`.existence`: pydantic, so kept out of the compiled module and
interpreted (see :mod:`contentgen.gates.compiled`)."""

from __future__ import annotations

import pydantic.main  # noqa: F401

from pydantic import model_validator

from ..model import Strict


class ExistenceSpec(Strict):
    tokens: tuple[str, ...] = ()
    exceptions: tuple[str, ...] = ()
    #: a match whose capitalized words the member gave us (their stated preferences, the
    #: stated-preference evidence) is not a finding ("kayaking on Lake Tahoe", which they told us)
    unless_member_gave: bool = False

    @model_validator(mode="after")
    def _need(self) -> ExistenceSpec:
        if not self.tokens:
            raise ValueError("kind 'existence' needs tokens")
        return self
