"""The params models of :mod:`.churn`: pydantic, so kept out of the compiled module and
interpreted (see :mod:`contentgen.gates.compiled`)."""

from __future__ import annotations

import pydantic.main  # noqa: F401

from ..engine.plugin import Params


class ChurnOfferParams(Params):
    #: offer audiences that mean a churn-prevention offer (a vocabulary)
    audiences: tuple[str, ...]
