"""The accept list: phrases the gates accept wherever they occur, across rules (Vale's
``accept.txt``), each with an owner, a reason and an expiry date.

``accept.yaml`` in a rules folder::

    accept:
      - phrase: Best Buy Bundle          # literal text, case-insensitive, as whole words
        rules: [brand.*, facts.unknown-product]   # optional (default: every rule); globs allowed
        owner: dana@athena.example
        reason: a product line name legal approved (LEG-112)
        expires: 2027-06-30               # after this send date the entry no longer applies

(``pattern:`` instead of ``phrase:`` takes a regex.) A finding whose span lies inside an
occurrence of an entry's phrase, in the same field, is dropped for the rules the entry names.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from pydantic import Field, model_validator

from ...models import Finding
from .model import Strict

if TYPE_CHECKING:
    from .view import MessageView


class AcceptEntry(Strict):
    phrase: str | None = None
    pattern: str | None = None
    rules: tuple[str, ...] = ("*",)
    owner: str = Field(min_length=1)
    reason: str = Field(min_length=1)
    expires: dt.date

    @model_validator(mode="after")
    def _one(self) -> AcceptEntry:
        if (self.phrase is None) == (self.pattern is None):
            raise ValueError("give exactly one of 'phrase' (literal text) or 'pattern' (a regex)")
        return self

    def source(self) -> str:
        if self.pattern is not None:
            return self.pattern
        words = (self.phrase or "").split()
        return r"(?<![\w])" + r"\s+".join(re.escape(w) for w in words) + r"(?![\w])"


class Accepted:
    """One compiled entry, with where it came from."""

    __slots__ = ("entry", "regex", "file", "line", "_rules")

    def __init__(self, entry: AcceptEntry, file: str, line: int | None) -> None:
        self.entry = entry
        self.regex = re.compile(entry.source(), re.I | re.M)
        self.file, self.line = file, line
        self._rules: dict[str, bool] = {}

    def covers_rule(self, rule_id: str) -> bool:
        got = self._rules.get(rule_id)
        if got is None:
            got = self._rules[rule_id] = any(fnmatch.fnmatchcase(rule_id, p) for p in self.entry.rules)
        return got

    def live(self, send_date: dt.date) -> bool:
        return send_date <= self.entry.expires


class AcceptList:
    def __init__(self, entries: Sequence[Accepted]) -> None:
        self.entries = tuple(entries)
        self._spans: dict[tuple[int, str], tuple[tuple[int, int], ...]] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def _occurrences(self, i: int, text: str) -> tuple[tuple[int, int], ...]:
        key = (i, text)
        got = self._spans.get(key)
        if got is None:
            got = tuple(m.span() for m in self.entries[i].regex.finditer(text) if m.end() > m.start())
            if len(self._spans) > 8192:
                self._spans.clear()
            self._spans[key] = got
        return got

    def filter(self, findings: Iterable[Finding], view: MessageView) -> list[Finding]:
        """The findings no live entry accepts."""
        found = list(findings)
        if not self.entries or not found:
            return found
        send = view.ctx.send_date
        live = [i for i, e in enumerate(self.entries) if e.live(send)]
        if not live:
            return found
        out = []
        for f in found:
            span = f.span
            if span is None or span[0] == span[1] or not f.field:
                out.append(f)
                continue
            a, b = span
            text = None
            accepted = False
            for i in live:
                if not self.entries[i].covers_rule(f.rule_id):
                    continue
                if text is None:
                    text = view.text(f.field)
                if any(s <= a and b <= e for s, e in self._occurrences(i, text)):
                    accepted = True
                    break
            if not accepted:
                out.append(f)
        return out
