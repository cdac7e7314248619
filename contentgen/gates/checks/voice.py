"""Brand voice that needs more than a word list: capitals, emoji, the first name, internal ids and
contractions. What is allowed (acronyms, greetings, id shapes...) is the rules' params."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import ahocorasick
from mypy_extensions import mypyc_attr

from .. import text as T
from ..engine.findings import Hit
from ..engine.model import Rule
from ..engine.phrases import Phrases
from ..engine.plugin import Build, Check, Params
from ..engine.view import MessageView
from .catalog import CatalogIndex, catalog_index
from .voice_models import ShoutingParams, MaxParams, NameUseParams, InternalIdsParams, ContractionsParams

# "(?<![\w@/.])[A-Z][A-Z'’]{3,}(?![\w])", opening with [A-Z] so that a search skips lowercase text
_CAPS = re.compile(r"[A-Z](?<![\w@/.][A-Z])[A-Z'’]{3,}(?![\w])")
_EMOJI = re.compile(
    "[\U0001F1E6-\U0001F1FF\U0001F300-\U0001F5FF\U0001F600-\U0001F64F\U0001F680-\U0001F6FF"
    "\U0001F700-\U0001F77F\U0001F780-\U0001F7FF\U0001F800-\U0001F8FF\U0001F900-\U0001F9FF"
    "\U0001FA00-\U0001FAFF\u2600-\u26FF\u2700-\u27BF\u2B50\u2B55\u2764\u2B06\u2194-\u21AA\u3030\u303D"
    "\u3297\u3299\u24C2\u00A9\u00AE\u203C\u2049\u2122\u2139\u231A\u231B\u2328\u23CF\u23E9-\u23F3\u23F8-\u23FA]"
    "[\uFE0F\u200D\U0001F3FB-\U0001F3FF]*(?:\u200D[^\\s]\uFE0F?)*")
_NOT_EMOJI = {"\u00A9", "\u00AE", "\u2122"}


class Shouting(Check):
    """A word of 4+ letters in capitals, unless a catalog brand name or an allowed acronym."""
    name = "brand.shouting"

    Params = ShoutingParams

    def __init__(self, params: ShoutingParams, build: Build) -> None:
        super().__init__(params, build)
        self.allowed = frozenset(a.upper() for a in params.allowed)
        self.phrases = re.compile("|".join([r"https?://\S+", *params.allowed_phrases]))
        self._by_index: dict[int, tuple[CatalogIndex, frozenset[str]]] = {}
        self.caps = self.needs = build.patterns([_CAPS.pattern])  # a word in capitals, case-sensitive

    def run(self, rule: Rule, view: MessageView) -> Iterator[Hit]:
        idx = catalog_index(view)
        got = self._by_index.get(id(idx))
        if got is None or got[0] is not idx:
            if len(self._by_index) > 4096:
                self._by_index.clear()
            got = self._by_index[id(idx)] = (idx, self.allowed | idx.brand_caps)
        allowed = got[1]
        for label, text in view.fields_with(self.caps, rule.fields):
            for m in _CAPS.finditer(text):
                w = m.group().rstrip("'’S") if m.group().endswith(("'S", "’S")) else m.group()
                if w.upper() in allowed or any(a <= m.start() and m.end() <= b for a, b in view.protected(label)):
                    continue
                if any(p.start() <= m.start() and m.end() <= p.end() for p in self.phrases.finditer(text)):
                    continue  # a required phrase ("Reply STOP to opt out") or a link
                yield Hit(label, m.start(), m.end())


#: what every emoji opens with (its first character class), for the prefilter
_EMOJI_START = _EMOJI.pattern[:_EMOJI.pattern.index("]") + 1]


class Emoji(Check):
    """At most ``max`` emoji in the fields the rule reads."""
    name = "brand.emoji"

    Params = MaxParams

    def __init__(self, params: MaxParams, build: Build) -> None:
        super().__init__(params, build)
        self.needs = build.patterns([_EMOJI_START])

    def run(self, rule: Rule, view: MessageView) -> Iterator[Hit]:
        max_n = self.params.max
        found = [(label, m) for label, text in view.fields(rule.fields) if not text.isascii()  # emoji are not ASCII
                 for m in _EMOJI.finditer(text) if m.group() not in _NOT_EMOJI]
        if len(found) > max_n:
            label, m = found[max_n]
            yield Hit(label, m.start(), m.end(), slots={"count": len(found), "max": max_n})


class EmojiSubject(Check):
    """No emoji in the subject."""
    name = "brand.emoji_subject"

    def __init__(self, params: Params, build: Build) -> None:
        super().__init__(params, build)
        self.needs = build.patterns([_EMOJI_START])

    def run(self, rule: Rule, view: MessageView) -> Iterator[Hit]:
        for m in _EMOJI.finditer(view.msg.subject):
            if m.group() not in _NOT_EMOJI:
                yield Hit("subject", m.start(), m.end())


#: "Welcome to AthenaPlus, !": a comma straight before the end of a sentence, where a name was
_EMPTY_SLOT = re.compile(r",[ \t]*[!?](?![\w!?])|,[ \t]*\.(?![\w.])|\A[ \t]*,")


@mypyc_attr(native_class=False)
class _Span(tuple[int, int]):
    """(start, end) with a match's start()/end()."""

    def start(self) -> int:
        return self[0]

    def end(self) -> int:
        return self[1]


