"""Text parsers shared by the gates: sentences, words, money, percents, dates, links.

These read formats (what a price or a date looks like), not policy: which words matter is in the
rules folders. Everything here is pure and allocation-light: the gates run on every generated
message (2.3M a week), so patterns are compiled once at import; a price, a percentage, a date and
a sentence never span a line break, so a body is read line by line and each line's answer cached.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Any, TypeVar


@lru_cache(maxsize=4096)
def lower(text: str) -> str:
    """``text.lower()``, cached: several scans lowercase the same field text."""
    return text.lower()


_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def safe_lower_ok(text: str) -> bool:
    """Whether lowercasing the text changes only A-Z (every other character is ASCII or has no
    case): a case-insensitive regex can then only match where its lowercase form occurs."""
    if text.isascii():
        return True
    return all(c.lower() == c == c.upper() for c in set(_NON_ASCII.findall(text)))


# --------------------------------------------------------------------------- sentences

_ABBREV = {
    "mr", "mrs", "ms", "dr", "st", "jr", "sr", "vs", "etc", "e.g", "i.e", "no", "inc", "co", "ltd",
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "approx", "ave",
    "mt", "ft", "oz", "lb", "lbs",
}
#: abbreviations that end a sentence when a capital follows ("It weighs 4.5 lb. It's $199."), unlike
#: titles ("Dr. Lee"), months ("Dec. 6") and "e.g."
_ENDING_ABBREV = frozenset({"ft", "oz", "lb", "lbs", "etc", "inc", "co", "ltd"})
_ORDINAL_SUFFIX = frozenset({"st", "nd", "rd", "th"})
_HAS_DIGIT = re.compile(r"\d")
_ABBR_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.")
_WORD = WORD_RE = re.compile(r"[^\W_][\w'’.,%$/-]*|\$[\d.,]+")


#: a newline, or a sentence end ("." "!" "?" "…", closing quotes, then a space or the end) — one character
#: class first, so a search jumps between them
_SPLIT = re.compile(r"[\n.!?…](?:(?<=\n)|[.!?…]*[\"'”’)\]]*(?=\s|$))")


def _capital_next(text: str, i: int, end: int) -> bool:
    """Whether the next non-space character from ``i`` (before ``end``) is a capital letter."""
    while i < end and text[i] in " \t":
        i += 1
    return i < end and text[i].isupper()


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Sentence spans within text[start:end]; newlines are hard boundaries, so a text's sentences
    are its lines' (each line's are cached: product lines, greetings and sign-offs repeat)."""
    if start or end is not None or "\n" not in text:
        return _split_sentences(text, start, end)
    out: list[tuple[int, int]] = []
    pos = 0
    for line in text.split("\n"):
        if line:
            got = _split_sentences(line)
            out.extend(got if not pos else [(a + pos, b + pos) for a, b in got])
        pos += len(line) + 1
    return out


@lru_cache(maxsize=16384)
def _split_sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    s = start
    for m in _SPLIT.finditer(text, start, end):
        dot = m.start()
        ch = text[dot]
        if ch == "\n":
            spans.append((s, dot))
            s = dot + 1
            continue
        if ch == ".":
            # an abbreviation ("Dec. 6", "e.g.") or a decimal is not an end: the run of
            # letters and dots right before the dot
            j = dot
            while j > s and text[j - 1] in _ABBR_CHARS:
                j -= 1
            abbr = text[j:dot].lower().rstrip(".") if j < dot else ""
            if j > s and text[j - 1].isdigit() and abbr in _ORDINAL_SUFFIX:
                abbr = ""  # "through August 31st." ends like "through August 31." ("st" is no "St.")
            if abbr in _ABBREV and not (abbr in _ENDING_ABBREV and _capital_next(text, m.end(), end)):
                continue
        spans.append((s, m.end()))
        s = m.end()
    spans.append((s, end))
    out = []
    for a, b in spans:
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if b > a:
            out.append((a, b))
    return out


@lru_cache(maxsize=8192)
def count_words(text: str) -> int:
    return len(_WORD.findall(text))


# --------------------------------------------------------------------------- body structure

PRODUCT_LINE_RE = re.compile(r"^[ \t]*[^\n.!?:]{2,90}:\s*(?:\$|USD\s?)\d[^\n]*$")
_DASHES = "—–-"


def signoff_source(signoff: str, space: str = r"[ \t]*") -> str:
    """A regex for the campaign's sign-off ("— The AthenaPlus team"): a leading dash may be an em
    dash, an en dash or one or two hyphens, followed by any run of ``space``."""
    words = signoff.strip()
    if words[:1] in _DASHES:
        return r"(?:—|–|-{1,2})" + space + re.escape(words.lstrip(_DASHES).strip())
    return re.escape(words)


