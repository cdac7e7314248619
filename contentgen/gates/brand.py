"""Brand-voice checks that need more than a word list (brand_rules/*.yaml name them)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import ahocorasick

from . import text as T
from .casefold import fold, lower
from .facts import behaviour_date, catalog_index
from .rules import DIGITS, Hit, MessageView, Rule, register_check

# "(?<![\w@/.])[A-Z][A-Z'’]{3,}(?![\w])", opening with [A-Z] so that a search skips lowercase text
_CAPS = re.compile(r"[A-Z](?<![\w@/.][A-Z])[A-Z'’]{3,}(?![\w])")
_EMOJI = re.compile(
    "[\U0001F1E6-\U0001F1FF\U0001F300-\U0001F5FF\U0001F600-\U0001F64F\U0001F680-\U0001F6FF"
    "\U0001F700-\U0001F77F\U0001F780-\U0001F7FF\U0001F800-\U0001F8FF\U0001F900-\U0001F9FF"
    "\U0001FA00-\U0001FAFF\u2600-\u26FF\u2700-\u27BF\u2B50\u2B55\u2764\u2B06\u2194-\u21AA\u3030\u303D"
    "\u3297\u3299\u24C2\u00A9\u00AE\u203C\u2049\u2122\u2139\u231A\u231B\u2328\u23CF\u23E9-\u23F3\u23F8-\u23FA]"
    "[\uFE0F\u200D\U0001F3FB-\U0001F3FF]*(?:\u200D[^\\s]\uFE0F?)*")
_NOT_EMOJI = {"\u00A9", "\u00AE", "\u2122"}


@register_check("brand.shouting")
def check_shouting(rule: Rule, view: MessageView) -> Iterator[Hit]:
    """A word of 4+ letters in capitals, unless a catalog brand name or an allowed acronym."""
    idx = catalog_index(view.ctx.catalog)
    key = (rule.id, id(idx))
    got = _SHOUT_CACHE.get(key)
    if got is None or got[0] is not idx:
        if len(_SHOUT_CACHE) > 4096:
            _SHOUT_CACHE.clear()
        got = _SHOUT_CACHE[key] = (idx, {a.upper() for a in rule.params.get("allowed", ())} | set(idx.brand_caps),
                                   _phrases_rx(tuple(rule.params.get("allowed_phrases", ()))))
    _, allowed, phrases = got
    for label, text in view.fields(rule.fields):
        for m in _CAPS.finditer(text):
            w = m.group().rstrip("'’S") if m.group().endswith(("'S", "’S")) else m.group()
            if w.upper() in allowed or any(a <= m.start() and m.end() <= b for a, b in view.protected(label)):
                continue
            if phrases is not None and any(p.start() <= m.start() and m.end() <= p.end()
                                           for p in phrases.finditer(text)):
                continue  # a required phrase ("Reply STOP to opt out") or a link
            yield Hit(label, m.start(), m.end())


_SHOUT_CACHE: dict[tuple[str, int], tuple[object, set[str], re.Pattern[str] | None]] = {}


@lru_cache(maxsize=64)
def _phrases_rx(phrases: tuple[str, ...]) -> re.Pattern[str] | None:
    """Spans where capitals are expected: the given phrases, and links (paths may hold capitals)."""
    return re.compile("|".join([r"https?://\S+", *phrases]))


_URL_SPAN = fold(re.compile(r"(?:https?://|www\.)\S+", re.I))


@register_check("brand.emoji")
def check_emoji(rule: Rule, view: MessageView) -> Iterator[Hit]:
    max_n = int(rule.params.get("max", 1))
    fields = view.fields(rule.fields)
    found = [(label, m) for label, text in fields if not text.isascii()  # every emoji is outside ASCII
             for m in _EMOJI.finditer(text) if m.group() not in _NOT_EMOJI]
    if len(found) > max_n:
        label, m = found[max_n]
        yield Hit(label, m.start(), m.end(), slots={"count": len(found), "max": max_n})


@register_check("brand.emoji_subject")
def check_emoji_subject(rule: Rule, view: MessageView) -> Iterator[Hit]:
    for m in _EMOJI.finditer(view.msg.subject):
        if m.group() not in _NOT_EMOJI:
            yield Hit("subject", m.start(), m.end())


# an empty name slot: "Hi ," / "Dear," ("Hello," and "Hi!" are complete greetings without a name)
_GREETING_EMPTY = fold(re.compile(r"^[ \t]*(?:(?:hi|hello|hey|greetings)[ \t]+|dear[ \t]*)[,!:]", re.I | re.M))
_GREETING_NAME = re.compile(r"^\s*(?:hi|hello|hey|dear)\s+([^\n,!:]{1,60})[,!:]", re.I)
#: "Welcome to AthenaPlus, !": a comma straight before the end of a sentence, where a name was
_EMPTY_SLOT = re.compile(r",[ \t]*[!?](?![\w!?])|,[ \t]*\.(?![\w.])|\A[ \t]*,")
_PLACEHOLDER = fold(re.compile(r"\{\{?\s*(?:first_?name|name|member[^}]*)\s*\}?\}|\[(?:first ?name|name)\]|<first_?name>",
                          re.I))


@register_check("brand.name_use")
def check_name_use(rule: Rule, view: MessageView) -> Iterator[Hit]:
    """First name at most ``max`` times; no empty-name greeting, no leftover placeholder, no other name."""
    name = view.ctx.member.first_name.strip()
    max_n = int(rule.params.get("max", 2))
    fields = view.fields(rule.fields)
    for label, text in fields:
        for a, b, reason in _empty_names(text):
            yield Hit(label, a, b, slots={"reason": reason})
    body = view.msg.body
    g = _GREETING_NAME.match(body)
    if g:
        greeted = g.group(1).strip()
        ok = {"there", "friend", "friends", "everyone", "all", "again", "member", "athenaplus member",
              "folks", "team", "you"}
        if greeted.lower() not in ok and (not name or greeted.lower() != name.lower()):
            yield Hit("body", g.start(1), g.end(1),
                      slots={"reason": f"the greeting names '{greeted}', not the member's first name"})
    if not name:
        return
    rx = _name_rx(name)
    found = [(label, m) for label, text in fields for m in _name_spans(text, name)]
    if len(found) > max_n:  # rare: don't count the name where it is part of a product name ("Aurora Rain Jacket")
        texts = dict(fields)
        names = [p.name for p in view.ctx.catalog.values() if rx.search(p.name)]
        if names:
            def in_product(label: str, m: re.Match) -> bool:
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
def _name_rx(name: str) -> Any:
    return fold(T.word_re(name))


class _Span(tuple):  # type: ignore[type-arg]
    """(start, end) with a match's start()/end() (what check_name_use reads)."""

    def start(self) -> int:
        return self[0]  # type: ignore[no-any-return]

    def end(self) -> int:
        return self[1]  # type: ignore[no-any-return]


