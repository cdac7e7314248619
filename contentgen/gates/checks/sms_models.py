"""The params models of :mod:`.sms`: pydantic, so kept out of the compiled module and
interpreted (see :mod:`contentgen.gates.compiled`)."""

from __future__ import annotations

import pydantic.main  # noqa: F401

from ..engine.plugin import Params


class SmsLengthParams(Params):
    max: int = 160