@dataclass(frozen=True)
class Layout:
    """What frames an e-mail body's prose: the greeting line and the sign-off line."""

    greeting: re.Pattern[str]
    signoff: re.Pattern[str]


@lru_cache(maxsize=64)
def layout(greetings: tuple[str, ...], signoff: str) -> Layout:
    """The layout for a greeting vocabulary (``hi``, ``good (?:morning|evening)``...) and a sign-off."""
    greet = "|".join(greetings) or r"(?!x)x"
    return Layout(greeting=re.compile(r"^[ \t]*(?:" + greet + r")\b[^\n]{0,80}$", re.I),
                  signoff=re.compile(r"^[ \t]*" + signoff_source(signoff, r"\s*") + r"\s*$", re.I))


@lru_cache(maxsize=4096)
def body_prose_lines(body: str, lay: Layout) -> list[tuple[int, int]]:
    """Spans of the lines of a body that are the model's prose (not greeting, product lines, sign-off)."""
    spans = []
    pos = 0
    first = True
    greeting, signoff = lay.greeting, lay.signoff
    for line in body.split("\n"):
        a, b = pos, pos + len(line)
        pos = b + 1
        if not line.strip():
            continue
        if first:
            first = False
            if greeting.match(line) and len(line.strip()) < 60:
                continue
        if signoff.match(line) or (":" in line and PRODUCT_LINE_RE.match(line)):
            continue
        spans.append((a, b))
    return spans


