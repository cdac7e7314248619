"""``kind: required``: a pattern that must occur (anywhere, at the start or at the end) in each
field, or in one of them (``scope: message``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..findings import Hit
from ..model import Rule
from ..plugin import Build, Kind
from ..matcher import line_local
from ..slots import BrandKey, check_slots, expand, has_slots
from ..phrases import rule_flags
from .required_models import RequiredSpec

if TYPE_CHECKING:
    from ..view import MessageView


class Required(Kind):
    name = "required"
    Spec = RequiredSpec
    spec: RequiredSpec

    def __init__(self, rule: Rule, spec: RequiredSpec, build: Build) -> None:
        super().__init__(rule, spec, build)
        check_slots(spec.pattern)
        self.flags = rule_flags(rule)
        self.templated = has_slots(spec.pattern)
        from ....config import Brand

        self.regex = re.compile(expand(spec.pattern, Brand()) if self.templated else spec.pattern, self.flags)
        # the prefilter can tell that the pattern is absent (not where a match starts: "start" is
        # judged on the text with its leading space stripped)
        self.pid = build.table.add(spec.pattern, self.flags) if spec.position != "start" else None
        self._by_brand: dict[BrandKey, re.Pattern[str]] = {}
        self.seen: dict[object, bool] = {}
        self.results: dict[object, tuple[Hit, ...]] = {}
        #: no match can cross or touch a line break: "end" is judged on the last line alone (its answer
        #: cached: the sign-off repeats from message to message)
        self.local = spec.position == "end" and line_local(spec.pattern, self.flags)

    def _rx(self, view: MessageView) -> re.Pattern[str]:
        if not self.templated:
            return self.regex
        key = view.bkey
        rx = self._by_brand.get(key)
        if rx is None:
            rx = self._by_brand[key] = re.compile(expand(self.spec.pattern, view.ctx.brand), self.flags)
        return rx

    def _present(self, rx: re.Pattern[str], text: str, view: MessageView) -> bool:
        key = (rx, text)  # pure in the pattern and the text: footers and links repeat
        got = self.seen.get(key)
        if got is not None:
            return got
        if self.pid is not None:
            h = view.hits(text)
            if h is not None and self.pid not in h:
                return False
        if self.local and "\n" in text:
            tail = text.rstrip()
            return self._present(rx, tail[tail.rfind("\n") + 1:], view) if tail else False
        pos = self.spec.position
        if pos == "end":
            got = any(m.end() == len(text.rstrip()) for m in rx.finditer(text))
        elif pos == "start":
            got = rx.match(text.lstrip()) is not None
        else:
            got = rx.search(text) is not None
        if len(self.seen) > 4096:
            self.seen.clear()
        self.seen[key] = got
        return got

    def hits(self, view: MessageView) -> Iterator[Hit] | tuple[Hit, ...]:
        rx = self._rx(view)
        fields = view.fields(self.rule.fields)
        key = (rx, tuple(fields))  # pure in the pattern and the fields' texts: footers and links repeat
        got = self.results.get(key)
        if got is None:
            got = tuple(self._hits(rx, fields, view))
            if len(self.results) > 4096:
                self.results.clear()
            self.results[key] = got
        return got

    def _hits(self, rx: re.Pattern[str], fields: list[tuple[str, str]], view: MessageView) -> Iterator[Hit]:
        rule, spec = self.rule, self.spec
        if spec.scope == "message":
            if not any(self._present(rx, t, view) for _, t in fields):
                label = fields[-1][0] if fields else rule.fields[-1]
                yield Hit(label, 0, 0, excerpt="")
            return
        for label, text in fields:
            if not self._present(rx, text, view):
                tail = text.rstrip()
                a = tail.rfind("\n") + 1 if spec.position == "end" else 0
                yield Hit(label, a, len(tail), excerpt=tail[a:] if spec.position == "end" else "")
