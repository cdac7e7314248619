"""The spec model of :mod:`.check`: pydantic, so kept out of the compiled module and
interpreted (see :mod:`contentgen.gates.compiled`)."""

from __future__ import annotations

import pydantic.main  # noqa: F401

from typing import Any

from ..model import Strict


class CheckSpec(Strict):
    check: str
    params: dict[str, Any] = {}