def spans_within(spans: list[tuple[int, int]], outer: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The spans that lie inside one of the outer spans (both sorted and non-overlapping)."""
    out = []
    j, n = 0, len(outer)
    for a, b in spans:
        while j < n and outer[j][1] < b:
            j += 1
        if j == n:
            break
        if outer[j][0] <= a:
            out.append((a, b))
    return out


# --------------------------------------------------------------------------- numbers

_NUM = r"(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?"
# Each big pattern opens with a lookahead on the characters a match can start with: the
# matches are the same, but the engine rejects most positions at the first character.
MONEY_RE = (re.compile(
    r"(?=[$0-9uU])(?:(?:(?<![\w.])\$[ \t]?" + _NUM + r"(?!\.?\d)(?:[ \t]?(?:USD|dollars?)\b)?)"
    r"|(?:\bUSD[ \t]?\$?" + _NUM + r"(?!\.?\d))"
    r"|(?:(?<![\w.$])" + _NUM + r"[ \t]?(?:dollars?|bucks|USD)\b))", re.I))
PERCENT_RE = (re.compile(r"(?=[0-9hH])(?:(?<![\w.])(\d{1,3}(?:\.\d+)?)[ \t]?(?:%|percent\b|per cent\b)"
                        r"|\bhalf[- ](?:off|price)\b)", re.I))


_ONES = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9}
_TEENS = {"ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
          "seventeen": 17, "eighteen": 18, "nineteen": 19}
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_W_ONE = "|".join(_ONES)
_W_UNDER_100 = (r"(?:(?:" + "|".join(_TENS) + r")(?:[ -](?:" + _W_ONE + r"))?|" + "|".join(_TEENS) + "|" + _W_ONE + ")")
#: a whole-dollar price in words: "thirty-two dollars", "a hundred and twenty bucks"
MONEY_WORDS_RE = (re.compile(
    r"\b((?:(?:a|one|" + _W_ONE + r")[ -]hundred(?:[ -]and)?(?:[ -]" + _W_UNDER_100 + r")?)|" + _W_UNDER_100 + r")"
    r"[ -](?:dollars?|bucks)\b", re.I))


def _words_value(words: str) -> int:
    """"thirty-two" -> 32, "a hundred and twenty" -> 120."""
    total = part = 0
    for w in re.split(r"[ -]+", words.lower()):
        if w == "a":
            part = 1
        elif w == "hundred":
            total += (part or 1) * 100
            part = 0
        elif w != "and":
            part += _ONES.get(w, 0) + _TEENS.get(w, 0) + _TENS.get(w, 0)
    return total + part


def _with_words(found: list[tuple[int, int, float]], rx: Any, text: str) -> list[tuple[int, int, float]]:
    """``found`` plus the amounts ``rx`` finds written in words (its group 1), in text order."""
    words = [(m.start(), m.end(), float(_words_value(m.group(1)))) for m in rx.finditer(text)]
    return sorted(found + words) if words else found


_Found = TypeVar("_Found", bound=tuple[Any, ...])


def by_line(fn: Callable[[str], list[_Found]], text: str) -> list[_Found]:
    """``fn`` of a text whose matches never span a line break, from its lines' (each cached by
    ``fn``: greetings, product lines and sign-offs repeat): (start, end, ...) shifted to the text."""
    if "\n" not in text:
        return fn(text)
    out: list[_Found] = []
    pos = 0
    for line in text.split("\n"):
        if line:
            got = fn(line)
            if got:
                out.extend(got if not pos else [(a + pos, b + pos, *rest) for a, b, *rest in got])  # type: ignore[misc]
        pos += len(line) + 1
    return out


def money_matches(text: str) -> list[tuple[int, int, float]]:
    """(start, end, amount) of each price in the text: "$14", "$14.00", "14 dollars", "USD 14",
    and whole dollars in words ("fourteen dollars"); a price never spans a line break."""
    return by_line(_money_matches, text)


def percent_matches(text: str) -> list[tuple[int, int, float]]:
    """(start, end, value) of each percentage ("15%", "15 percent", "fifteen percent", "half off")."""
    return by_line(_percent_matches, text)


def date_matches(text: str, ref: dt.date) -> list[tuple[int, int, tuple[int, int, int | None]]]:
    """(start, end, (month, day, year or None)) for each date in text (a date never spans a line)."""
    return by_line(lambda line: _date_matches(line, ref), text)


@lru_cache(maxsize=16384)
def _money_matches(text: str) -> list[tuple[int, int, float]]:
    """(start, end, amount) of each price in the text: "$14", "$14.00", "14 dollars", "USD 14",
    and whole dollars in words ("fourteen dollars")."""
    out: list[tuple[int, int, float]] = []
    if "$" in text or _HAS_DIGIT.search(text):
        for m in MONEY_RE.finditer(text):
            g = m.groups()
            for i in (0, 2, 4):
                if g[i] is not None:
                    whole = g[i].replace(",", "")
                    cents = g[i + 1]
                    val = float(whole + ("." + cents.ljust(2, "0") if cents else ""))
                    out.append((m.start(), m.end(), val))
                    break
    low = lower(text)
    if "dollar" in low or "buck" in low:
        out = _with_words(out, MONEY_WORDS_RE, text)
    return out


#: a percentage in words: "twenty percent", "fifteen per cent"
PERCENT_WORDS_RE = (re.compile(r"\b(" + _W_UNDER_100 + r")[ -](?:percent|per cent)\b", re.I))


@lru_cache(maxsize=16384)
def _percent_matches(text: str) -> list[tuple[int, int, float]]:
    out: list[tuple[int, int, float]] = []
    if "%" not in text:
        low = text.lower()
        if "per" not in low and "half" not in low:
            return out  # every PERCENT_RE match holds "%", "percent", "per cent" or "half"
    for m in PERCENT_RE.finditer(text):
        out.append((m.start(), m.end(), float(m.group(1)) if m.group(1) else 50.0))
    if "per" in lower(text):
        out = _with_words(out, PERCENT_WORDS_RE, text)
    return out


def cents(x: float) -> int:
    return int(round(x * 100))


@lru_cache(maxsize=8192)
def discounted(price: float, percent: float) -> frozenset[int]:
    """Discounted price in cents, rounded half-up and half-even (either is accepted)."""
    raw = Decimal(str(price)) * (Decimal(100) - Decimal(str(percent))) / Decimal(100)
    return frozenset(int(raw.quantize(Decimal("0.01"), rounding=r) * 100) for r in (ROUND_HALF_UP, ROUND_HALF_EVEN))


# --------------------------------------------------------------------------- dates

MONTHS = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4, "apr": 4, "may": 5,
    "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8, "september": 9, "sep": 9, "sept": 9,
    "october": 10, "oct": 10, "november": 11, "nov": 11, "december": 12, "dec": 12,
}
_MON = r"(january|february|march|april|may|june|july|august|september|october|november|december|jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec)"
_DAY = r"(3[01]|[12]\d|0?[1-9])(?:st|nd|rd|th)?"
# A date never spans a line break, and a price's cents ("$18.05\nJune Garden Lamp") are not a day.
DATE_RE = (re.compile(
    r"(?=[0-9jfmasond])(?:\b" + _MON + r"\.?[ \t]+" + _DAY + r"\b(?:,?[ \t]+(\d{4}))?"
    r"|\b(?<![$.,])" + _DAY + r"[ \t]+(?:of[ \t]+)?" + _MON + r"\b\.?(?:,?[ \t]+(\d{4}))?"
    # a slash date, not a fraction: "60 1/2", "1/2 inch", "3/2mm" are measures
    r"|(?<![\d/.$])(?<!\d[ \t])(1[0-2]|0?[1-9])/(3[01]|[12]\d|0?[1-9])(?:/(\d{4}|\d{2}))?(?![\d/])"
    r"(?![ \t-]?(?:inch|in\b|\"|″|”|mm|cm|ft\b|foot|oz\b|ounce|lb\b|pound|cups?\b|tsp|tbsp|teaspoon|tablespoon|gallon|quart|liter|litre|hp\b|stops?\b|scale\b|gauge\b))"
    r"|\b(\d{4})-(\d{2})-(\d{2})\b)",
    re.I))


_SPACE_DIGIT = re.compile(r"[ \t]\d")
_DAY_SPACE = (re.compile(r"\d(?:st|nd|rd|th)?[ \t]", re.I))
_MON3 = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MAY_DIGIT = (re.compile(r"may\s+\d", re.I))
_DIGIT_MAY = (re.compile(r"\d\s+may$", re.I))


@lru_cache(maxsize=16384)
def _date_matches(text: str, ref: dt.date) -> list[tuple[int, int, tuple[int, int, int | None]]]:
    out: list[tuple[int, int, tuple[int, int, int | None]]] = []
    if not _HAS_DIGIT.search(text):
        return out
    if "/" not in text and "-" not in text:
        low = text.lower()
        if not any(m in low for m in _MON3):
            return out  # every DATE_RE match holds "/", "-" or a month name
        if _SPACE_DIGIT.search(text) is None and _DAY_SPACE.search(text) is None:
            return out  # and a month name is next to its day: " 6" or "6th " (DATE_RE's [ \t]+)
    for m in DATE_RE.finditer(text):
        g = m.groups()
        try:
            if g[0]:
                mo, d, y = MONTHS[g[0].lower()], int(g[1]), g[2]
                if g[0].lower() == "may" and not _MAY_DIGIT.match(m.group(0)):
                    continue
            elif g[4]:
                mo, d, y = MONTHS[g[4].lower()], int(g[3]), g[5]
                if g[4].lower() == "may" and _DIGIT_MAY.search(m.group(0)) and not g[5]:
                    # "5 may" is ambiguous with the verb; accept only with "of" or a year
                    pass
            elif g[6]:
                mo, d, y = int(g[6]), int(g[7]), g[8]
                if y and len(y) == 2:
                    y = "20" + y
            else:
                y, mo, d = g[9], int(g[10]), int(g[11])
            dt.date(int(y) if y else ref.year, mo, d)
        except (ValueError, KeyError):
            continue
        out.append((m.start(), m.end(), (mo, d, int(y) if y else None)))
    return out


def date_equals(md: tuple[int, int, int | None], day: dt.date) -> bool:
    mo, d, y = md
    return mo == day.month and d == day.day and (y is None or y == day.year)


# --------------------------------------------------------------------------- urls

URL_RE = (re.compile(
    r"(?:https?://|www\.)[^\s<>\"'()]+"
    r"|\b(?:[a-z0-9-]+\.)+(?:com|net|org|io|co|ly|me|info|biz|us|uk|shop|store|app|xyz|link|gl|to|ru|cn|example)"
    r"(?:/[^\s<>\"'()]*)?",
    re.I))


def url_host(url: str) -> str:
    u = re.sub(r"^https?://", "", url, flags=re.I)
    host = re.split(r"[/?#:]", u, maxsplit=1)[0]
    return host.lower().rstrip(".").removeprefix("www.") if host.lower().startswith("www.") else host.lower().rstrip(".")


def host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    return any(host == d or host.endswith("." + d) for d in allowed)


#: characters that re.IGNORECASE matches to an ASCII letter although their lower() is not that letter
ODD_CASE = ("\u017f", "\u0131", "\u0130", "\u212a")


def may_contain_ci(text: str, low: str, needle_low: str) -> bool:
    """False only when a case-insensitive regex for ``needle_low`` (lowercase) cannot match ``text``
    (``low`` is text.lower())."""
    return needle_low in low or not needle_low.isascii() or (
        not text.isascii() and any(c in text for c in ODD_CASE))


@lru_cache(maxsize=4096)
def word_re(phrase: str) -> re.Pattern[str]:
    return re.compile(r"(?<!\w)" + re.escape(phrase) + r"(?!\w)", re.I)


# --------------------------------------------------------------------------- prefilter features

#: what the parsers above look for, as (regex, flags): a check that reads only money (dates, links...)
#: registers these with the prefilter (``Build.patterns``) and skips fields where none may match
FEATURES: dict[str, tuple[tuple[str, int], ...]] = {
    "money": ((MONEY_RE.pattern, MONEY_RE.flags), (MONEY_WORDS_RE.pattern, MONEY_WORDS_RE.flags)),
    "percent": ((PERCENT_RE.pattern, PERCENT_RE.flags), (PERCENT_WORDS_RE.pattern, PERCENT_WORDS_RE.flags)),
    "date": ((DATE_RE.pattern, DATE_RE.flags),),
    "url": ((URL_RE.pattern, URL_RE.flags),),
    "digit": ((r"\d", 0),),
}
