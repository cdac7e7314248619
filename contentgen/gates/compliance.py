"""Compliance checks that need the context: explanations vs evidence and tier, links, PII,
echoed member-supplied text. Word-list rules live in compliance/*.yaml."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from ..models import TIER_SOURCES
from . import text as T
from .casefold import fold
from .facts import _LEAD_STOP as _FACTS_LEAD
from .facts import _STOP_WORDS as _FACTS_STOP
from .facts import prep
from .rules import ANCHORS, Alt, Hit, MessageView, Rule, register_check

_SRC_CACHE: dict[str, list[tuple[str, Alt]]] = {}


def _source_patterns(rule: Rule) -> list[tuple[str, Alt]]:
    pats = _SRC_CACHE.get(rule.id)
    if pats is None:
        pats = []
        for source, phrases in rule.params.get("sources", {}).items():
            alt = Alt(list(phrases), re.I)
            alt.compile_full()
            alt.compile_items()
            pats.append((source, alt))
        _SRC_CACHE[rule.id] = pats
    return pats


def cited_sources(rule: Rule, text: str, present: frozenset[str] | None = None) -> list[tuple[int, int, str]]:
    """Evidence sources an explanation's wording cites; longer phrases win over overlapping shorter ones.

    ``present``: the anchors occurring in the text (or a superset), to skip phrases that cannot match.
    """
    if present is None:
        present = ANCHORS.present(text.lower())
    return _cited(_source_regexes(rule, present), text)


def _source_regexes(rule: Rule, present: frozenset[str]) -> list[tuple[str, Alt, Any]]:
    """(source, its phrases, their regex narrowed to the present anchors) for the sources that can match."""
    out = []
    for source, alt in _source_patterns(rule):
        rx = alt.regex_for(present)
        if rx is not None:
            out.append((source, alt, rx))
    return out


def _cited(regexes: list[tuple[str, Alt, Any]], text: str) -> list[tuple[int, int, str]]:
    here = ANCHORS.present_in((text,))
    found = []
    for source, alt, rx in regexes:
        if not alt._all_on and alt._union.isdisjoint(here):
            continue  # none of this source's phrases can match here
        for m in rx.finditer(text):
            found.append((m.start(), m.end(), source))
    found.sort(key=lambda x: (-(x[1] - x[0]), x[0]))
    kept: list[tuple[int, int, str]] = []
    for a, b, s in found:
        if not any(a < kb and ka < b for ka, kb, _ in kept):
            kept.append((a, b, s))
    return sorted(kept)


_LABELS = {"purchase": "purchase history", "stated_preference": "stated preferences", "browsing": "browsing",
           "predicted": "predicted needs", "similar_members": "similar members", "inventory": "stock",
           "segment": "segment popularity"}


_SAID = fold(re.compile(r"\byou (?:told us|said|mentioned|shared|let us know|indicated)\b", re.I))
_SENT_BREAK = re.compile(r"[.!?;\n]|\(\d\)")


def _reported(cited: list[tuple[int, int, str]], text: str, a: int) -> bool:
    """A cue inside what the member told us: a "you told us / you said" stated-preference cue
    earlier in the same sentence, close before it."""
    for sa, sb, src in cited:
        if src == "stated_preference" and sb <= a and a - sb <= 40 and _SAID.search(text, sa, sb) \
                and not _SENT_BREAK.search(text, sb, a):
            return True
    return False


@register_check("compliance.explanation_evidence", prepare=_source_patterns)
def check_explanation_evidence(rule: Rule, view: MessageView) -> Iterator[Hit]:
    tier = view.tier
    allowed = TIER_SOURCES[tier]
    if not view.msg.explanations:
        return
    recs = {r.product_id: {e.source for e in r.evidence} for r in view.ctx.recommendations}
    regexes = None
    cache = _CITED_CACHE.setdefault(rule.id, {})
    for i, ex in enumerate(view.msg.explanations):
        label = f"explanations[{i}].text"
        carried = recs.get(ex.product_id)
        if carried is None:
            continue  # compliance.explanation-product
        cues = cache.get(ex.text)  # pure in the rule and the text: explanations repeat
        if cues is None:
            if regexes is None:
                regexes = _source_regexes(rule, view.present(rule.fields))  # the same for every explanation
            cited = _cited(regexes, ex.text)
            # "you told us you're interested in ...": the member said it, not a weaker cue
            cues = [(a, b, src) for a, b, src in cited
                    if not (src != "stated_preference" and _reported(cited, ex.text, a))]
            if len(cache) > 8192:
                cache.clear()
            cache[ex.text] = cues
        for a, b, src in cues:
            if src not in allowed:
                yield Hit(label, a, b, slots={"reason": f"tier {tier} does not allow {_LABELS[src]} as a reason"})
            elif src not in carried:
                yield Hit(label, a, b, slots={"reason": f"this recommendation carries no {_LABELS[src]} evidence"})


_CITED_CACHE: dict[str, dict[str, list[tuple[int, int, str]]]] = {}


@register_check("compliance.explanation_product")
def check_explanation_product(rule: Rule, view: MessageView) -> Iterator[Hit]:
    recs = {r.product_id for r in view.ctx.recommendations}
    if view.ctx.hero_product_id:
        recs.add(view.ctx.hero_product_id)
    for i, ex in enumerate(view.msg.explanations):
        if ex.product_id not in recs:
            yield Hit(f"explanations[{i}].text", 0, len(ex.text), slots={"product": ex.product_id})


@register_check("compliance.tier1_explanations")
def check_tier1_explanations(rule: Rule, view: MessageView) -> Iterator[Hit]:
    """Tier 1: no per-member reasoning; an explanation may only cite segment-level popularity."""
    rx = _SEG_CACHE.get(rule.id)
    if rx is None:
        phrases = rule.params.get("segment_phrases", [])
        rx = _SEG_CACHE[rule.id] = re.compile("|".join(f"(?:{p})" for p in phrases) or r"(?!x)x", re.I)
    for i, ex in enumerate(view.msg.explanations):
        personal = re.search(r"\byou(?:r|'ve|’ve| have|'re|’re)?\b", ex.text, re.I)
        if personal or not rx.search(ex.text):
            yield Hit(f"explanations[{i}].text", 0, len(ex.text))


_SEG_CACHE: dict[str, re.Pattern[str]] = {}


@register_check("compliance.explanation_missing")
def check_explanation_missing(rule: Rule, view: MessageView) -> Iterator[Hit]:
    """Tier 2/3: a recommended product named in the message carries an explanation."""
    p = prep(view)
    explained = {ex.product_id for ex in view.msg.explanations}
    recs = [r.product_id for r in view.ctx.recommendations]
    seen = set()
    for label, _ in p.fields:
        if label.startswith("explanations"):
            continue
        for m in p.mentions[label]:
            if m.pid in recs and m.pid not in explained and m.pid not in seen and m.how != "partial1":
                seen.add(m.pid)
                yield Hit(label, m.start, m.end, slots={"name": p.idx.names.get(m.pid, m.pid)})


_MAYBE_HOST = fold(re.compile(r"[A-Za-z0-9-]\.[A-Za-z]"))


@lru_cache(maxsize=4096)
def _bad_links(text: str, allowed: tuple[str, ...], is_cta: bool) -> tuple[tuple[int, int, str], ...]:
    """(start, end, host) of each link to a host outside ``allowed`` (pure: footers and links repeat)."""
    out: list[tuple[int, int, str]] = []
    if "://" in text or _MAYBE_HOST.search(text):
        for m in T.URL_RE.finditer(text):
            host = T.url_host(m.group())
            if not host or "@" in text[max(0, m.start() - 1):m.start()]:
                continue
            if not T.host_allowed(host, allowed):
                out.append((m.start(), m.end(), host))
    if is_cta and text.strip() and not _HTTPS.match(text.strip()):
        out.append((0, len(text), text.strip()[:40] + " (not an https link)"))
    return tuple(out)


_HTTPS = re.compile(r"https://", re.I)


@register_check("compliance.links")
def check_links(rule: Rule, view: MessageView) -> Iterator[Hit]:
    allowed = tuple(d.lower() for d in view.ctx.allowed_domains) or tuple(rule.params.get("allowed", ()))
    for label, text in view.fields(rule.fields):
        for a, b, host in _bad_links(text, allowed, label == "cta_url"):
            yield Hit(label, a, b, slots={"host": host})


_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
# Phone numbers, street addresses and member ids never span a line break (a body's product lines
# put a price, a newline and a capitalized product name next to each other), and digits that are
# part of a price or a decimal ("$164.99", "1,299") are not a house number or a phone number.
_PHONE = re.compile(r"(?=[+(0-9])(?<![\w$.,])(?:\+?1[ \t.-]?)?(?:\(\d{3}\)[ \t]?|\d{3}[ \t.-])\d{3}[ \t.-]\d{4}(?![\w])")
# (written to open with \d, so that a search jumps straight from digit to digit: "\d(?<![\w$.,]\d)\d{0,4}"
# is "(?<![\w$.,])\d{1,5}")
_STREET = fold(re.compile(
    r"\d(?<![\w$.,]\d)\d{0,4}[ \t]+(?:[NSEW]\.?[ \t]+)?((?:[A-Z][a-z]+[ \t]+){1,3}(?:Street|St\.?|Avenue|Ave\.?|Road|Rd\.?|"
    r"Boulevard|Blvd\.?|Lane|Ln\.?|Drive|Dr\.?|Court|Ct\.?|Place|Pl\.?|Terrace|Way|Parkway|Circle))(?![\w])"))
#: a member-id-shaped token next to "member" ("Member M00123", "member #88213", "member ID: 4471-220")
_MEMBER_ID = re.compile(r"\bmember(?:ship)?(?:[ \t]+(?:id|no\.?|number|#))?[ \t:#]*\b([A-Z]{0,3}\d[\d-]{3,})\b",
                        re.I)
_COMPANY_ADDR = re.compile(r"400\s+Market\s+St", re.I)
#: every _PHONE match ends with this (it opens with \d: a search skips from digit to digit)
_PHONE_TAIL = fold(re.compile(r"\d{3}[ \t.-]\d{4}(?![\w])"))
_DIGIT = re.compile(r"\d")


def _mentions(view: MessageView, label: str) -> list[Any]:
    if not (label in ("subject", "preheader", "body", "cta_text") or label.startswith("explanations[")):
        return []
    return prep(view).mentions.get(label, [])


def _in_product_name(view: MessageView, label: str, a: int, b: int) -> bool:
    """text[a:b] starts inside a catalog product's name that goes on past b ("2 Cedar Lane Throw Pillows")."""
    if not (label in ("subject", "preheader", "body", "cta_text") or label.startswith("explanations[")):
        return False
    return any(m.start <= a and m.end > b for m in prep(view).mentions.get(label, ()))


