"""Compliance: links only to the campaign's domains, no personal data beyond the first name, and
no member-supplied instruction echoed back."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

from .. import text as T
from ..engine.findings import Hit
from ..engine.model import Rule
from ..engine.phrases import Phrases
from ..engine.plugin import Build, Check, Params
from ..engine.slots import brand_words
from ..engine.view import MessageView
from .catalog import Mention, prep
from .privacy_models import PiiParams, EchoParams

_MAYBE_HOST = re.compile(r"[A-Za-z0-9-]\.[A-Za-z]")
_HTTPS = re.compile(r"https://", re.I)


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


class Links(Check):
    """Links only to the campaign's allowed domains; the call-to-action link is https."""
    name = "compliance.links"

    def __init__(self, params: Params, build: Build) -> None:
        super().__init__(params, build)
        self.url = build.feature("url") | build.patterns([_MAYBE_HOST.pattern, "://"])

    def run(self, rule: Rule, view: MessageView) -> Iterator[Hit]:
        allowed = tuple(d.lower() for d in view.ctx.allowed_domains)
        hits = view.hits
        url = self.url
        for label, text in view.fields(rule.fields):
            if label != "cta_url":
                h = hits(text)
                if h is not None and h.isdisjoint(url):
                    continue  # no link can be here
            for a, b, host in _bad_links(text, allowed, label == "cta_url"):
                yield Hit(label, a, b, slots={"host": host})


_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
# Phone numbers, street addresses and member ids never span a line break (a body's product lines
# put a price, a newline and a capitalized product name next to each other), and digits that are
# part of a price or a decimal ("$164.99", "1,299") are not a house number or a phone number.
_PHONE = re.compile(r"(?=[+(0-9])(?<![\w$.,])(?:\+?1[ \t.-]?)?(?:\(\d{3}\)[ \t]?|\d{3}[ \t.-])\d{3}[ \t.-]\d{4}(?![\w])")
#: a member-id-shaped token next to "member" ("Member M00123", "member #88213", "member ID: 4471-220")
_MEMBER_ID = re.compile(r"\bmember(?:ship)?(?:[ \t]+(?:id|no\.?|number|#))?[ \t:#]*\b([A-Z]{0,3}\d[\d-]{3,})\b",
                        re.I)
#: every _PHONE match ends with this (it opens with \d: a search skips from digit to digit)
_PHONE_TAIL = re.compile(r"\d{3}[ \t.-]\d{4}(?![\w])")
_DIGIT = re.compile(r"\d")
#: the word after a first name (or after its hyphenated second half: "Ruth-Anne") that names someone
_NEXT_NAME = re.compile(r"(?:-[A-Z][a-z'’]+)?[ \t]+([A-Z][a-z'’]+(?:-[A-Z][a-z'’]+)?)(?![\w])")
_HOUSE = re.compile(r"(\d+)\s+(\w+)")


def _in_names(label: str) -> bool:
    return label in ("subject", "preheader", "body", "cta_text") or label.startswith("explanations[")


