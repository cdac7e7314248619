"""What the facts checks share: the catalog's index (product names, claims), each message's
product mentions and unknown capitalized phrases, and the offers valid on the send date.

Words that are never products (sentence openers, month names, holidays...) are data:
``vocab/sentence-openers.txt``, ``vocab/capitalized-non-products.txt`` and
``vocab/name-connectors.txt`` in the rule folders, plus the campaign's own names (the brand).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import ahocorasick
from rapidfuzz import fuzz, process

from ...models import SEGMENTS, GateContext, Offer, Product
from .. import text as T
from ..engine.model import MODEL_FIELDS
from ..engine.registry import analysis
from ..engine.slots import brand_words
from ..engine.view import MessageView

FACT_FIELDS = MODEL_FIELDS
#: a capitalized phrase this close to a catalog name (rapidfuzz token sort ratio) is that product
FUZZY_MIN = 88


def _name_tokens(name: str) -> list[str]:
    return [t for t in re.split(r"[\s\-/]+", name) if t]


def _camel_split(tok: str) -> list[str]:
    return [p for p in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+[A-Za-z]*|[^\W\d_]+", tok) if p] or [tok]


_PIECE = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+[A-Za-z]*|[^\W\d_]+")
_TOKEN_BREAK = re.compile(r"[\s\-/]")
_APOSTROPHES = frozenset("'’")


def _gap_regex(gap: str) -> str:
    """What may stand between two words of a catalog name where the name has ``gap``: the name's own
    punctuation (each mark optional: "O'Malley's", "Best® Plus", "1/2", "5.11", "(Large)", "A5, 80
    sheets"), spaces and hyphens; between whole words (a space, hyphen or slash in the name) at least
    one of them, and a comma, colon or semicolon may be added or dropped."""
    marks = {c for c in gap if not c.isspace() and c not in "-\t"}
    if marks & _APOSTROPHES:
        marks |= _APOSTROPHES
    if _TOKEN_BREAK.search(gap):
        marks |= set(",:;")
        return "[ \\t\\-" + "".join(re.escape(c) for c in sorted(marks)) + "]+"
    if not marks:
        return r"[ \t\-]?"
    return "[ \\t\\-" + "".join(re.escape(c) for c in sorted(marks)) + "]*"


def _name_regex(name: str) -> re.Pattern[str]:
    """A catalog name as the text may write it: its words (and a camel-case name's parts) in order,
    with the name's punctuation between them optional (see ``_gap_regex``), the last word's plural."""
    pieces = [(m.start(), m.end()) for m in _PIECE.finditer(name)]
    if not pieces:
        return re.compile(r"(?<![\w])" + re.escape(name.strip()) + r"(?![\w])", re.I)
    parts = []
    for i, (a, b) in enumerate(pieces):
        if i:
            parts.append(_gap_regex(name[pieces[i - 1][1]:a]))
        piece = name[a:b]
        if i == len(pieces) - 1 and re.fullmatch(r"[A-Za-z]+", piece):
            if piece.lower().endswith("s") and not piece.lower().endswith("ss"):
                parts.append(re.escape(piece[:-1]) + "s?")
            else:
                parts.append(re.escape(piece) + "(?:s|es)?")
        else:
            parts.append(re.escape(piece))
    tail = name[pieces[-1][1]:].strip()
    if tail and not re.search(r"[\w\s]", tail):  # closing marks: "(Large)", '1/2"', "Gore-Tex®"
        parts.append("(?:" + re.escape(tail) + ")?")
    # (a product name never spans a line break, so a body's mentions are its lines')
    return re.compile(r"(?<![\w])" + "".join(parts) + r"(?![\w])", re.I)


_NOT_WORD = re.compile(r"[\W_]")
_NORM_SEP = re.compile(r"[\s\-_/]+")


def _key(s: str) -> str:
    """A name's first three letters or digits, lowercased (any script: "Müller", "Zoë")."""
    return _NOT_WORD.sub("", s.lower())[:3]


def norm(s: str) -> str:
    return _NORM_SEP.sub(" ", s.lower()).strip()


@dataclass
class Words:
    """The vocabularies the mention finder uses (per rule set and brand)."""

    openers: frozenset[str]      # sentence openers and other lead words ("Meet", "Shop", "Your")
    non_products: frozenset[str]  # capitalized words that are no product (months, holidays, the brand)
    connectors: frozenset[str]   # words inside product names ("of", "and", "&")
    greeting: re.Pattern[str]


@dataclass
class CatalogIndex:
    products: dict[str, Product]
    by_key: dict[str, list[tuple[str, re.Pattern[str]]]]
    tokens: dict[str, set[str]]          # product id -> lowercase name tokens (incl. camel parts)
    token_owner: dict[str, set[str]]     # token -> product ids
    names: dict[str, str]                # product id -> name
    support: dict[str, str]              # product id -> normalized claims + name
    claims_rx: re.Pattern[str] | None
    brand_caps: frozenset[str]
    words: Words
    name_list: list[str] = field(default_factory=list)
    pid_list: list[str] = field(default_factory=list)
    #: every name's regex opens with 3 ASCII letters/digits, so a mention can only start at a word
    #: start whose lowercased first 3 characters are a key (found with str.find, no regex scan)
    keys_only: bool = False
    starts_rx: re.Pattern[str] | None = None
    field_cache: dict[tuple[bool, bool, str], Any] = field(default_factory=dict)
    #: capitalized words -> (known partial product, words matched, fuzzy product) in this catalog
    phrase_cache: dict[tuple[str, ...], tuple[str | None, int, str | None]] = field(default_factory=dict)
    claim_span_cache: dict[str, tuple[tuple[int, int], ...]] = field(default_factory=dict)
    #: body line -> its sentences and phrase items (see _line_parts)
    line_cache: dict[str, Any] = field(default_factory=dict)
    claim_only_cache: dict[str, tuple[tuple[int, int], ...]] = field(default_factory=dict)
    claims_lower: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


def trie_source(words: list[str]) -> str:
    """A regex matching any of the words, shaped as a trie (one branch per next character)."""
    trie: dict[str, Any] = {}
    for w in words:
        d = trie
        for ch in w:
            d = d.setdefault(ch, {})
        d[""] = {}

    def build(d: dict[str, Any]) -> str:
        keys = sorted(k for k in d if k)
        if not keys:
            return ""
        alts = [re.escape(k) + build(d[k]) for k in keys]
        src = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        return f"(?:{src})?" if "" in d else src

    return build(trie)


def build_index(catalog: dict[str, Product], words: Words) -> CatalogIndex:
    by_key: dict[str, list[tuple[str, re.Pattern[str]]]] = {}
    tokens: dict[str, set[str]] = {}
    owner: dict[str, set[str]] = {}
    support: dict[str, str] = {}
    claims: set[str] = set()
    caps: set[str] = set()
    for pid, p in catalog.items():
        by_key.setdefault(_key(p.name), []).append((pid, _name_regex(p.name)))
        toks = set()
        for t in _name_tokens(p.name):
            toks.add(t.lower())
            for s in _camel_split(t):
                toks.add(s.lower())
            if len(t) >= 2 and t.isupper():
                caps.add(t)
        tokens[pid] = toks
        for t in toks:
            owner.setdefault(t, set()).add(pid)
        support[pid] = norm(" | ".join((*p.claims, p.name)))
        claims.update(c for c in p.claims if c.strip())
        for c in p.claims:
            caps.update(w for w in re.findall(r"\b[A-Z]{2,}\b", c))
    claims_rx = re.compile("|".join(T.word_re(c).pattern for c in sorted(claims, key=len, reverse=True)),
                           re.I) if claims else None
    keys = [k for k in by_key if k]
    starts = None
    if keys:
        starts = re.compile(r"(?<![\w])(?=[^\W_])(?:(?=" + trie_source(keys) +
                            r")|(?=[^\W_]{0,2}(?:[\W_]|$)))", re.I)
    names = {pid: p.name for pid, p in catalog.items()}
    keys_only = True
    for p in catalog.values():
        name_toks = _name_tokens(p.name)
        first = _camel_split(name_toks[0])[0] if name_toks else ""
        if not (len(first) >= 3 and first[:3].isascii() and first[:3].isalnum()):
            keys_only = False
    return CatalogIndex(products=catalog, by_key=by_key, tokens=tokens, token_owner=owner, names=names,
                        support=support, claims_rx=claims_rx, claims_lower=tuple(sorted({c.lower() for c in claims})),
                        brand_caps=frozenset(caps), words=words, starts_rx=starts, name_list=list(names.values()),
                        pid_list=list(names.keys()), keys_only=keys_only)


class Catalogs:
    """Per rule set: the index of each catalog (by content and brand) and the mention vocabularies."""

    def __init__(self, rules: Any) -> None:
        v = rules.vocab
        self.openers = frozenset(w.lower() for w in v.find("sentence-openers"))
        self.non_products = frozenset(w.lower() for w in v.find("capitalized-non-products"))
        self.connectors = frozenset(w.lower() for w in v.find("name-connectors"))
        self.by_id: dict[int, tuple[dict[str, Product], Any, CatalogIndex]] = {}
        self.by_content: dict[tuple[Any, ...], CatalogIndex] = {}

    def index(self, view: MessageView) -> CatalogIndex:
        catalog = view.ctx.catalog
        brand = view.ctx.brand
        hit = self.by_id.get(id(catalog))
        if hit is not None and hit[0] is catalog and hit[1] is brand:
            return hit[2]
        layout = view.layout
        key = (layout, brand.program, brand.sender,
               tuple((pid, p.name, p.category, p.price, p.in_stock, p.stock, p.claims) for pid, p in catalog.items()))
        idx = self.by_content.get(key)
        if idx is None:
            words = Words(openers=self.openers, non_products=self.non_products | brand_words(brand),
                          connectors=self.connectors, greeting=layout.greeting)
            idx = build_index(catalog, words)
            if len(self.by_content) > 1024:
                self.by_content.clear()
            self.by_content[key] = idx
        if len(self.by_id) > 8192:
            self.by_id.clear()
        self.by_id[id(catalog)] = (catalog, brand, idx)  # (holds both: their ids are not reused meanwhile)
        return idx


def catalog_index(view: MessageView) -> CatalogIndex:
    return view.rules.shared("catalogs", Catalogs).index(view)


_ASCII_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


def _name_starts(idx: CatalogIndex, text: str) -> list[int]:
    """Positions where a product name may start."""
    if idx.starts_rx is None:
        return []
    low = text.lower()
    if not idx.keys_only or len(low) != len(text):
        return [m.start() for m in idx.starts_rx.finditer(text)]
    out = []
    for k in idx.by_key:
        i = low.find(k)
        while i >= 0:
            if text[i] in _ASCII_ALNUM and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
                out.append(i)
            i = low.find(k, i + 1)
    out.sort()
    return out


# --------------------------------------------------------------------------- per message

@dataclass(slots=True)
class Mention:
    start: int
    end: int
    pid: str
    how: str  # exact | partial | partial1 (one word) | fuzzy


_LOWER_NEXT = re.compile(r"[ \t]+[a-z]")
#: a list number before a sentence ("(3) Sport climbers rate it"): the word after it opens the sentence
_ENUMERATOR = re.compile(r"^\s*(?:\(\d{1,2}\)|\d{1,2}[.)])\s*")


_VARIANT = re.compile(r"\s*(?:[,:;(]|\s[-–—]\s).*$")
#: words that introduce a size, count or model number at a name's end ("Gen 2", "Mk II", "Set of 3")
#: a short all-caps code ending a name ("XL", "II", "LED", "C+E")
_CODE = re.compile(r"[A-Z][A-Z+&/.]{0,4}")
_NUMBER_LABELS = frozenset(("gen", "mk", "mark", "model", "no", "size", "version", "ver", "v", "series", "vol",
                            "edition", "pack", "pk", "set", "of", "part", "type", "style", "count", "ct", "piece", "pieces",
                            "pc", "pcs"))


@lru_cache(maxsize=8192)
def kind_words(name: str) -> tuple[str, ...]:
    """A catalog name's words up to its kind (lowercase): without the variant after a comma, colon,
    parenthesis or dash, and without the sizes, counts and codes that end it."""
    words = _VARIANT.sub("", name).split()
    size = False
    while len(words) > 1:
        last = words[-1]
        if (any(c.isdigit() for c in last) or _CODE.fullmatch(last)
                or (size and last.lower().strip(".#") in _NUMBER_LABELS)):
            size = True  # a size, count or code, or the word that introduces one
        elif not size and len(words) > 2 and any(c.isdigit() for c in words[-2]) and (
                last[:1].islower() or last.lower() in _NUMBER_LABELS):
            pass  # a unit after a number: "4 oz", "80 sheets", "4 Pack"
        else:
            break
        words.pop()
    return tuple(x.lower().strip(",.()") for x in words)


def common_word(p: "Prep", label: str, m: Mention) -> bool:
    """A single capitalized word that is a catalog category, or capitalized only because it opens a
    sentence and reads as ordinary prose ("Running gear earns 3x points")."""
    text = dict(p.fields)[label]
    w = text[m.start:m.end].lower()
    cats = p.extra.get("cats")
    if cats is None:
        cats = p.extra["cats"] = {c for pr in p.idx.products.values() for c in (pr.category or "").lower().split()}
    if w in cats or w.rstrip("s") in cats:
        return True
    # the last word of a longer name is the kind of thing it is ("your Dobsonian" of "Nightwatch 8-inch
    # Dobsonian"): a kind, not that product, which its line name or its whole name would name; a size,
    # model or variant after it ("Dobsonian XL", "Filter, 1.25-inch", "Pad A5", "Tote (Large)") is not it
    words = kind_words(p.idx.products[m.pid].name)
    if len(words) >= 2 and words[-1] in (w, w.rstrip("s")):
        return True
    _, (sa, _sb) = p.sentence_of(label, m.start)
    opens = not _ENUMERATOR.sub("", text[sa:m.start]).strip(" \t\"'“‘(-—–*•")
    return opens and _LOWER_NEXT.match(text, m.end) is not None


@dataclass
class Prep:
    fields: list[tuple[str, str]]
    sents: dict[str, list[tuple[int, int]]]
    mentions: dict[str, list[Mention]]
    unknown: dict[str, list[tuple[int, int, str]]]
    idx: CatalogIndex
    valid_offers: list[Offer]
    rec_ids: set[str]
    #: catalog products the member already has, by the recommendations' purchase evidence
    #: ("bought Bluebird Condenser Microphone"): named as context, not recommended
    owned: frozenset[str] = frozenset()
    extra: dict[str, Any] = field(default_factory=dict)

    def aside(self, label: str, m: Mention) -> bool:
        """A one-word mention no fact is about: a common word opening a sentence ("Back in stock"), or
        what the member already bought ("your SM58", by the purchase evidence), unless it is a pick."""
        return m.how == "partial1" and ((m.pid in self.owned and m.pid not in self.rec_ids)
                                        or common_word(self, label, m))

    def all_mentioned(self) -> list[str]:
        seen: dict[str, None] = {}
        for ms in self.mentions.values():
            for m in ms:
                if m.how != "partial1":
                    seen[m.pid] = None
        return list(seen)

    def sentence_of(self, label: str, pos: int) -> tuple[int, tuple[int, int]]:
        ss = self.sents[label]
        for i, (a, b) in enumerate(ss):
            if a <= pos < b or (pos == b and i == len(ss) - 1):
                return i, (a, b)
        return -1, (pos, pos)

    def attribute(self, label: str, a: int, b: int) -> list[str]:
        """Products a fact at text[a:b] is about: the nearest mention before it in the same sentence,
        else after it, else the last mention in earlier sentences of the field, else every product
        mentioned in the message, else the recommendations."""
        i, (sa, sb) = self.sentence_of(label, a)
        ms = [m for m in self.mentions.get(label, []) if not self.aside(label, m)]
        before = [m for m in ms if sa <= m.start and m.end <= a]
        if before:
            return [before[-1].pid]
        after = [m for m in ms if b <= m.start and m.end <= sb]
        if after:
            return [after[0].pid]
        earlier = [m for m in ms if m.end <= sa]
        if earlier:
            return [earlier[-1].pid]
        allm = self.all_mentioned()
        if allm:
            return allm
        return [p for p in self.rec_ids if p in self.idx.products]

    def sentence_products(self, label: str, a: int) -> list[str]:
        _, (sa, sb) = self.sentence_of(label, a)
        return [m.pid for m in self.mentions.get(label, []) if sa <= m.start < sb and not self.aside(label, m)]

    def sentence_text(self, label: str, text: str, pos: int, with_prev: bool = False) -> str:
        i, (a, b) = self.sentence_of(label, pos)
        if with_prev and i > 0:
            a = self.sents[label][i - 1][0]
        return text[a:b]

    def name(self, pid: str) -> str:
        return self.idx.names.get(pid, pid)


# "[A-Z][\w'’&.]*[\w]|[A-Z]|\d+(?:\.\d+)?[A-Za-z]+[\w]*", written to open with one character class
_CAP_TOK = r"(?:[A-Z\d](?:(?<=[A-Z])(?:[\w'’&.]*[\w])?|(?<![A-Z])\d*(?:\.\d+)?[A-Za-z]+[\w]*))"
_CAP_PHRASE = re.compile(_CAP_TOK + r"(?:[ \t]+(?:(?:of|and|&|the|for|de|with|by|n’|n')[ \t]+)?" + _CAP_TOK + r")*")
_NUMS = re.compile(r"\d+(?:\.\d+)?")
_ORDINAL = re.compile(r"\d{1,2}(?:st|nd|rd|th)?[.,!?:;]?$", re.I)


def _cap_phrases(text: str, words: Words) -> Iterator[tuple[int, int, list[str]]]:
    lead, trail = words.openers, words.connectors
    for m in _CAP_PHRASE.finditer(text):
        g = m.group()
        if " " not in g and "\t" not in g:  # one word (the common case)
            low = g.lower()
            if low.strip(".,") in lead or low in trail:
                continue
            yield m.start(), m.end(), [g]
            continue
        ws = g.split()
        n = len(ws)
        i = 0
        while i < n and ws[i].lower().strip(".,") in lead:
            i += 1
        j = n
        while j > i and ws[j - 1].lower() in trail:
            j -= 1
        if i >= j:
            continue
        if i == 0 and j == n:
            yield m.start(), m.end(), ws
            continue
        offs = []
        pos = 0
        for w in ws:
            pos = g.index(w, pos)
            offs.append(pos)
            pos += len(w)
        base = m.start()
        yield base + offs[i], base + offs[j - 1] + len(ws[j - 1]), ws[i:j]


def _known_partial(idx: CatalogIndex, words: list[str]) -> tuple[str | None, int]:
    """A product whose name contains every (capitalized) word; (pid, number of words matched)."""
    lw = [w.lower().strip("’'s") if w.lower().endswith(("'s", "’s")) else w.lower() for w in words]
    lw = [w for w in lw if w not in idx.words.connectors]
    if not lw or (len(lw) == 1 and (lw[0][:1].isdigit() or len(lw[0]) < 2)):
        return None, 0  # a size, count, model number or letter alone ("2x", "24H", "C") names no product
    cands: set[str] | None = None
    for w in lw:
        owners = idx.token_owner.get(w) or idx.token_owner.get(w.rstrip("s")) or idx.token_owner.get(w + "s")
        if not owners:
            return None, 0
        cands = set(owners) if cands is None else cands & owners
        if not cands:
            return None, 0
    if cands and len(cands) == 1:
        return next(iter(cands)), len(lw)
    return None, 0


_TITLE_WORD = re.compile(r"[A-Za-z][\w'’]*")


def _title_case(text: str) -> bool:
    ws = _TITLE_WORD.findall(text)
    if len(ws) < 3:
        return False
    return sum(1 for w in ws if w[0].isupper()) / len(ws) >= 0.6


def _stop_word(w: str, stop: frozenset[str]) -> bool:
    """A lowercase word that is a never-a-product word, or its plural or possessive ("Sundays",
    "Sunday's" of "Sunday"; the brand's)."""
    w = w.strip(".,!?:;")
    if w in stop:
        return True
    if w.endswith(("'s", "’s")):
        return w[:-2] in stop
    return w.endswith("s") and w[:-1] in stop


def _phrase_items(idx: CatalogIndex, text: str, title: bool) -> list[tuple[int, int, str, Any]]:
    """The capitalized phrases of a text that are no stop words, each with what it is: ("mention",
    (pid, how)) or ("unknown", phrase) (pure in the index, the text and ``title``)."""
    names = idx.name_list
    pids = idx.pid_list
    stop, lead = idx.words.non_products, idx.words.openers
    phrase_cache = idx.phrase_cache
    out: list[tuple[int, int, str, Any]] = []
    for a, b, words in _cap_phrases(text, idx.words):
        if len(words) == 1:
            w = words[0].lower()
            if _stop_word(w, stop) or w in lead:
                continue
        elif all(_stop_word(w.lower(), stop) or w.lower() in lead or _ORDINAL.match(w) for w in words):
            continue  # stop words, month names and day numbers ("October 12th") are no product
        key = tuple(words)
        got = phrase_cache.get(key)
        if got is None:  # pure in the catalog and the words: product names and greetings repeat
            pid, n = _known_partial(idx, words)
            fuzzy = None
            if pid is None and len(words) >= 2 and names:
                best = process.extractOne(" ".join(words), names, scorer=fuzz.token_sort_ratio)
                if best and best[1] >= FUZZY_MIN:
                    fuzzy = pids[best[2]]
            if len(phrase_cache) > 8192:
                phrase_cache.clear()
            got = phrase_cache[key] = (pid, n, fuzzy)
        pid, n, fuzzy = got
        if pid is not None:
            out.append((a, b, "mention", (pid, "partial" if n >= 2 else "partial1")))
            continue
        phrase = " ".join(words)
        if fuzzy is not None:
            nums = _NUMS.findall(phrase)
            if nums and nums != _NUMS.findall(idx.products[fuzzy].name):
                out.append((a, b, "unknown", phrase))  # a near-miss with another size or count: a variant
                continue
            out.append((a, b, "mention", (fuzzy, "fuzzy")))
            continue
        if len(words) >= 2 and not title:
            out.append((a, b, "unknown", phrase))
        elif len(words) >= 1 and title:
            out.append((a, b, "unknown", "\x00" + phrase))  # title-case field: only flagged next to a price
    return out


def _line_parts(idx: CatalogIndex, line: str) -> tuple[list[tuple[int, int]], list[tuple[int, int, str, Any]],
                                                       list[tuple[int, int, str]]]:
    """A body line's sentences, phrase items and catalog names (cached per catalog and line:
    product lines, the greeting and the sign-off repeat from message to message)."""
    got = idx.line_cache.get(line)
    if got is None:
        got = (T.split_sentences(line), _phrase_items(idx, line, False), _exact_mentions(idx, line))
        if len(idx.line_cache) > 16384:
            idx.line_cache.clear()
        idx.line_cache[line] = got
    return got


def _body_parts(idx: CatalogIndex, text: str) -> tuple[list[tuple[int, int]], list[tuple[int, int, str, Any]],
                                                       list[tuple[int, int, str]]]:
    """A body's sentences, phrase items and catalog names, line by line: newlines are hard sentence
    boundaries and no capitalized phrase or product name crosses one, so the body's are its lines'."""
    sents: list[tuple[int, int]] = []
    items: list[tuple[int, int, str, Any]] = []
    names: list[tuple[int, int, str]] = []
    pos = 0
    for line in text.split("\n"):
        if line:
            ls, li, ln = _line_parts(idx, line)
            if pos:
                sents.extend((a + pos, b + pos) for a, b in ls)
                items.extend((a + pos, b + pos, k, v) for a, b, k, v in li)
                names.extend((a + pos, b + pos, p) for a, b, p in ln)
            else:
                sents.extend(ls)
                items.extend(li)
                names.extend(ln)
        pos += len(line) + 1
    return sents, items, names


def _exact_mentions(idx: CatalogIndex, text: str) -> list[tuple[int, int, str]]:
    """(start, end, product id) of each catalog name in the text, longest first, left to right."""
    ms: list[tuple[int, int, str]] = []
    pos = 0
    by_key = idx.by_key
    for st in _name_starts(idx, text):
        if st < pos:
            continue
        k3 = text[st:st + 3].lower()
        cands = by_key.get(k3 if k3.isalnum() and len(k3) == 3 else _key(text[st:st + 16]))
        if not cands:
            continue
        best = None
        for pid, rx in cands:
            mm = rx.match(text, st)
            if mm and (best is None or mm.end() > best[1]):
                best = (mm.start(), mm.end(), pid)
        if best:
            ms.append(best)
            pos = best[1]
    return ms


def analyse_field(idx: CatalogIndex, label: str, text: str) -> tuple[list[tuple[int, int]], list[Mention],
                                                                    list[tuple[int, int, str]]]:
    """Sentences, product mentions and unknown capitalized phrases of one field (pure in idx, label, text)."""
    if label == "body":
        sents, items, exact_ms = _body_parts(idx, text)
    else:
        sents = T.split_sentences(text)
        items = _phrase_items(idx, text, _title_case(text))
        exact_ms = _exact_mentions(idx, text)
    ms = [Mention(a, b, pid, "exact") for a, b, pid in exact_ms]
    unk: list[tuple[int, int, str]] = []
    exact = [(a, b) for a, b, _ in exact_ms]
    greeting_end = -2  # the greeting line's end in a body (-1: no newline), once known
    for a, b, kind, what in items:
        if exact and any(s < b and a < e for s, e in exact):
            continue
        if label == "body" and a < 40:
            if greeting_end == -2:
                first_nl = text.find("\n")
                greeting_end = (first_nl if idx.words.greeting.match(text[:first_nl if first_nl >= 0 else None])
                                else -3)
            if greeting_end != -3 and (greeting_end < 0 or a < greeting_end):
                continue  # the greeting line holds the member's name
        if kind == "mention":
            ms.append(Mention(a, b, what[0], what[1]))
        else:
            unk.append((a, b, what))
    ms.sort(key=lambda m: m.start)
    return sents, ms, unk


_SEGMENTS_LOWER = {s.lower(): s for s in SEGMENTS}
_TIER_AUDIENCE = re.compile(r"tier\s*([123])(\+)?")


def audience_ok(o: Offer, ctx: GateContext, churn: frozenset[str] = frozenset()) -> bool:
    """Whether the offer is open to the member: everyone, a segment, a tier ("tier2+"), or a
    churn-prevention audience (``churn``: those names; tier 3 only)."""
    a = (o.audience or "all").strip().lower()
    if a in ("", "all", "everyone", "members", "all members", "all_members"):
        return True
    if a in churn:
        return ctx.member.opt_in_tier == 3
    if a in _SEGMENTS_LOWER or a.replace("_", " ") in _SEGMENTS_LOWER:
        return ctx.member.segment.lower() == a.replace("_", " ")
    m = _TIER_AUDIENCE.fullmatch(a)
    if m:
        t = int(m.group(1))
        return ctx.member.opt_in_tier >= t if m.group(2) else ctx.member.opt_in_tier == t
    return True


class _Offers:
    def __init__(self, rules: Any) -> None:
        self.cache: dict[tuple[Any, ...], tuple[Any, list[Offer]]] = {}
        self.churn = frozenset(a.lower() for a in rules.vocab.find("churn-prevention-audiences"))


def valid_offers(view: MessageView) -> list[Offer]:
    """The offers valid on the send date and open to the member (per offer list, date, segment and tier)."""
    ctx = view.ctx
    offers = view.rules.shared("valid_offers", _Offers)
    cache = offers.cache
    m = ctx.member
    key = (id(ctx.offers), ctx.send_date, m.segment, m.opt_in_tier)
    got = cache.get(key)
    if got is None or got[0] is not ctx.offers:
        if len(cache) > 4096:
            cache.clear()
        got = cache[key] = (ctx.offers, [o for o in ctx.offers
                                         if o.valid_on(ctx.send_date) and audience_ok(o, ctx, offers.churn)])
    return list(got[1])


@analysis("facts")
def prep_analysis(view: MessageView) -> Prep:
    ctx = view.ctx
    idx = catalog_index(view)
    fields = view.fields(FACT_FIELDS)
    sents: dict[str, list[tuple[int, int]]] = {}
    mentions: dict[str, list[Mention]] = {}
    unknown: dict[str, list[tuple[int, int, str]]] = {}
    cache = idx.field_cache
    for label, text in fields:
        key = (label == "body", label.startswith("explanations"), text)
        got = cache.get(key)
        if got is None:
            if len(cache) > 8192:
                cache.clear()
            got = cache[key] = analyse_field(idx, "body" if key[0] else label, text)
        sents[label], mentions[label], unknown[label] = got[0], list(got[1]), got[2]
    rec_ids = {r.product_id for r in ctx.recommendations}
    if ctx.hero_product_id:
        rec_ids.add(ctx.hero_product_id)
    owned = _owned(idx, ctx.recommendations)
    return Prep(fields=fields, sents=sents, mentions=mentions, unknown=unknown, idx=idx,
                valid_offers=valid_offers(view), rec_ids=rec_ids, owned=owned)


def _owned(idx: CatalogIndex, recs: Any) -> frozenset[str]:
    details = [e.detail.lower() for r in recs for e in r.evidence if e.source == "purchase" and e.detail]
    if not details:
        return frozenset()
    heads = {pid: re.split(r"[,(]", name, maxsplit=1)[0].strip().lower() for pid, name in idx.names.items()}
    return frozenset(pid for pid, head in heads.items()  # the name up to its size or count ("..., 100 Prong")
                     if len(head) >= 6 and any(head in d for d in details))


def prep(view: MessageView) -> Prep:
    return view.analysis("facts")  # type: ignore[no-any-return]


def in_catalog_name(p: Prep, label: str, a: int, b: int) -> bool:
    """Whether text[a:b] lies inside a catalog name the field writes out in full: a size, model
    number or edition there ("Tote 4/5", "Kettle 12/24", "Headlamp 7:30") is the product's, not a
    date or a time."""
    return any(m.how == "exact" and m.start <= a and b <= m.end for m in p.mentions.get(label, ()))


_QUOTED = re.compile(r"[\"“]([^\"”]{2,80})[\"”]")


def _quotes_claim(idx: CatalogIndex, quoted: str) -> bool:
    """A quotation whose words are part of a catalog claim (the review's words the claim quotes:
    'rated "best value pump" by Sea Kayak Review'): the catalog's words, not the copy's."""
    q = " ".join(quoted.lower().strip(" .,;:!?").split())
    return len(q) >= 6 and any(q in " ".join(c.split()) for c in idx.claims_lower)


def claim_spans(idx: CatalogIndex, text: str) -> tuple[tuple[int, int], ...]:
    """Catalog claims in a text, and quotations holding one (pure in the catalog and the text: cached)."""
    got = idx.claim_span_cache.get(text)
    if got is None:
        rx = idx.claims_rx
        assert rx is not None
        out = [m.span() for m in rx.finditer(text)]
        if '"' in text or "“" in text:  # a quoted catalog claim: the whole quotation is protected
            out.extend(m.span() for m in _QUOTED.finditer(text) if rx.search(m.group(1)) or _quotes_claim(idx, m.group(1)))
        got = tuple(out)
        if len(idx.claim_span_cache) > 8192:
            idx.claim_span_cache.clear()
        idx.claim_span_cache[text] = got
    return got


@analysis("protected_spans")
def protected_spans(view: MessageView, label: str) -> list[tuple[int, int]]:
    """Catalog names and catalog claims in a field: brand rules leave them alone."""
    text = view.text(label)
    idx = catalog_index(view)
    spans: list[tuple[int, int]] = []
    if label in ("subject", "preheader", "body", "cta_text") or label.startswith("explanations["):
        spans.extend((m.start, m.end) for m in prep(view).mentions.get(label, ()))
    if idx.claims_rx is not None:
        spans.extend(claim_spans(idx, text))
    return spans


def _is_word(c: str) -> bool:
    """What ``\\w`` matches."""
    return c.isalnum() or c == "_"


def catalog_claim_spans(idx: CatalogIndex, text: str) -> tuple[tuple[int, int], ...]:
    """Catalog claims in a text (a claim never spans a line break: found line by line, cached)."""
    if "\n" not in text:
        return _catalog_claim_spans(idx, text)
    out: list[tuple[int, int]] = []
    pos = 0
    for line in text.split("\n"):
        if line:
            got = _catalog_claim_spans(idx, line)
            if got:
                out.extend((a + pos, b + pos) for a, b in got)
        pos += len(line) + 1
    return tuple(out)


def _catalog_claim_spans(idx: CatalogIndex, text: str) -> tuple[tuple[int, int], ...]:
    cache = idx.claim_only_cache
    got = cache.get(text)
    if got is None:
        assert idx.claims_rx is not None
        ac = idx.extra.get("claims_ac")
        if ac is None:
            ac = idx.extra["claims_ac"] = ahocorasick.Automaton()
            for c in idx.claims_lower:
                ac.add_word(c, c)
            ac.make_automaton()
        if T.safe_lower_ok(text):
            # claims_rx (longest claim first, whole words, any case) on text whose lowercase keeps
            # every position: at each start the longest claim that is a whole word there, then on
            # from its end, leftmost first (what its finditer returns)
            best: dict[int, int] = {}
            for end, c in ac.iter(text.lower()):
                a, b = end - len(c) + 1, end + 1
                if (a == 0 or not _is_word(text[a - 1])) and (b == len(text) or not _is_word(text[b])):
                    if b > best.get(a, -1):
                        best[a] = b
            out = []
            nxt = 0
            for a in sorted(best):
                if a >= nxt:
                    out.append((a, best[a]))
                    nxt = best[a]
            got = tuple(out)
        else:
            got = tuple(m.span() for m in idx.claims_rx.finditer(text))
        if len(cache) > 8192:
            cache.clear()
        cache[text] = got
    return got