class NameUse(Check):
    """First name at most ``max`` times; no empty-name greeting, no leftover placeholder, no other name."""
    name = "brand.name_use"

    Params = NameUseParams

    def __init__(self, params: NameUseParams, build: Build) -> None:
        super().__init__(params, build)
        self.empty = re.compile(r"^[ \t]*(?:" + "|".join(params.empty_greetings) + r")[,!:]", re.I | re.M)
        self.greeting = re.compile(r"^\s*(?:" + "|".join(params.name_greetings) + r")\s+([^\n,!:]{1,60})[,!:]", re.I)
        self.placeholder = re.compile("|".join(params.placeholders), re.I)
        self.empties: dict[str, tuple[tuple[int, int, str], ...]] = {}
        self._ok: dict[str, frozenset[str]] = {}

    def _empty_names(self, text: str) -> tuple[tuple[int, int, str], ...]:
        """Empty-name greetings, empty name slots and unfilled placeholders in a text (pure: cached)."""
        got = self.empties.get(text)
        if got is not None:
            return got
        out = []
        if "," in text or "!" in text or ":" in text:  # a greeting ends with one of them
            out += [(m.start(), m.end(), "a greeting with an empty name") for m in self.empty.finditer(text)]
            if "," in text:
                out += [(m.start(), m.end(), "an empty name slot") for m in _EMPTY_SLOT.finditer(text)]
        if "{" in text or "[" in text or "<" in text:  # every placeholder opens with one of them
            out += [(m.start(), m.end(), "an unfilled name placeholder") for m in self.placeholder.finditer(text)]
        got = tuple(out)
        if len(self.empties) > 8192:
            self.empties.clear()
        self.empties[text] = got
        return got

    def run(self, rule: Rule, view: MessageView) -> Iterator[Hit]:
        name = view.ctx.member.first_name.strip()
        max_n = self.params.max
        fields = view.fields(rule.fields)
        empties = self.empties
        for label, text in fields:
            got = empties.get(text)
            for a, b, reason in (got if got is not None else self._empty_names(text)):
                yield Hit(label, a, b, slots={"reason": reason})
        body = view.msg.body
        g = self.greeting.match(body)
        if g:
            greeted = g.group(1).strip()
            program = view.ctx.brand.program
            ok = self._ok.get(program)
            if ok is None:
                ok = self._ok[program] = frozenset(x.replace("{program}", program).lower()
                                                   for x in self.params.generic_greetees)
            # a name is capitalized: "Hello and welcome," greets no one in particular, "Hi Maya," names Maya
            if (greeted[:1].isupper() and greeted.lower() not in ok
                    and (not name or greeted.lower() != name.lower())):
                yield Hit("body", g.start(1), g.end(1),
                          slots={"reason": f"the greeting names '{greeted}', not the member's first name"})
        if not name:
            return
        joined = view.lower(rule.fields)
        if name.isascii() and T.safe_lower_ok(joined) and joined.count(name.lower()) <= max_n:
            return  # the name (a whole word, any case) cannot occur more often than its lowercase does
        rx = _name_rx(name)
        found = [(label, m) for label, text in fields for m in _name_spans(text, name)]
        if len(found) > max_n:  # rare: don't count the name where it is part of a product name ("Aurora Rain Jacket")
            texts = dict(fields)
            names = [p.name for p in view.ctx.catalog.values() if rx.search(p.name)]
            if names:
                def in_product(label: str, m: _Span) -> bool:
                    text = texts[label]
                    for pname in names:
                        start = text.find(pname, max(0, m.start() - len(pname)))
                        while start != -1 and start <= m.start():
                            if start <= m.start() and m.end() <= start + len(pname):
                                return True
                            start = text.find(pname, start + 1)
                    return False

                found = [(label, m) for label, m in found if not in_product(label, m)]
        if len(found) > max_n:
            label, m = found[max_n]
            yield Hit(label, m.start(), m.end(),
                      slots={"reason": f"the first name appears {len(found)} times (at most {max_n})"})


@lru_cache(maxsize=4096)
def _name_rx(name: str) -> re.Pattern[str]:
    return T.word_re(name)


@lru_cache(maxsize=8192)
def _name_spans(text: str, name: str) -> tuple[_Span, ...]:
    """Where the first name occurs in a text (pure in both: cached, subjects and greetings repeat)."""
    if not T.may_contain_ci(text, T.lower(text), name.lower()):
        return ()
    # a capitalized name counts where it is capitalized: "hope" and "sky" in prose are words
    cap = name[:1].isupper()
    return tuple(_Span(m.span()) for m in _name_rx(name).finditer(text) if not cap or text[m.start()].isupper())


