"""``kind: length``: a field's length in characters, at most ``max`` / at least ``min``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..findings import Hit
from ..plugin import Kind
from .length_models import LengthSpec

if TYPE_CHECKING:
    from ..view import MessageView


class Length(Kind):
    name = "length"
    Spec = LengthSpec
    spec: LengthSpec

    def hits(self, view: MessageView) -> Iterator[Hit]:
        mx, mn = self.spec.max, self.spec.min
        for label, text in view.fields(self.rule.fields):
            n = len(text)
            if mx is not None and n > mx:
                yield Hit(label, mx, n, excerpt=text, slots={"count": n, "max": mx})
            elif mn is not None and n < mn:
                yield Hit(label, 0, n, excerpt=text, slots={"count": n, "min": mn})