@lru_cache(maxsize=8192)
def _name_spans(text: str, name: str) -> tuple[_Span, ...]:
    """Where the first name occurs in a text (pure in both: cached, subjects and greetings repeat)."""
    if not T.may_contain_ci(text, lower(text), name.lower()):
        return ()
    # a capitalized name counts where it is capitalized: "hope" and "sky" in prose are words
    cap = name[:1].isupper()
    return tuple(_Span(m.span()) for m in _name_rx(name).finditer(text) if not cap or text[m.start()].isupper())


@lru_cache(maxsize=8192)
def _empty_names(text: str) -> tuple[tuple[int, int, str], ...]:
    """Empty-name greetings, empty name slots and unfilled placeholders in a text (pure: cached)."""
    out = []
    if "," in text or "!" in text or ":" in text:  # a greeting ends with one of them
        out += [(m.start(), m.end(), "a greeting with an empty name") for m in _GREETING_EMPTY.finditer(text)]
        if "," in text:
            out += [(m.start(), m.end(), "an empty name slot") for m in _EMPTY_SLOT.finditer(text)]
    if "{" in text or "[" in text or "<" in text:  # every placeholder opens with one of them
        out += [(m.start(), m.end(), "an unfilled name placeholder") for m in _PLACEHOLDER.finditer(text)]
    return tuple(out)


@register_check("brand.internal_ids")
def check_internal_ids(rule: Rule, view: MessageView) -> Iterator[Hit]:
    """SKUs and internal ids (the context's own product/offer ids, and id-shaped tokens)."""
    ctx = view.ctx
    hit = _IDS_CACHE.get(id(ctx))
    if hit is not None and hit[0] is ctx:
        ids_ac = hit[1]
    else:
        all_ids = set(ctx.catalog) | {o.offer_id for o in ctx.offers} | {r.product_id for r in ctx.recommendations}
        ids_ac = _ids_automaton(frozenset(i for i in all_ids if len(i) >= 2))
        if len(_IDS_CACHE) > 4096:
            _IDS_CACHE.clear()
        _IDS_CACHE[id(ctx)] = (ctx, ids_ac)  # holds the context: its id is not reused meanwhile
    names = rule.fields
    fields = view.fields(names)
    joined = "\x00".join(t for _, t in fields)
    # the ids that occur in some field (case-sensitive, as below)
    ids = sorted({i for _, i in ids_ac.iter(joined)}) if ids_ac is not None else []
    for label, text in fields:
        spans, urls = _generic_ids(text)
        for a, b in spans:
            if not any(x <= a and b <= y for x, y in view.protected(label)):
                yield Hit(label, a, b)
        for i in ids:
            if i in text:
                for m in T.word_re(i).finditer(text):
                    if any(a <= m.start() and m.end() <= b for a, b in view.protected(label)) or \
                            _GENERIC_IDS.fullmatch(m.group()):
                        continue
                    if urls and any(a <= m.start() and m.end() <= b for a, b in urls):
                        continue
                    if m.group() != i:  # case-sensitive: "o1" in prose is not the offer id "O1"
                        continue
                    yield Hit(label, m.start(), m.end())


_IDS_CACHE: dict[int, tuple[object, Any]] = {}