#: the word after a first name (or after its hyphenated second half: "Ruth-Anne") that names someone
_NEXT_NAME = re.compile(r"(?:-[A-Z][a-z'’]+)?[ \t]+([A-Z][a-z'’]+(?:-[A-Z][a-z'’]+)?)(?![\w])")
#: capitalized words that follow a first name without being a name ("Ruth Welcome" never is one,
#: but months, days, holidays, the brand and the usual sentence openers are common there)
_NOT_A_NAME = frozenset({*_FACTS_STOP, *_FACTS_LEAD, "athenaplus", "athena", "plus", "rewards"})


@lru_cache(maxsize=4096)
def _names_after(text: str, first_name: str) -> tuple[tuple[int, int], ...]:
    """Spans of a capitalized name right after the member's first name ("Ruth Okafor": "Okafor")."""
    out = []
    for m in fold(T.word_re(first_name)).finditer(text):  # (cached: word_re is; spans only)
        n = _NEXT_NAME.match(text, m.end())
        if n and n.group(1).lower().rstrip("’'") not in _NOT_A_NAME:
            out.append(n.span(1))
    return tuple(out)


@register_check("compliance.pii")
def check_pii(rule: Rule, view: MessageView) -> Iterator[Hit]:
    m_ = view.ctx.member
    allowed = tuple(d.lower() for d in view.ctx.allowed_domains)
    email = m_.email.lower() if m_.email else ""
    first = m_.first_name.strip()
    low_first = first.lower()
    names = rule.fields
    for (label, text), low in zip(view.fields(names), view.lowered(names)):
        if first and T.may_contain_ci(text, low, low_first):
            for a, b in _names_after(text, first):
                if _in_product_name(view, label, a - 1 - len(first), a) or any(
                        ms.start <= a < ms.end for ms in _mentions(view, label)):
                    continue  # the first name, or the word after it, is part of a product's name
                yield Hit(label, a, b, slots={"what": "a name beside the member's first name (a surname?)"})
        if m_.member_id and m_.member_id in text:
            for m in T.word_re(m_.member_id).finditer(text):
                yield Hit(label, m.start(), m.end(), slots={"what": "the member id"})
        if email and email in low:
            i = low.index(email)
            yield Hit(label, i, i + len(m_.email), slots={"what": "the member's email address"})
        if "@" in text:
            for m in _EMAIL.finditer(text):
                dom = m.group().split("@", 1)[1].lower()
                if m_.email and m.group().lower() == m_.email.lower():
                    continue
                if T.host_allowed(dom, allowed):
                    continue
                yield Hit(label, m.start(), m.end(), slots={"what": "an email address"})
        got = _PII_SCANS.get(text)  # the member-independent scans: pure in the text
        if got is None:
            if _DIGIT.search(text) is None:  # phone numbers, member ids and street addresses all hold a digit
                got = ((), (), ())
            else:
                got = (tuple(m.span() for m in (_PHONE.finditer(text) if _PHONE_TAIL.search(text) else ())),
                       tuple((m.group(1), m.start(1), m.end(1))
                             for m in (_MEMBER_ID.finditer(text) if "member" in low else ())),
                       tuple((m.start(), m.end(), m.start(1), m.end(1)) for m in _STREET.finditer(text)
                             if not _COMPANY_ADDR.match(m.group())))  # not the sender's address
            if len(_PII_SCANS) > 8192:
                _PII_SCANS.clear()
            _PII_SCANS[text] = got
        phones, member_ids, streets = got
        for a, b in phones:
            yield Hit(label, a, b, slots={"what": "a phone number"})
        if "ending" in low or "last four" in low or "last 4" in low:
            for m in _PARTIAL_NUMBER.finditer(text):
                yield Hit(label, m.start(), m.end(), slots={"what": "part of the member's phone, card or account number"})
        for g, a, b in member_ids:
            if m_.member_id and g == m_.member_id:
                continue  # already reported above
            yield Hit(label, a, b, slots={"what": "a member id"})
        for a, b, a1, b1 in streets:
            if _in_product_name(view, label, a1, b1):
                continue  # a quantity before a product's name
            yield Hit(label, a, b, slots={"what": "a street address"})


