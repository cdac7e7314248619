"""The spec model of :mod:`.sentence_length`: pydantic, so kept out of the compiled module and
interpreted (see :mod:`contentgen.gates.compiled`)."""

from __future__ import annotations

import pydantic.main  # noqa: F401

from ..model import Strict


class SentenceLengthSpec(Strict):
    max: int
