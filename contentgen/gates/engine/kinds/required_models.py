"""The spec model of :mod:`.required`: pydantic, so kept out of the compiled module and
interpreted (see :mod:`contentgen.gates.compiled`)."""

from __future__ import annotations

import pydantic.main  # noqa: F401

from typing import Literal

from ..model import Strict


class RequiredSpec(Strict):
    pattern: str
    position: Literal["anywhere", "start", "end"] = "anywhere"
    scope: Literal["field", "message"] = "field"