_PII_SCANS: dict[str, tuple[tuple[Any, ...], tuple[Any, ...], tuple[Any, ...]]] = {}
#: "the number ending in 4417", "your card ending 0042", "last four digits 7781"
_PARTIAL_NUMBER = fold(re.compile(
    r"\b(?:(?:phone|mobile|cell|card|account|number|membership)[\w ]{0,12}? ending (?:in |with )?\d{2,4}"
    r"|(?:the )?last (?:four|4|two|2) (?:digits )?(?:of your [\w ]{1,20} )?(?:are |is |were )?\d{2,4})\b", re.I))


_INSTRUCTIONISH = fold(re.compile(
    r"\b(?:ignore|disregard|instruction|instructions|prompt|system|assistant|pretend|override|forget|"
    r"you are now|act as|offer|discount|free|%|price|respond|reply|output|write)\b|%", re.I))


@register_check("compliance.member_text_echo")
def check_member_echo(rule: Rule, view: MessageView) -> Iterator[Hit]:
    """Member-supplied text that reads as instructions must not reach the output."""
    m_ = view.ctx.member
    for value in (m_.first_name, m_.stated_preferences):
        v = value.strip()
        if len(v) < 12 or not _INSTRUCTIONISH.search(v):
            continue
        needle = v.lower()[:60]
        for label, text in view.fields(rule.fields):
            i = text.lower().find(needle)
            if i >= 0:
                yield Hit(label, i, i + len(needle))


