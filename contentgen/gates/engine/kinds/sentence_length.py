"""``kind: sentence_length``: no sentence longer than ``max`` words (in a body, only the prose
lines count: not the greeting, the product lines or the sign-off)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ... import text as T
from ..findings import Hit
from ..model import Rule, Strict
from ..plugin import Build, Kind
from ..registry import kind

if TYPE_CHECKING:
    from ..view import MessageView


class Spec(Strict):
    max: int


@kind("sentence_length")
class SentenceLength(Kind):
    Spec = Spec

    def __init__(self, rule: Rule, spec: Spec, build: Build) -> None:
        super().__init__(rule, spec, build)
        self.cache: dict[object, tuple[tuple[int, int, int], ...]] = {}

    def hits(self, view: MessageView) -> Iterator[Hit]:
        mx = self.spec.max
        cache = self.cache
        for label, text in view.fields(self.rule.fields):
            body = label == "body"
            key = (view.layout, text) if body else text
            long_ = cache.get(key)
            if long_ is None:
                # lines split independently, so a line's sentences are the whole text's sentences in it
                sents = T.split_sentences(text)
                if body:
                    sents = T.spans_within(sents, T.body_prose_lines(text, view.layout))
                words = T.WORD_RE.findall
                long_ = tuple((a, b, n) for a, b in sents if (n := len(words(text, a, b))) > mx)
                if len(cache) > 8192:
                    cache.clear()
                cache[key] = long_
            for a, b, n in long_:
                yield Hit(label, a, b, slots={"count": n, "max": mx})
