"""Phrase lists of rules and checks: alternations (per brand when they name it), exceptions
and protected spans."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from .matcher import Alternation
from .plugin import Build
from .slots import BrandKey, check_slots, expand, has_slots

if TYPE_CHECKING:
    from .model import Rule
    from .view import MessageView

WORD_HEAD, WORD_TAIL = r"(?<![\w])(?:", r")(?![\w])"


def rule_flags(rule: Rule) -> int:
    return re.MULTILINE | (re.IGNORECASE if rule.ignorecase else 0)


class Phrases:
    """A rule's items as one alternation run on prefilter candidates; items naming the brand
    (``{{program}}``...) are compiled per campaign brand and are not prefiltered."""

    def __init__(self, build: Build, items: Sequence[str], flags: int, head: str = WORD_HEAD,
                 tail: str = WORD_TAIL) -> None:
        self.items = tuple(items)
        self.flags, self.head, self.tail = flags, head, tail
        for it in self.items:
            check_slots(it)
        self.templated = any(has_slots(it) for it in self.items)
        self._by_brand: dict[BrandKey, Alternation] = {}
        if self.templated:
            from ...config import Brand

            # numbered with their slots: each brand's prefilter fills them in (see RuleSet.matcher_for)
            template = Alternation(build.table, self.items, flags, head=head, tail=tail)
            Alternation(None, [expand(it, Brand()) for it in self.items], flags, head=head, tail=tail).full()
            self.alt: Alternation | None = None
            self._ids = template.ids
        else:
            self.alt = build.alternation(self.items, flags, head=head, tail=tail)
            self._ids = self.alt.ids
        assert self._ids is not None
        self.ids: frozenset[int] | None = frozenset(self._ids)

    def get(self, view: MessageView) -> Alternation:
        if self.alt is not None:
            return self.alt
        key = view.bkey
        alt = self._by_brand.get(key)
        if alt is None:
            alt = self._by_brand[key] = Alternation(None, [expand(it, view.ctx.brand) for it in self.items],
                                                    self.flags, head=self.head, tail=self.tail, ids=self._ids)
        return alt

    def finditer(self, view: MessageView, text: str) -> Iterator[re.Match[str]]:
        """Matches in a text (only the prefilter's candidate items are run)."""
        return self.get(view).finditer(text, view.hits(text))

    def search(self, view: MessageView, text: str) -> re.Match[str] | None:
        return self.get(view).search(text, view.hits(text))

    def may(self, view: MessageView, text: str) -> bool:
        """False only when no item can match in the text."""
        if self.ids is None:
            return True
        h = view.hits(text)
        return h is None or not h.isdisjoint(self.ids)


class Exceptions:
    """Phrases a match is allowed inside (``exceptions:``), looked for around each match."""

    def __init__(self, build: Build, items: Sequence[str], flags: int) -> None:
        for it in items:
            check_slots(it)
        self.items = tuple(items)
        self.flags = flags
        self._by_brand: dict[BrandKey, tuple[re.Pattern[str], ...]] = {}
        self.templated = any(has_slots(it) for it in items)
        self.plain = () if self.templated else tuple(re.compile(e, flags) for e in items)
        if self.templated:
            from ...config import Brand

            for it in items:
                re.compile(expand(it, Brand()), flags)

    def regexes(self, view: MessageView | None) -> tuple[re.Pattern[str], ...]:
        if not self.templated or view is None:
            return self.plain
        key = view.bkey
        got = self._by_brand.get(key)
        if got is None:
            got = self._by_brand[key] = tuple(re.compile(expand(e, view.ctx.brand), self.flags) for e in self.items)
        return got

    def covers(self, text: str, a: int, b: int, view: MessageView | None = None) -> bool:
        """Whether an exception's match around text[a:b] holds it."""
        if not self.items:
            return False
        lo, hi = max(0, a - 60), min(len(text), b + 60)
        for rx in self.regexes(view):
            for m in rx.finditer(text, lo, hi):
                if m.start() <= a and b <= m.end():
                    return True
        return False


def inside(spans: Sequence[tuple[int, int]], a: int, b: int) -> bool:
    return any(s <= a and b <= e for s, e in spans)


def matches(alt: Alternation, exc: Exceptions, rule: Rule, view: MessageView, label: str,
            text: str) -> Iterator[re.Match[str]]:
    """Matches in a field: not empty, not inside an exception, not inside a protected span (brand rules)."""
    protect = rule.protects
    for m in alt.finditer(text, view.hits(text)):
        a, b = m.span()
        if a == b or exc.covers(text, a, b, view):
            continue
        if protect and inside(view.protected(label), a, b):
            continue
        yield m