# --------------------------------------------------------------------------- SMS (GSM 03.38)

#: GSM 03.38 default alphabet (one septet each) and its extension table (escape + one septet).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")


def gsm7_septets(text: str) -> int | None:
    """Length of the text in GSM-7 septets, or None when a character forces UCS-2."""
    n = 0
    for ch in text:
        if ch in GSM7_BASIC:
            n += 1
        elif ch in GSM7_EXTENSION:
            n += 2
        else:
            return None
    return n


@register_check("compliance.gsm7")
def check_gsm7(rule: Rule, view: MessageView) -> Iterator[Hit]:
    """Characters outside the GSM-7 alphabet (emoji, curly quotes, em dashes...): they force UCS-2
    encoding and 70-character segments."""
    for label, text in view.fields(rule.fields):
        i = 0
        while i < len(text):
            ch = text[i]
            if ch in GSM7_BASIC or ch in GSM7_EXTENSION:
                i += 1
                continue
            j = i + 1
            while j < len(text) and text[j] not in GSM7_BASIC and text[j] not in GSM7_EXTENSION:
                j += 1
            yield Hit(label, i, j, slots={"chars": " ".join(f"U+{ord(c):04X}" for c in text[i:j][:4])})
            i = j


@register_check("compliance.sms_length")
def check_sms_length(rule: Rule, view: MessageView) -> Iterator[Hit]:
    """One SMS segment: at most ``max`` GSM-7 septets (extension characters count twice)."""
    max_n = int(rule.params.get("max", 160))
    for label, text in view.fields(rule.fields):
        n = gsm7_septets(text)
        n = len(text) if n is None else n  # non-GSM text is compliance.sms-gsm7's finding; count characters
        if n > max_n:
            yield Hit(label, min(max_n, len(text)), len(text), excerpt=text, slots={"count": n, "max": max_n})