@lru_cache(maxsize=8192)
def _generic_ids(text: str) -> tuple[tuple[tuple[int, int], ...], list[tuple[int, int]]]:
    """Id-shaped tokens (SKU-12, P1234, "member id 4471") outside links, and the links' spans, in a
    text (pure: cached per text)."""
    urls = [u.span() for u in _URL_SPAN.finditer(text)] if ("://" in text or "www." in text) else []
    if not _may_have_generic_id(text, lower(text)):
        return (), urls
    spans = tuple(m.span() for m in _GENERIC_IDS.finditer(text)
                  if not (urls and any(a <= m.start() and m.end() <= b for a, b in urls)))  # a path in a link
    return spans, urls


@lru_cache(maxsize=1024)
def _ids_automaton(ids: frozenset[str]) -> Any:
    """An Aho-Corasick automaton of the ids: one pass finds every id that occurs (an id inside
    another, "P10" in "P100", too); None without ids."""
    if not ids:
        return None
    ac = ahocorasick.Automaton()
    for i in ids:
        ac.add_word(i, i)
    ac.make_automaton()
    return ac
#: necessary conditions for a _GENERIC_IDS match (other than "sku"): a digit, and [PM] or "-" right
#: before a digit or a keyword + id word (checked on the lowercased text)
_ID_HINT = re.compile(r"[pPmM-]\d")
_ID_KEYWORD = fold(re.compile(r"(?:item|product|prod|member|customer|cust|offer|order)[ \t_-]?(?:id|no|number|#)"))
_DIGIT = re.compile(r"\d")


def _may_have_generic_id(text: str, low: str) -> bool:
    """False only when _GENERIC_IDS cannot match ``text`` (``low`` is text.lower())."""
    if "sku" in low or (not text.isascii() and any(c in text for c in T.ODD_CASE)):
        return True
    if _DIGIT.search(text) is None:
        return False
    return _ID_HINT.search(text) is not None or _ID_KEYWORD.search(low) is not None


_GENERIC_IDS = fold(re.compile(
    r"\bSKU\b[ \t#:-]*[A-Z0-9-]+|\b(?:sku|item|product|prod|member|customer|cust|offer|order)[ \t_-]?(?:id|no\.?|number|#)"
    r"[ \t:#]*[A-Z0-9-]*\d[A-Z0-9-]*|\b[PM]\d{3,}\b|\b[A-Z]{2,4}-\d{3,}\b", re.I))  # an id never spans a line break


@register_check("brand.behaviour_dates", needs=DIGITS)  # every date holds a digit
def check_behaviour_dates(rule: Rule, view: MessageView) -> Iterator[Hit]:
    """Raw dates and timestamps of what the member did ("on 2/14", "2026-11-18")."""
    send = view.ctx.send_date
    cache = _DATES_CACHE
    for label, text in view.fields(rule.fields):
        key = (text, send)  # pure in the text and the send date (explanations, subjects repeat)
        spans = cache.get(key)
        if spans is None:
            found = []
            for a, b, _ in T.date_matches(text, send):
                raw = _RAW_DATE.fullmatch(text, a, b) is not None
                behaviour = behaviour_date(text, a)
                if raw or behaviour:
                    if raw and not behaviour and _OFFER_WORD_BEFORE.search(text[max(0, a - 20):a]):
                        continue  # an offer date written numerically: facts.offer-dates checks it
                    found.append((a, b))
            spans = tuple(found)
            if len(cache) > 8192:
                cache.clear()
            cache[key] = spans
        for a, b in spans:
            yield Hit(label, a, b)


_DATES_CACHE: dict[tuple[str, object], tuple[tuple[int, int], ...]] = {}


_RAW_DATE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}(?:/\d{2,4})?")
_OFFER_WORD_BEFORE = fold(re.compile(r"\b(?:until|through|thru|till|ends?|by|before|from|starting|valid)\s*$", re.I))


@lru_cache(maxsize=4096)
def _prose_words(body: str) -> int:
    """Words on a body's prose lines (pure in the body: cached, and its lines are not)."""
    return sum(len(T.WORD_RE.findall(body, a, b)) for a, b in T.body_prose_lines(body))


# "\b\w+['’](?:re|ve|ll|d|s|t|m)\b" (found or not: all the check asks), written to open with the
# apostrophe so that a search jumps from one apostrophe to the next
_CONTRACTION = fold(re.compile(r"['’](?<=\w['’])(?:re|ve|ll|d|s|t|m)\b", re.I))


@register_check("brand.contractions")
def check_contractions(rule: Rule, view: MessageView) -> Iterator[Hit]:
    min_words = int(rule.params.get("min_words", 40))
    fields = view.fields(rule.fields)
    if any(("'" in text or "’" in text) and _CONTRACTION.search(text) for _, text in fields):
        return  # (every contraction holds an apostrophe)
    words = 0
    for label, text in fields:
        words += _prose_words(text) if label == "body" else T.count_words(text)
    if words > min_words:
        yield Hit("body", 0, 0, excerpt="", slots={"count": words})