class Pii(Check):
    """No personal data beyond the first name: surnames, the member id, e-mail addresses, phone
    numbers, street addresses, parts of account numbers."""
    name = "compliance.pii"

    Params = PiiParams

    def __init__(self, params: PiiParams, build: Build) -> None:
        super().__init__(params, build)
        # (written to open with \d, so that a search jumps straight from digit to digit:
        # "\d(?<![\w$.,]\d)\d{0,4}" is "(?<![\w$.,])\d{1,5}")
        self.street = re.compile(
            r"\d(?<![\w$.,]\d)\d{0,4}[ \t]+(?:(?:[NS][EW]|[NSEW])\.?[ \t]+)?((?:[A-Z][a-z]+[ \t]+){1,3}(?:"
            + "|".join(params.street_suffixes) + r"))(?![\w])")
        self.partial = Phrases(build, params.partial_numbers, re.I, head=r"\b(?:", tail=r")\b")
        self.digit = build.feature("digit")
        # what a phone number, a member id or a street address holds (the scans run where one may be)
        self.scan_ids = build.patterns([_PHONE_TAIL.pattern, self.street.pattern]) | build.patterns([r"member"], re.I)
        self.partial_ids = self.partial.ids
        self.scans: dict[str, tuple[tuple[tuple[int, int], ...], tuple[tuple[str, int, int], ...],
                                    tuple[tuple[int, int, int, int, str], ...]]] = {}
        self._not_names: dict[tuple[str, str], frozenset[str]] = {}

    def not_names(self, view: MessageView) -> frozenset[str]:
        b = view.ctx.brand
        key = (b.program, b.sender)
        got = self._not_names.get(key)
        if got is None:
            v = view.rules.vocab
            got = self._not_names[key] = frozenset(
                {*(w.lower() for w in v.find("capitalized-non-products")), *(w.lower() for w in v.find("sentence-openers")),
                 *(w.lower() for w in self.params.not_surnames), *brand_words(b)})
        return got

    def _mentions(self, view: MessageView, label: str) -> list[Mention]:
        if not _in_names(label):
            return []
        return prep(view).mentions.get(label, [])

    def _in_product_name(self, view: MessageView, label: str, a: int, b: int) -> bool:
        """text[a:b] starts inside a catalog product's name that goes on past b ("2 Cedar Lane Throw Pillows")."""
        return _in_names(label) and any(m.start <= a and m.end > b for m in prep(view).mentions.get(label, ()))

    def run(self, rule: Rule, view: MessageView) -> Iterator[Hit]:
        m_ = view.ctx.member
        allowed = tuple(d.lower() for d in view.ctx.allowed_domains)
        email = m_.email.lower() if m_.email else ""
        first = m_.first_name.strip()
        low_first = first.lower()
        house = _HOUSE.match(view.ctx.brand.postal_address)
        sender_house = (house.group(1), house.group(2).lower()) if house else None
        names = rule.fields
        if "footer" not in names:  # the footer holds the sender's own address and phone, never the member's data
            foot = view.msg.footer or ""
            if m_.member_id and m_.member_id in foot:
                for m in T.word_re(m_.member_id).finditer(foot):
                    yield Hit("footer", m.start(), m.end(), slots={"what": "the member id"})
            if email and email in foot.lower():
                i = foot.lower().index(email)
                yield Hit("footer", i, i + len(m_.email), slots={"what": "the member's email address"})
        for (label, text), low in zip(view.fields(names), view.lowered(names)):
            if first and T.may_contain_ci(text, low, low_first):
                for a, b in _names_after(text, first, self.not_names(view)):
                    if self._in_product_name(view, label, a - 1 - len(first), a) or any(
                            ms.start <= a < ms.end for ms in self._mentions(view, label)):
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
            h = view.hits(text)
            if h is not None and h.isdisjoint(self.digit):
                continue  # phones, member ids, street addresses and account numbers hold a digit
            if h is None or not (self.partial_ids is not None and h.isdisjoint(self.partial_ids)):
                for m in self.partial.finditer(view, text):
                    yield Hit(label, m.start(), m.end(),
                              slots={"what": "part of the member's phone, card or account number"})
            if h is not None and h.isdisjoint(self.scan_ids):
                continue
            phones, member_ids, streets = self._scan(text, low)
            for a, b in phones:
                yield Hit(label, a, b, slots={"what": "a phone number"})
            for g, a, b in member_ids:
                if m_.member_id and g == m_.member_id:
                    continue  # already reported above
                yield Hit(label, a, b, slots={"what": "a member id"})
            for a, b, a1, b1, num_word in streets:
                if sender_house is not None and num_word == "%s %s" % sender_house:
                    continue  # the sender's own postal address
                if self._in_product_name(view, label, a1, b1):
                    continue  # a quantity before a product's name
                yield Hit(label, a, b, slots={"what": "a street address"})

    def _scan(self, text: str, low: str) -> tuple[tuple[tuple[int, int], ...], tuple[tuple[str, int, int], ...],
                                                 tuple[tuple[int, int, int, int, str], ...]]:
        """The member-independent scans (phones, member ids, streets), line by line: none spans a
        line break (each line's are cached: product lines and greetings repeat)."""
        if "\n" not in text:
            return self._scan_line(text, low)
        phones: list[tuple[int, int]] = []
        ids: list[tuple[str, int, int]] = []
        streets: list[tuple[int, int, int, int, str]] = []
        pos = 0
        for line in text.split("\n"):
            if line:
                p, i, s = self._scan_line(line, line.lower())
                phones.extend((a + pos, b + pos) for a, b in p)
                ids.extend((g, a + pos, b + pos) for g, a, b in i)
                streets.extend((a + pos, b + pos, a1 + pos, b1 + pos, w) for a, b, a1, b1, w in s)
            pos += len(line) + 1
        return tuple(phones), tuple(ids), tuple(streets)

    def _scan_line(self, text: str, low: str) -> tuple[tuple[tuple[int, int], ...], tuple[tuple[str, int, int], ...],
                                                      tuple[tuple[int, int, int, int, str], ...]]:
        got = self.scans.get(text)
        if got is None:
            if _DIGIT.search(text) is None:  # phone numbers, member ids and street addresses all hold a digit
                got = ((), (), ())
            else:
                streets = []
                for m in self.street.finditer(text):
                    h = _HOUSE.match(m.group())
                    streets.append((m.start(), m.end(), m.start(1), m.end(1),
                                    f"{h.group(1)} {h.group(2).lower()}" if h else ""))
                got = (tuple(m.span() for m in (_PHONE.finditer(text) if _PHONE_TAIL.search(text) else ())),
                       tuple((m.group(1), m.start(1), m.end(1))
                             for m in (_MEMBER_ID.finditer(text) if "member" in low else ())),
                       tuple(streets))
            if len(self.scans) > 8192:
                self.scans.clear()
            self.scans[text] = got
        return got


@lru_cache(maxsize=4096)
def _names_after(text: str, first_name: str, not_names: frozenset[str]) -> tuple[tuple[int, int], ...]:
    """Spans of a capitalized name right after the member's first name ("Ruth Okafor": "Okafor")."""
    out = []
    for m in T.word_re(first_name).finditer(text):
        n = _NEXT_NAME.match(text, m.end())
        if n and n.group(1).lower().rstrip("’'") not in not_names:
            out.append(n.span(1))
    return tuple(out)


class MemberTextEcho(Check):
    """Member-supplied text that reads as instructions must not reach the output."""
    name = "compliance.member_text_echo"

    Params = EchoParams

    def __init__(self, params: EchoParams, build: Build) -> None:
        super().__init__(params, build)
        self.instructionish = re.compile(r"\b(?:" + "|".join(params.instruction_words) + r")\b|%", re.I)

    def run(self, rule: Rule, view: MessageView) -> Iterator[Hit]:
        m_ = view.ctx.member
        for value in (m_.first_name, m_.stated_preferences):
            v = value.strip()
            if len(v) < self.params.min_length or not self.instructionish.search(v):
                continue
            needle = v.lower()[:60]
            for label, text in view.fields(rule.fields):
                i = text.lower().find(needle)
                if i >= 0:
                    yield Hit(label, i, i + len(needle))
