"""``kind: existence``: any of a list of words or phrases (regexes, matched as whole words)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..findings import Hit
from ..model import Rule
from ..plugin import Build, Kind
from ..matcher import line_local
from ..phrases import Exceptions, Phrases, inside, rule_flags
from .existence_models import ExistenceSpec


if TYPE_CHECKING:
    from ..view import MessageView


class Spans:
    """A word-list rule's spans in a text (not empty, not excepted), before protected spans are
    taken out: pure in the rule, the brand and the text, so cached per text; when no item or
    exception can reach across a line break, per line (greetings, product lines and sign-offs repeat)."""

    def __init__(self, phrases: Phrases, exc: Exceptions) -> None:
        self.phrases, self.exc = phrases, exc
        self.cache: dict[object, tuple[tuple[int, int], ...]] = {}
        self.local = all(line_local(it, phrases.flags) for it in phrases.items) and all(
            line_local(e, exc.flags) for e in exc.items)

    def __call__(self, view: MessageView, text: str) -> tuple[tuple[int, int], ...]:
        if not self.local or "\n" not in text:
            return self._spans(view, text, view.hits(text))
        hits = view.hits(text)  # (a superset for each line: the field's candidates)
        out: list[tuple[int, int]] = []
        pos = 0
        for line in text.split("\n"):
            if line:
                got = self._spans(view, line, hits)
                if got:
                    out.extend((a + pos, b + pos) for a, b in got)
            pos += len(line) + 1
        return tuple(out)

    def _spans(self, view: MessageView, text: str, hits: frozenset[int] | None) -> tuple[tuple[int, int], ...]:
        """``hits``: the prefilter's candidates for the text (or for the field it is a line of)."""
        key: object = text if not (self.phrases.templated or self.exc.templated) else (view.bkey,
                                                                                        text)
        got = self.cache.get(key)
        if got is None:
            alt = self.phrases.get(view)
            exc = self.exc
            got = tuple((a, b) for a, b in (m.span() for m in alt.finditer(text, hits))
                        if a != b and not exc.covers(text, a, b, view))
            if len(self.cache) > 16384:
                self.cache.clear()
            self.cache[key] = got
        return got


_CAP_WORD = re.compile(r"\b[A-Z][\w'’-]*")


def member_gave(view: MessageView) -> frozenset[str]:
    """Lowercase words of what the member told us: stated preferences and stated-preference evidence."""
    got: frozenset[str] | None = view.cache.get("member_gave")
    if got is None:
        texts = [view.ctx.member.stated_preferences] + [e.detail for r in view.ctx.recommendations
                                                         for e in r.evidence if e.source == "stated_preference"]
        got = view.cache["member_gave"] = frozenset(w.lower() for t in texts for w in re.findall(r"[\w'’-]+", t))
    return got


def _caps_protected(view: MessageView, label: str, text: str, a: int, b: int) -> bool:
    """Whether every capitalized word of text[a:b] lies in a catalog name or claim: "in New Harbor"
    of "Tuck in New Harbor Vanilla Paste" is a preposition and the start of a product's name."""
    caps = [(m.start(), m.end()) for m in _CAP_WORD.finditer(text, a, b)]
    if not caps:
        return False
    spans = view.protected(label)
    return all(inside(spans, s, e) for s, e in caps)


def _gave(view: MessageView, text: str, a: int, b: int) -> bool:
    caps = [w.lower() for w in _CAP_WORD.findall(text, a, b)]
    return bool(caps) and member_gave(view).issuperset(caps)


#: a first name as people write one: one or two words of letters (hyphens, apostrophes inside)
_A_NAME = re.compile(r"[^\W\d_][\w'’-]*(?: [^\W\d_][\w'’-]*)?")


def member_name_spans(view: MessageView, text: str) -> tuple[tuple[int, int], ...]:
    """Where the text writes the member's first name, as given (case and all, a whole word): the
    name is theirs to have (the brief allows it in every message), so a rule's match that is
    nothing but the name ("Hi Christian,", "Hi Faith,") says nothing about them."""
    first = view.ctx.member.first_name.strip()
    if not first or first not in text or not _A_NAME.fullmatch(first):
        return ()
    cache: dict[str, tuple[tuple[int, int], ...]] = view.cache.setdefault("member_name_spans", {})
    got = cache.get(text)
    if got is None:
        got = cache[text] = tuple(m.span() for m in re.finditer(r"(?<![\w])" + re.escape(first) + r"(?![\w])", text))
    return got


def field_hits(rule: Rule, spans: Spans, view: MessageView, unless_gave: bool = False) -> Iterator[Hit]:
    protect = rule.protects
    # only the fields where one of the items may match: in another, every item's candidate list is
    # empty and it has no span (what the prefilter rules out, ``re`` would not find either)
    for label, text in view.fields_with(spans.phrases.ids, rule.fields):
        for a, b in spans(view, text):
            if protect and (inside(view.protected(label), a, b) or _caps_protected(view, label, text, a, b)):
                continue
            if unless_gave and _gave(view, text, a, b):
                continue
            if inside(member_name_spans(view, text), a, b):
                continue
            yield Hit(label, a, b)


class Existence(Kind):
    name = "existence"
    Spec = ExistenceSpec
    spec: ExistenceSpec

    def __init__(self, rule: Rule, spec: ExistenceSpec, build: Build) -> None:
        super().__init__(rule, spec, build)
        self.phrases = Phrases(build, spec.tokens, rule_flags(rule))
        self.spans = Spans(self.phrases, Exceptions(build, spec.exceptions, rule_flags(rule)))
        self.needs = self.phrases.ids

    def hits(self, view: MessageView) -> Iterator[Hit]:
        return field_hits(self.rule, self.spans, view, self.spec.unless_member_gave)
