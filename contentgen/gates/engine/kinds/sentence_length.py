"""``kind: sentence_length``: no sentence longer than ``max`` words (in a body, only the prose
lines count: not the greeting, the product lines or the sign-off)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ... import text as T
from ..findings import Hit
from ..model import Rule
from ..plugin import Build, Kind
from .sentence_length_models import SentenceLengthSpec

if TYPE_CHECKING:
    from ..view import MessageView


class SentenceLength(Kind):
    name = "sentence_length"
    Spec = SentenceLengthSpec
    spec: SentenceLengthSpec

    def __init__(self, rule: Rule, spec: SentenceLengthSpec, build: Build) -> None:
        super().__init__(rule, spec, build)
        self.cache: dict[str, tuple[tuple[int, int, int], ...]] = {}

    def _long(self, text: str) -> tuple[tuple[int, int, int], ...]:
        """(start, end, words) of each sentence of a text over the limit (pure in the text: cached;
        a body is read line by line, since no sentence crosses a line)."""
        got = self.cache.get(text)
        if got is None:
            mx = self.spec.max
            words = T.WORD_RE.findall
            got = tuple((a, b, n) for a, b in T.split_sentences(text) if (n := len(words(text, a, b))) > mx)
            if len(self.cache) > 16384:
                self.cache.clear()
            self.cache[text] = got
        return got

    def hits(self, view: MessageView) -> Iterator[Hit]:
        mx = self.spec.max
        for label, text in view.fields(self.rule.fields):
            if label != "body":
                for a, b, n in self._long(text):
                    yield Hit(label, a, b, slots={"count": n, "max": mx})
                continue
            # the body's prose lines (body_prose_lines: not the greeting, product lines or sign-off)
            for a0, b0 in T.body_prose_lines(text, view.layout):
                for a, b, n in self._long(text[a0:b0]):
                    yield Hit(label, a + a0, b + a0, slots={"count": n, "max": mx})