_URL_SPAN = re.compile(r"(?:https?://|www\.)\S+", re.I)


@lru_cache(maxsize=1024)
def _ids_automaton(ids: frozenset[str]) -> Any:
    """An Aho-Corasick automaton of the ids: one pass finds every id that occurs; None without ids."""
    if not ids:
        return None
    ac = ahocorasick.Automaton()
    for i in ids:
        ac.add_word(i, i)
    ac.make_automaton()
    return ac


class InternalIds(Check):
    """SKUs and internal ids (the context's own product/offer ids, and id-shaped tokens)."""
    name = "brand.internal_ids"

    Params = InternalIdsParams

    def __init__(self, params: InternalIdsParams, build: Build) -> None:
        super().__init__(params, build)
        self.ids_re = Phrases(build, params.id_patterns, re.I, head="", tail="")
        assert self.ids_re.alt is not None
        self.full = self.ids_re.alt.full()
        self.generic: dict[str, tuple[tuple[tuple[int, int], ...], list[tuple[int, int]]]] = {}
        self.by_ctx: dict[tuple[int, int], tuple[Any, Any, frozenset[str]]] = {}

    def _generic_ids(self, view: MessageView, text: str) -> tuple[tuple[tuple[int, int], ...], list[tuple[int, int]]]:
        """Id-shaped tokens outside links, and the links' spans, in a text (pure: cached per text)."""
        got = self.generic.get(text)
        if got is None:
            urls = [u.span() for u in _URL_SPAN.finditer(text)] if ("://" in text or "www." in text) else []
            spans = tuple(m.span() for m in self.ids_re.finditer(view, text)
                          if not (urls and any(a <= m.start() and m.end() <= b for a, b in urls)))
            got = (spans, urls)
            if len(self.generic) > 8192:
                self.generic.clear()
            self.generic[text] = got
        return got

    def run(self, rule: Rule, view: MessageView) -> Iterator[Hit]:
        ctx = view.ctx
        # per catalog and offer list (the run's own, one each: every member's context shares them); the
        # member's recommended ids are nearly always catalog ids already
        key = (id(ctx.catalog), id(ctx.offers))
        hit = self.by_ctx.get(key)
        if hit is None or hit[0] is not ctx.catalog or hit[1] is not ctx.offers:
            base = frozenset(i for i in set(ctx.catalog) | {o.offer_id for o in ctx.offers} if len(i) >= 2)
            if len(self.by_ctx) > 4096:
                self.by_ctx.clear()
            hit = self.by_ctx[key] = (ctx.catalog, ctx.offers, base)  # holds both: their ids are not reused
        base = hit[2]
        extra = [r.product_id for r in ctx.recommendations if len(r.product_id) >= 2 and r.product_id not in base]
        ids_ac = _ids_automaton(base | frozenset(extra) if extra else base)
        fields = view.fields(rule.fields)
        joined = "\x00".join(t for _, t in fields)
        ids = sorted({i for _, i in ids_ac.iter(joined)}) if ids_ac is not None else []
        for label, text in fields:
            spans, urls = self._generic_ids(view, text)
            for a, b in spans:
                if not any(x <= a and b <= y for x, y in view.protected(label)):
                    yield Hit(label, a, b)
            for i in ids:
                if i in text:
                    for m in T.word_re(i).finditer(text):
                        if any(a <= m.start() and m.end() <= b for a, b in view.protected(label)) or \
                                self.full.fullmatch(m.group()):
                            continue
                        if urls and any(a <= m.start() and m.end() <= b for a, b in urls):
                            continue
                        if m.group() != i:  # case-sensitive: "o1" in prose is not the offer id "O1"
                            continue
                        yield Hit(label, m.start(), m.end())


class Contractions(Check):
    """A long message with no contraction at all."""
    name = "brand.contractions"

    Params = ContractionsParams

    def __init__(self, params: ContractionsParams, build: Build) -> None:
        super().__init__(params, build)
        # written to open with the apostrophe, so that a search jumps from one apostrophe to the next
        self.contraction = re.compile(r"['’](?<=\w['’])(?:" + "|".join(params.suffixes) + r")\b", re.I)

    def run(self, rule: Rule, view: MessageView) -> Iterator[Hit]:
        fields = view.fields(rule.fields)
        if any(("'" in text or "’" in text) and self.contraction.search(text) for _, text in fields):
            return  # (every contraction holds an apostrophe)
        words = 0
        for label, text in fields:
            words += _prose_words(text, view.layout) if label == "body" else T.count_words(text)
        if words > self.params.min_words:
            yield Hit("body", 0, 0, excerpt="", slots={"count": words})


@lru_cache(maxsize=4096)
def _prose_words(body: str, layout: T.Layout) -> int:
    return sum(len(T.WORD_RE.findall(body, a, b)) for a, b in T.body_prose_lines(body, layout))
