"""Fact-check gate: products, prices, offers, dates, claims, stock and urgency against the
catalog and the offers valid on the send date.

The vocabularies (claims, product nouns, urgency phrases) are data in ``compliance/facts.yaml``
(each check reads its rule's ``params``); this module holds the logic.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from functools import lru_cache
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz, process

from ..models import SEGMENTS, GateContext, Offer, Product
from . import text as T
from .casefold import fold, safe_lower
from .rules import DIGITS, Alt, Hit, MessageView, Rule, register_check

FACT_FIELDS = T.MODEL_FIELDS


# --------------------------------------------------------------------------- catalog index (per catalog)

def _name_tokens(name: str) -> list[str]:
    return [t for t in re.split(r"[\s\-/]+", name) if t]


def _camel_split(tok: str) -> list[str]:
    return [p for p in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+[A-Za-z]*|[^\W\d_]+", tok) if p] or [tok]


def _name_regex(name: str) -> re.Pattern[str]:
    toks = _name_tokens(name)
    parts = []
    for i, tok in enumerate(toks):
        sub = _camel_split(tok)
        last = i == len(toks) - 1
        pieces = [re.escape(s) for s in sub]
        if last:
            lp = sub[-1]
            if re.fullmatch(r"[A-Za-z]+", lp) and lp.lower().endswith("s") and not lp.lower().endswith("ss"):
                pieces[-1] = re.escape(lp[:-1]) + "s?"
            elif re.fullmatch(r"[A-Za-z]+", lp):
                pieces[-1] = re.escape(lp) + "(?:s|es)?"
        parts.append(r"[\s\-]?".join(pieces))
    return re.compile(r"(?<![\w])" + r"[\s\-]+".join(parts) + r"(?![\w])", re.I)


_NOT_ALNUM = re.compile(r"[^a-z0-9]")
_NORM_SEP = re.compile(r"[\s\-_/]+")


def _key(s: str) -> str:
    return _NOT_ALNUM.sub("", s.lower())[:3]


def _norm(s: str) -> str:
    return _NORM_SEP.sub(" ", s.lower()).strip()


@dataclass
class CatalogIndex:
    products: dict[str, Product]
    by_key: dict[str, list[tuple[str, re.Pattern[str]]]]
    tokens: dict[str, set[str]]          # product id -> lowercase name tokens (incl. camel parts)
    token_owner: dict[str, set[str]]     # token -> product ids
    names: dict[str, str]                # product id -> name
    support: dict[str, str]              # product id -> normalized claims + name
    claims_rx: Any  # re.Pattern or casefold.Folded, None without claims
    brand_caps: frozenset[str]
    #: word starts where a product name may begin: a name key (first 3 alphanumerics) or a
    #: start whose first 3 characters aren't all ASCII alphanumerics (the key is then computed)
    starts_rx: re.Pattern[str] | None = None
    name_list: list[str] = field(default_factory=list)
    pid_list: list[str] = field(default_factory=list)
    field_cache: dict[tuple[bool, bool, str], Any] = field(default_factory=dict)
    #: every name's regex opens with 3 ASCII letters/digits, so a mention can only start at a word
    #: start whose lowercased first 3 characters are a key (found with str.find, no regex scan)
    keys_only: bool = False
    #: capitalized words -> (known partial product, words matched, fuzzy product) in this catalog
    phrase_cache: dict[tuple[str, ...], tuple[str | None, int, str | None]] = field(default_factory=dict)
    #: text -> spans of catalog claims (and quotations holding one) in it
    claim_span_cache: dict[str, tuple[tuple[int, int], ...]] = field(default_factory=dict)
    #: text -> spans of catalog claims in it
    claim_only_cache: dict[str, tuple[tuple[int, int], ...]] = field(default_factory=dict)
    #: every catalog claim, lowercase (one of them occurs in a text whenever claims_rx matches there)
    claims_lower: tuple[str, ...] = ()


#: id(catalog) -> (catalog, index built for its content, index whose ``products`` is this very dict)
_CAT_CACHE: dict[int, tuple[dict[str, Product], CatalogIndex, CatalogIndex]] = {}


_CAT_BY_CONTENT: dict[tuple[Any, ...], CatalogIndex] = {}


def catalog_indexes(catalog: dict[str, Product]) -> tuple[CatalogIndex, CatalogIndex]:
    """(the shared index for the catalog's content, the same index over this very dict), cached on
    the dict's identity (the cache holds the dict, so its id is not reused) and, failing that, on its content."""
    hit = _CAT_CACHE.get(id(catalog))
    if hit is not None and hit[0] is catalog:
        return hit[1], hit[2]
    key = tuple((pid, p.name, p.category, p.price, p.in_stock, p.stock, p.claims) for pid, p in catalog.items())
    idx = _CAT_BY_CONTENT.get(key)
    if idx is None:
        idx = _build_index(catalog)
        if len(_CAT_BY_CONTENT) > 1024:
            _CAT_BY_CONTENT.clear()
        _CAT_BY_CONTENT[key] = idx
    own = idx if idx.products is catalog else CatalogIndex(**{**idx.__dict__, "products": catalog})
    if len(_CAT_CACHE) > 8192:
        _CAT_CACHE.clear()
    _CAT_CACHE[id(catalog)] = (catalog, idx, own)
    return idx, own


def catalog_index(catalog: dict[str, Product]) -> CatalogIndex:
    """The per-catalog index (see :func:`catalog_indexes`)."""
    return catalog_indexes(catalog)[0]


def _build_index(catalog: dict[str, Product]) -> CatalogIndex:
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
        support[pid] = _norm(" | ".join((*p.claims, p.name)))
        claims.update(c for c in p.claims if c.strip())
        for c in p.claims:
            caps.update(w for w in re.findall(r"\b[A-Z]{2,}\b", c))
    claims_rx = fold(re.compile("|".join(T.word_re(c).pattern for c in sorted(claims, key=len, reverse=True)),
                                re.I)) if claims else None
    keys = [k for k in by_key if k]
    starts = None
    if keys:
        from .rules import _trie_source
        starts = re.compile(r"(?<![\w])(?=[A-Za-z0-9])(?:(?=" + _trie_source(keys) +
                            r")|(?=[A-Za-z0-9]{0,2}(?:[^A-Za-z0-9]|$)))", re.I)
    names = {pid: p.name for pid, p in catalog.items()}
    keys_only = True
    for p in catalog.values():
        toks = _name_tokens(p.name)
        first = _camel_split(toks[0])[0] if toks else ""
        if not (len(first) >= 3 and first[:3].isascii() and first[:3].isalnum()):
            keys_only = False
    return CatalogIndex(products=catalog, by_key=by_key, tokens=tokens, token_owner=owner,
                        names=names, support=support, claims_rx=claims_rx, claims_lower=tuple(sorted({c.lower() for c in claims})),
                        brand_caps=frozenset(caps), starts_rx=starts, name_list=list(names.values()),
                        pid_list=list(names.keys()), keys_only=keys_only)


_ASCII_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


def _name_starts(idx: CatalogIndex, text: str) -> list[int]:
    """Positions where a product name may start (the positions ``idx.starts_rx`` finds, or a superset
    whose extra positions hold no key, so that no name matches there)."""
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


# --------------------------------------------------------------------------- per message preparation

@dataclass(slots=True)
class Mention:
    start: int
    end: int
    pid: str
    how: str  # exact | partial | fuzzy


@dataclass
class Prep:
    fields: list[tuple[str, str]]
    sents: dict[str, list[tuple[int, int]]]
    mentions: dict[str, list[Mention]]
    unknown: dict[str, list[tuple[int, int, str]]]
    idx: CatalogIndex
    valid_offers: list[Offer]
    rec_ids: set[str]
    extra: dict[str, Any] = field(default_factory=dict)

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
        ms = self.mentions.get(label, [])
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
        return [m.pid for m in self.mentions.get(label, []) if sa <= m.start < sb]


_WSTART = re.compile(r"(?<![\w])[A-Za-z0-9]")
# "[A-Z][\w'’&.]*[\w]|[A-Z]|\d+(?:\.\d+)?[A-Za-z]+[\w]*", written to open with one character class so
# that a search skips lowercase text without trying each alternative
_CAP_TOK = r"(?:[A-Z\d](?:(?<=[A-Z])(?:[\w'’&.]*[\w])?|(?<![A-Z])\d*(?:\.\d+)?[A-Za-z]+[\w]*))"
_CAP_PHRASE = re.compile(_CAP_TOK + r"(?:[ \t]+(?:(?:of|and|&|the|for|de|with|by|n’|n')[ \t]+)?" + _CAP_TOK + r")*")
_LEAD_STOP = frozenset("""
a an the meet our your my try grab shop get this these that those hi hello hey dear new take earn save enjoy discover
explore say start treat gift gifts give pick picks choose find pair add check see stay keep make bring warm fresh welcome
thanks thank happy with for and or but so if when it it's its we we're we've we'll you you're you'll you've they they're
here here's there there's what why how ready all every each both one two plus also just now then still even only more
most great good nice because since as at in on of to by from up member members shop sale introducing hello love loving
looking look wrap wrapped cozy cosy layer layers perfect best top favorite favourite free double triple extra bonus
don't do is are was be it’s we’re you’re here’s there’s let's let’s p.s ps note hint tip tips like need needs want
spring summer fall autumn winter season seasonal holiday holidays weekend week day today tonight this
""".split())
_STOP_WORDS = frozenset("""
athenaplus athena retail group team january february march april may june july august september october november
december jan feb mar apr jun jul aug sep sept oct nov dec monday tuesday wednesday thursday friday saturday sunday
black cyber christmas eve year years new day valentine valentine's valentine’s mother's mother’s father's father’s
thanksgiving halloween easter hanukkah diwali kwanzaa holidays holiday season happy merry usd us usa spf upf ok
""".split())


_NUMS = re.compile(r"\d+(?:\.\d+)?")
_ORDINAL = re.compile(r"\d{1,2}(?:st|nd|rd|th)?[.,!?:;]?$", re.I)
_TRAIL_STOP = frozenset({"and", "of", "the", "for", "with", "by", "&", "de"})


def _cap_phrases(text: str) -> Iterator[tuple[int, int, list[str]]]:
    for m in _CAP_PHRASE.finditer(text):
        g = m.group()
        if " " not in g and "\t" not in g:  # one word (the common case)
            low = g.lower()
            if low.strip(".,") in _LEAD_STOP or low in _TRAIL_STOP:
                continue  # a lead or trailing stop word: nothing is left
            yield m.start(), m.end(), [g]
            continue
        # words are separated by [ \t]+ and hold no other whitespace: g.split() are its \S+ runs
        words = g.split()
        n = len(words)
        i = 0
        while i < n and words[i].lower().strip(".,") in _LEAD_STOP:
            i += 1
        j = n
        while j > i and words[j - 1].lower() in _TRAIL_STOP:
            j -= 1
        if i >= j:
            continue
        if i == 0 and j == n:
            yield m.start(), m.end(), words
            continue
        offs = []
        pos = 0
        for w in words:
            pos = g.index(w, pos)
            offs.append(pos)
            pos += len(w)
        base = m.start()
        yield base + offs[i], base + offs[j - 1] + len(words[j - 1]), words[i:j]


def _known_partial(idx: CatalogIndex, words: list[str]) -> tuple[str | None, int]:
    """A product whose name contains every (capitalized) word; (pid, number of words matched)."""
    lw = [w.lower().strip("’'s") if w.lower().endswith(("'s", "’s")) else w.lower() for w in words]
    lw = [w for w in lw if w not in {"of", "and", "&", "the", "for", "de", "with", "by"}]
    if not lw:
        return None, 0
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


_NONSPACE = re.compile(r"\S+")
_TITLE_WORD = re.compile(r"[A-Za-z][\w'’]*")


def _title_case(text: str) -> bool:
    words = _TITLE_WORD.findall(text)
    if len(words) < 3:
        return False
    caps = sum(1 for w in words if w[0].isupper())
    return caps / len(words) >= 0.6


_SEGMENTS_LOWER = {s.lower(): s for s in SEGMENTS}


def audience_ok(o: Offer, ctx: GateContext) -> bool:
    a = (o.audience or "all").strip().lower()
    if a in ("", "all", "everyone", "members", "all members", "all_members"):
        return True
    segs = _SEGMENTS_LOWER
    if a in segs or a.replace("_", " ") in segs:
        return ctx.member.segment.lower() == a.replace("_", " ")
    m = re.fullmatch(r"tier\s*([123])(\+)?", a)
    if m:
        t = int(m.group(1))
        return ctx.member.opt_in_tier >= t if m.group(2) else ctx.member.opt_in_tier == t
    return True


def _analyse_field(idx: CatalogIndex, label: str, text: str) -> tuple[list[tuple[int, int]], list[Mention],
                                                                   list[tuple[int, int, str]]]:
    """Sentences, product mentions and unknown capitalized phrases of one field (pure in idx, label, text)."""
    names = idx.name_list
    pids = idx.pid_list
    sents = T.split_sentences(text)
    ms: list[Mention] = []
    pos = 0
    by_key = idx.by_key
    for st in _name_starts(idx, text):
        if st < pos:
            continue
        k3 = text[st:st + 3].lower()
        cands = by_key.get(k3 if k3.isalnum() and len(k3) == 3 else _key(text[st:st + 6]))
        if not cands:
            continue
        best = None
        for pid, rx in cands:
            mm = rx.match(text, st)
            if mm and (best is None or mm.end() > best[1]):
                best = (mm.start(), mm.end(), pid)
        if best:
            ms.append(Mention(best[0], best[1], best[2], "exact"))
            pos = best[1]
    unk: list[tuple[int, int, str]] = []
    phrase_cache = idx.phrase_cache
    title = label != "body" and _title_case(text)
    exact = [(m.start, m.end) for m in ms]  # every mention so far is exact
    greeting_end = -2  # the greeting line's end in a body (-1: no newline), once known
    for a, b, words in _cap_phrases(text):
        if exact and any(s < b and a < e for s, e in exact):
            continue
        if len(words) == 1:
            w = words[0].lower()
            if w.strip(".,!?:;") in _STOP_WORDS or w in _LEAD_STOP:
                continue
        elif all(w.lower().strip(".,!?:;") in _STOP_WORDS or w.lower() in _LEAD_STOP or _ORDINAL.match(w)
                 for w in words):
            continue  # stop words, month names and day numbers ("October 12th") are no product
        if label == "body" and a < 40:
            if greeting_end == -2:
                first_nl = text.find("\n")
                greeting_end = (first_nl if T.GREETING_RE.match(text[:first_nl if first_nl >= 0 else None])
                                else -3)
            if greeting_end != -3 and (greeting_end < 0 or a < greeting_end):
                continue  # the greeting line holds the member's name
        key = tuple(words)
        got = phrase_cache.get(key)
        if got is None:  # pure in the catalog and the words: product names and greetings repeat
            pid, n = _known_partial(idx, words)
            fuzzy = None
            if pid is None and len(words) >= 2 and names:
                best = process.extractOne(" ".join(words), names, scorer=fuzz.token_sort_ratio)
                if best and best[1] >= 88:
                    fuzzy = pids[best[2]]
            if len(phrase_cache) > 8192:
                phrase_cache.clear()
            got = phrase_cache[key] = (pid, n, fuzzy)
        pid, n, fuzzy = got
        if pid is not None:
            ms.append(Mention(a, b, pid, "partial" if n >= 2 else "partial1"))
            continue
        phrase = " ".join(words)
        if fuzzy is not None:
            nums = _NUMS.findall(phrase)
            if nums and nums != _NUMS.findall(idx.products[fuzzy].name):
                unk.append((a, b, phrase))  # a near-miss with another size or count: a variant not in the catalog
                continue
            ms.append(Mention(a, b, fuzzy, "fuzzy"))
            continue
        if len(words) >= 2 and not title:
            unk.append((a, b, phrase))
        elif len(words) >= 1 and title:
            unk.append((a, b, "\x00" + phrase))  # title-case field: only flagged next to a price
    ms.sort(key=lambda m: m.start)
    return sents, ms, unk


def _valid_offers(ctx: GateContext) -> list[Offer]:
    """The offers valid on the send date and open to the member (per offer list, date, segment and
    tier: every member of a campaign shares the list)."""
    m = ctx.member
    key = (id(ctx.offers), ctx.send_date, m.segment, m.opt_in_tier)
    got = _VALID_CACHE.get(key)
    if got is None or got[0] is not ctx.offers:
        if len(_VALID_CACHE) > 4096:
            _VALID_CACHE.clear()
        got = _VALID_CACHE[key] = (ctx.offers, [o for o in ctx.offers if o.valid_on(ctx.send_date) and audience_ok(o, ctx)])
    return list(got[1])


_VALID_CACHE: dict[tuple[Any, ...], tuple[Any, list[Offer]]] = {}


def prep(view: MessageView) -> Prep:
    p = view.cache.get("facts")
    if p is not None:
        return p
    ctx = view.ctx
    base, idx = catalog_indexes(ctx.catalog)
    fields = view.fields(FACT_FIELDS)
    sents: dict[str, list[tuple[int, int]]] = {}
    mentions: dict[str, list[Mention]] = {}
    unknown: dict[str, list[tuple[int, int, str]]] = {}
    cache = base.field_cache
    for label, text in fields:
        key = (label == "body", label.startswith("explanations"), text)
        got = cache.get(key)
        if got is None:
            if len(cache) > 8192:
                cache.clear()
            got = cache[key] = _analyse_field(base, "body" if key[0] else label, text)
        sents[label], mentions[label], unknown[label] = got[0], list(got[1]), got[2]
    valid = _valid_offers(ctx)
    rec_ids = {r.product_id for r in ctx.recommendations}
    if ctx.hero_product_id:
        rec_ids.add(ctx.hero_product_id)
    p = Prep(fields=fields, sents=sents, mentions=mentions, unknown=unknown, idx=idx, valid_offers=valid,
             rec_ids=rec_ids)
    view.cache["facts"] = p
    return p


def protected_spans(view: MessageView, label: str) -> list[tuple[int, int]]:
    """Catalog names and catalog claims in a field: brand rules leave them alone."""
    text = view.text(label)
    idx = catalog_index(view.ctx.catalog)
    spans: list[tuple[int, int]] = []
    if label in ("subject", "preheader", "body", "cta_text") or label.startswith("explanations["):
        p = prep(view)
        spans.extend((m.start, m.end) for m in p.mentions.get(label, ()))
    if idx.claims_rx is not None:
        spans.extend(_claim_spans(idx, text))
    return spans


def _claim_spans(idx: CatalogIndex, text: str) -> tuple[tuple[int, int], ...]:
    """Catalog claims in a text, and quotations holding one (pure in the catalog and the text: cached)."""
    got = idx.claim_span_cache.get(text)
    if got is None:
        rx = idx.claims_rx
        assert rx is not None
        out = [m.span() for m in rx.finditer(text)]
        if '"' in text or "“" in text:  # a quoted catalog claim: the whole quotation is protected
            out.extend(m.span() for m in _QUOTED.finditer(text) if rx.search(m.group(1)))
        got = tuple(out)
        if len(idx.claim_span_cache) > 8192:
            idx.claim_span_cache.clear()
        idx.claim_span_cache[text] = got
    return got


_QUOTED = re.compile(r"[\"“]([^\"”]{2,80})[\"”]")


# --------------------------------------------------------------------------- helpers

def _product_name(p: Prep, pid: str) -> str:
    return p.idx.names.get(pid, pid)


def _allowed_cents(p: Prep, pid: str) -> set[int]:
    """Prices (cents) a product may be quoted at: its price, its discounted price and the saving
    (computed once per message and product; callers must not mutate the set)."""
    cache = p.extra.get("cents")
    if cache is None:
        cache = p.extra["cents"] = {}
    out = cache.get(pid)
    if out is not None:
        return out
    prod = p.idx.products.get(pid)
    if prod is None:
        out = set()
    else:
        base = T.cents(prod.price)
        out = {base}
        for o in p.valid_offers:
            if o.kind == "percent_off" and o.value and o.applies_to_product(prod):
                for d in T.discounted(prod.price, o.value):
                    out.add(d)
                    out.add(base - d)
    cache[pid] = out
    return out


def _fmt_money(c: int) -> str:
    return f"${c // 100}" if c % 100 == 0 else f"${c / 100:.2f}"


_NEVER = re.compile(r"(?!x)x")


def _phrase_alt(rule: Rule, key: str, items: list[str]) -> Alt | None:
    """A rule's phrase list (``params[key]``) as an :class:`Alt`, built once per rule."""
    cache = _RX_CACHE.get(rule.id)
    if cache is None:
        cache = _RX_CACHE[rule.id] = {}
    alt = cache.get(key, False)
    if alt is False:
        alt = cache[key] = Alt(list(items), re.I) if items else None
        if alt is not None:
            alt.compile_full()  # validates the whole alternation
            alt.compile_items()
    return alt  # type: ignore[return-value]


def _compiled(rule: Rule, key: str, items: list[str], view: MessageView) -> tuple[Any, Alt | None]:
    """The phrase list as one regex, narrowed to the phrases whose anchors occur in the message
    (None: none can match), and its :class:`Alt` (``alt.may_match(text)`` narrows it per field)."""
    alt = _phrase_alt(rule, key, items)
    if alt is None:
        return None, None
    return alt.regex_for(view.present(FACT_FIELDS)), alt


def _prepare_urgency(rule: Rule) -> None:
    _phrase_alt(rule, "time", rule.params.get("phrases", ()))
    _phrase_alt(rule, "any_offer", rule.params.get("offer_phrases", ()))


def _prepare_scarcity(rule: Rule) -> None:
    _phrase_alt(rule, "stock", rule.params.get("phrases", ()))


_RX_CACHE: dict[str, dict[str, Alt | None]] = {}

_SHIP_RE = fold(re.compile(
    r"free (?:standard |ground |2-day |two-day |express |next-day )?(?:shipping|delivery)|ships? (?:for )?free"
    r"|shipping(?: is|'s|’s) (?:free|on us)|free ship\b|delivery(?: is|'s|’s) (?:free|on us)|shipping(?: is)? on us", re.I))
_OFFISH = fold(re.compile(r"\b(?:off|discount(?:ed)?|save|saving|savings|sale|markdown|reduced|less|take|member price)\b",
                     re.I))
_MULT_RE = fold(re.compile(
    r"\b(?:(double|triple|quadruple|twice the|two times(?: the)?|three times(?: the)?|four times(?: the)?)"
    r"|(\d+)\s?[x×]|[x×](\d+))\s+(?:the\s+)?(?:(?:bonus|loyalty|member|reward|rewards|athenaplus)\s+)?points?\b",
    re.I))
_ABS_POINTS_RE = fold(re.compile(r"(?=[0-9])(?<![\w.$])(\d{1,3}(?:,\d{3})+|\d+)\s+(?:(?:bonus|extra|reward|loyalty|member)\s+)?"
                            r"points?\b(?!\s+(?:per|for every|on every|for each|each)\b)", re.I))
_BONUS_RE = fold(re.compile(r"\b(?:bonus|extra) points\b", re.I))
_SHIP_WORD = fold(re.compile(r"\b(?:shipping|delivery)\b", re.I))
_UNDER = re.compile(r"(?:under|below|less than|up to|within|at most|no more than)\s*$")
_PRICE_AFTER = re.compile(r"\s*(?:[,:(—–-]|is|are|for|at|costs?)\s*(?:just |only )?(?:\$|USD)")
_THRESHOLD = fold(re.compile(r"(?:over|above|more than|at least|of|minimum|min\.?|spend|spending|orders?|"
                        r"from|past|hit|reach)\s*$", re.I))
_PCT_CUE = fold(re.compile(r"%|percent|\boff\b", re.I))
_POINTS_CUE = fold(re.compile(r"\bpoints?\b", re.I))
_SHIP_CUE = fold(re.compile(r"\bship", re.I))
_MULT_WORDS = {"double": 2, "twice the": 2, "two times": 2, "two times the": 2, "triple": 3, "three times": 3,
               "three times the": 3, "quadruple": 4, "four times": 4, "four times the": 4}


def _sentence_text(p: Prep, label: str, text: str, pos: int, with_prev: bool = False) -> str:
    i, (a, b) = p.sentence_of(label, pos)
    if with_prev and i > 0:
        a = p.sents[label][i - 1][0]
    return text[a:b]


# --------------------------------------------------------------------------- checks

_LOWER_NEXT = re.compile(r"[ \t]+[a-z]")


def _common_word(p: Prep, label: str, m: Mention) -> bool:
    """A single capitalized word that is a catalog category, or capitalized only because it opens a
    sentence and reads as ordinary prose ("Running gear earns 3x points")."""
    text = dict(p.fields)[label]
    w = text[m.start:m.end].lower()
    cats = p.extra.get("cats")
    if cats is None:
        cats = p.extra["cats"] = {c for pr in p.idx.products.values() for c in (pr.category or "").lower().split()}
    if w in cats or w.rstrip("s") in cats:
        return True
    _, (sa, _sb) = p.sentence_of(label, m.start)
    opens = not text[sa:m.start].strip(" \t\"'“‘(-—–*•")
    return opens and _LOWER_NEXT.match(text, m.end) is not None


@register_check("facts.product_recommended")
def check_recommended(rule: Rule, view: MessageView) -> Iterator[Hit]:
    p = prep(view)
    for label, _ in p.fields:
        for m in p.mentions[label]:
            if m.pid in p.rec_ids:
                continue
            name = _product_name(p, m.pid)
            if m.how == "partial1":
                if _common_word(p, label, m):
                    continue  # "Running gear": a category or ordinary word, not a product
                yield Hit(label, m.start, m.end, slots={"name": name}, decidable=False, severity="warning")
            else:
                yield Hit(label, m.start, m.end, slots={"name": name})


@register_check("facts.in_stock")
def check_in_stock(rule: Rule, view: MessageView) -> Iterator[Hit]:
    p = prep(view)
    for label, _ in p.fields:
        for m in p.mentions[label]:
            if m.how == "partial1" and _common_word(p, label, m):
                continue  # "Swim picks earn...", "Chili season's here": a word opening a sentence, no product
            prod = p.idx.products[m.pid]
            if not prod.in_stock or prod.stock == 0:
                yield Hit(label, m.start, m.end, slots={"name": prod.name})
    for r in view.ctx.recommendations:  # a recommended product that is out of stock, named or not
        prod = p.idx.products.get(r.product_id)
        if prod is not None and (not prod.in_stock or prod.stock == 0) and not any(
                m.pid == prod.product_id for ms in p.mentions.values() for m in ms):
            for i, ex in enumerate(view.msg.explanations):
                if ex.product_id == prod.product_id:
                    yield Hit(f"explanations[{i}].text", 0, len(ex.text), slots={"name": prod.name})


@register_check("facts.unknown_product")
def check_unknown_product(rule: Rule, view: MessageView) -> Iterator[Hit]:
    p = prep(view)
    nouns = _NOUNS_CACHE.get(rule.id)
    if nouns is None:
        nouns = _NOUNS_CACHE[rule.id] = frozenset(n.lower() for n in rule.params.get("product_nouns", ()))
    ignore = _IGNORE_CACHE.get(rule.id)
    if ignore is None:
        ignore = _IGNORE_CACHE[rule.id] = frozenset(x.lower() for x in rule.params.get("ignore_phrases", ()))
    names = None
    variants = _variant_patterns(p)
    for label, text in p.fields:
        if variants and _HAS_DIGIT.search(text):
            low = text.lower()
            for rx, nums, pname, key in variants:
                if key not in low:
                    continue  # the name's longest word is not in the text
                for vm in rx.finditer(text):
                    if _NUMS.findall(vm.group()) != nums:
                        yield Hit(label, vm.start(), vm.end(), slots={"hint": f"; did you mean the {pname}?"})
        unknown = p.unknown[label]
        if not unknown:
            continue
        money = T.money_matches(text)
        for a, b, phrase in unknown:
            title_only = phrase.startswith("\x00")
            phrase = phrase.lstrip("\x00")
            if phrase.lower() in ignore:
                continue
            last = phrase.split()[-1].lower().strip("’'")
            noun = last in nouns or last.rstrip("s") in nouns or last[:-2] in nouns
            near_price = any(0 <= ma - b <= 12 or (0 <= a - me <= 3) for ma, me, _ in money) or bool(
                _PRICE_AFTER.match(text[b:b + 20]))
            if title_only and not near_price:
                continue
            if not (noun or near_price):
                continue
            if names is None:
                names = tuple(p.idx.names.values())
            hint = _hint(phrase, names) if names else ""
            yield Hit(label, a, b, slots={"hint": hint})


_NOUNS_CACHE: dict[str, frozenset[str]] = {}
_IGNORE_CACHE: dict[str, frozenset[str]] = {}


@lru_cache(maxsize=4096)
def _hint(phrase: str, names: tuple[str, ...]) -> str:
    """The closest catalog name to an unknown product phrase (pure in both: phrases and catalogs repeat)."""
    best = process.extractOne(phrase, names, scorer=fuzz.WRatio)
    return f"; did you mean the {best[0]}?" if best and best[1] >= 70 else ""


def _variant_patterns(p: Prep) -> list[tuple[re.Pattern[str], list[str], str, str]]:
    """For each catalog name holding a number ("Starlight 500-Piece Puzzle"), a pattern for the same name
    with any number: another size or count is a variant the catalog doesn't have."""
    idx = p.idx
    got = _VARIANT_NAMES.get(id(idx))
    if got is None or got[0] is not idx:  # the index holds its catalog: the names are known per index
        if len(_VARIANT_NAMES) > 4096:
            _VARIANT_NAMES.clear()
        got = _VARIANT_NAMES[id(idx)] = (idx, tuple(pr.name for pr in idx.products.values()
                                                    if _HAS_DIGIT.search(pr.name)))
    return _variants_for(got[1])


_VARIANT_NAMES: dict[int, tuple[Any, tuple[str, ...]]] = {}


@lru_cache(maxsize=256)
def _variants_for(names: tuple[str, ...]) -> list[tuple[re.Pattern[str], list[str], str, str]]:
    got = []
    for name in names:
        nums = _NUMS.findall(name)
        parts = _NUMS.split(name)
        src = r"\d+(?:\.\d+)?".join(re.escape(x).replace(r"\ ", r"[ \t]+") for x in parts)
        key = max(re.findall(r"[A-Za-z]+", name) or [""], key=len).lower()
        got.append((re.compile(r"(?<![\w])" + src + r"(?![\w])", re.I), nums, name, key))
    return got


@register_check("facts.prices", needs=DIGITS)  # every money match holds a digit
def check_prices(rule: Rule, view: MessageView) -> Iterator[Hit]:
    p = prep(view)
    mentioned = p.all_mentioned()
    pool = set(mentioned) | {x for x in p.rec_ids if x in p.idx.products}
    pool_allowed: set[int] | None = None  # computed when first needed
    totals = {sum(T.cents(p.idx.products[x].price) for x in mentioned)} if len(mentioned) > 1 else set()
    for label, text in p.fields:
        for a, b, val in T.money_matches(text):
            c = T.cents(val)
            sent = _sentence_text(p, label, text, a)
            low = sent.lower()  # every shipping pattern's match holds "ship" or "deliver"
            if ("ship" in low or "deliver" in low or not sent.isascii()) and (
                    _SHIP_RE.search(sent) or _SHIP_WORD.search(sent)):
                continue  # thresholds in shipping sentences: facts.free-shipping checks them
            targets = p.sentence_products(label, a)
            if any(c in _allowed_cents(p, pid) for pid in (targets or p.attribute(label, a, b))):
                continue
            if not targets:
                if pool_allowed is None:
                    pool_allowed = set()
                    for pid in pool:
                        pool_allowed |= _allowed_cents(p, pid)
                if c in pool_allowed:
                    continue
            pre = text[max(0, a - 16):a].lower()
            if _UNDER.search(pre):
                if any(p.idx.products[x].price <= val for x in pool):
                    continue
            if c in totals:
                continue
            names = ", ".join(f"{_product_name(p, x)} {_fmt_money(T.cents(p.idx.products[x].price))}"
                              for x in (targets or p.attribute(label, a, b)) if x in p.idx.products)
            yield Hit(label, a, b, slots={"expected": names or "no product this price belongs to"})


def _percent_offers(p: Prep, view: MessageView, value: float) -> tuple[list[Offer], list[Offer]]:
    allx = [o for o in view.ctx.offers if o.kind == "percent_off" and o.value is not None and
            abs(o.value - value) < 1e-6]
    return allx, [o for o in allx if o in p.valid_offers]


@register_check("facts.percent_offers", needs=("%", "per", "half"))
def check_percent(rule: Rule, view: MessageView) -> Iterator[Hit]:
    p = prep(view)
    for label, text in p.fields:
        for a, b, val in T.percent_matches(text):
            around = text[max(0, a - 25):min(len(text), b + 25)]
            if not _OFFISH.search(around):
                continue
            allx, valid = _percent_offers(p, view, val)
            if not allx:
                yield Hit(label, a, b, slots={"reason": f"there is no {val:g}% offer"})
                continue
            if not valid:
                o = allx[0]
                yield Hit(label, a, b, slots={"reason": f"the {val:g}% offer runs {o.valid_from:%B} "
                                                        f"{o.valid_from.day} to {o.valid_until:%B} "
                                                        f"{o.valid_until.day} and is not valid on "
                                                        f"{view.ctx.send_date:%B} {view.ctx.send_date.day} "
                                                        "(or not open to this member)"})
                continue
            targets = p.sentence_products(label, a) or p.attribute(label, a, b)
            prods = [p.idx.products[t] for t in targets if t in p.idx.products]
            if prods and not any(o.applies_to_product(pr) for o in valid for pr in prods):
                yield Hit(label, a, b, slots={"reason": f"the {val:g}% offer does not apply to "
                                                        + ", ".join(pr.name for pr in prods)})


def _category_in(sent: str, offer: Offer) -> bool:
    if not offer.applies_to_category:
        return False
    return _category_re(offer.applies_to_category).search(sent.lower()) is not None


@lru_cache(maxsize=1024)
def _category_re(category: str) -> re.Pattern[str]:
    return re.compile(r"\b" + re.escape(category.lower().rstrip("s")))


_WORDS_RE = re.compile(r"[a-z][a-z'’-]*")


def _words_of(low: str) -> set[str]:
    return {w.rstrip("s") for w in _WORDS_RE.findall(low)}


def _head_noun(name: str) -> str:
    """The last word of a product name, singular ("Maple Ave Candle" -> "candle")."""
    ws = _WORDS_RE.findall(name.lower())
    return ws[-1].rstrip("s") if ws else ""


@register_check("facts.points", needs=("point",))
def check_points(rule: Rule, view: MessageView) -> Iterator[Hit]:
    if "point" not in view.lower(FACT_FIELDS):
        return  # every points pattern holds "point"
    p = prep(view)
    allpts = [o for o in view.ctx.offers if o.kind == "points_multiplier"]
    validpts = [o for o in allpts if o in p.valid_offers]
    for label, text in p.fields:
        seen: list[tuple[int, int]] = []
        for m in _MULT_RE.finditer(text):
            seen.append(m.span())
            if m.group(1):
                mult = _MULT_WORDS.get(m.group(1).lower(), 0)
            else:
                mult = int(m.group(2) or m.group(3))
            same = [o for o in allpts if o.value is not None and abs(o.value - mult) < 1e-6]
            ok = [o for o in same if o in validpts]
            if not same:
                yield Hit(label, m.start(), m.end(), slots={"reason": f"there is no {mult}x points offer"})
                continue
            if not ok:
                o = same[0]
                yield Hit(label, m.start(), m.end(),
                          slots={"reason": f"the {mult}x points offer runs {o.valid_from.isoformat()} to "
                                           f"{o.valid_until.isoformat()}, not on the send date"})
                continue
            sent = _sentence_text(p, label, text, m.start())
            if any(_category_in(sent, o) or (not o.applies_to and not o.applies_to_category) for o in ok):
                continue
            targets = p.sentence_products(label, m.start())
            if not targets:  # no product named in the sentence: a head noun ("The candle") names one
                low_sent = sent.lower()
                targets = [pid for pid in p.rec_ids if pid in p.idx.products
                           and _head_noun(p.idx.products[pid].name) in _words_of(low_sent)]
            if not targets:  # none referred to: true if it applies to a recommended product
                recs = [p.idx.products[t] for t in p.rec_ids if t in p.idx.products]
                if any(o.applies_to_product(pr) for o in ok for pr in recs):
                    continue
                targets = p.attribute(label, m.start(), m.end())
            prods = [p.idx.products[t] for t in targets if t in p.idx.products]
            if prods and not any(o.applies_to_product(pr) for o in ok for pr in prods):
                where = ok[0].applies_to_category or ", ".join(ok[0].applies_to or ())
                yield Hit(label, m.start(), m.end(),
                          slots={"reason": f"the {mult}x points offer applies to {where}, not to "
                                           + ", ".join(pr.name for pr in prods)})
        for m in _ABS_POINTS_RE.finditer(text):
            if any(a <= m.start() < b for a, b in seen):
                continue
            n = float(m.group(1).replace(",", ""))
            if any(o.value is not None and abs(o.value - n) < 1e-6 for o in validpts):
                continue
            yield Hit(label, m.start(), m.end(), slots={"reason": f"no offer gives {m.group(1)} points"})
        if not validpts:
            for m in _BONUS_RE.finditer(text):
                if not any(a <= m.start() < b for a, b in seen):
                    yield Hit(label, m.start(), m.end(), slots={"reason": "no points offer is valid on the send date"})


@register_check("facts.free_shipping", needs=("ship", "deliver"))
def check_free_shipping(rule: Rule, view: MessageView) -> Iterator[Hit]:
    low = view.lower(FACT_FIELDS)
    if "ship" not in low and "deliver" not in low:
        return  # every _SHIP_RE match holds "ship" or "deliver"
    p = prep(view)
    allfs = [o for o in view.ctx.offers if o.kind == "free_shipping"]
    valid = [o for o in allfs if o in p.valid_offers]
    for label, text in p.fields:
        for m in _SHIP_RE.finditer(text):
            if not valid:
                why = "no free-shipping offer is valid on the send date" if not allfs else \
                    f"the free-shipping offer runs {allfs[0].valid_from.isoformat()} to " \
                    f"{allfs[0].valid_until.isoformat()}"
                yield Hit(label, m.start(), m.end(), slots={"reason": why})
                continue
            i, (sa, sb) = p.sentence_of(label, m.start())
            sent = text[sa:sb]
            money = T.money_matches(sent)
            amounts = [T.cents(v) for _, _, v in money]
            mins = {T.cents(o.min_order) for o in valid if o.min_order}
            wrong = False
            prices = {T.cents(p.idx.products[x].price) for x in p.sentence_products(label, m.start())
                      if x in p.idx.products}
            for a0, _, v in money:
                c = T.cents(v)
                threshold = _THRESHOLD.search(sent[max(0, a0 - 18):a0])
                if mins and c not in mins and (threshold or (c < min(mins) and c not in prices)):
                    wrong = True  # a threshold that isn't the offer's (a product's own price is not one)
            if wrong:
                yield Hit(label, m.start(), m.end(),
                          slots={"reason": "the minimum order is " + " or ".join(_fmt_money(x) for x in sorted(mins))})
            elif mins and all(c in own for c in amounts for own in [_sentence_prices(p, label, m)]) and (re.search(
                    r"\b(?:no minimum|any order|every order|all orders|all shipping|on everything|any purchase|"
                    r"every purchase|any size|sitewide|no strings)\b", sent, re.I) or _below_minimum(p, label, m, mins)):
                yield Hit(label, m.start(), m.end(),
                          slots={"reason": "free shipping needs a minimum order of "
                                           + " or ".join(_fmt_money(x) for x in sorted(mins))})


def _sentence_prices(p: Prep, label: str, m: re.Match[str]) -> set[int]:
    """Every price (cents) the products named in the match's sentence may be quoted at."""
    out: set[int] = set()
    for t in p.sentence_products(label, m.start()):
        if t in p.idx.products:
            out |= _allowed_cents(p, t)
    return out


def _below_minimum(p: Prep, label: str, m: re.Match[str], mins: set[int]) -> bool:
    """Free shipping said of the product(s) the sentence is about ("It ships free, too."), with no
    threshold named, when together they cost less than the smallest minimum order."""
    text = dict(p.fields)[label]
    if any(T.cents(v) in mins for _, _, v in T.money_matches(text)):
        return False  # the field names the minimum order: the line is qualified
    targets = p.sentence_products(label, m.start())
    if not targets:
        i, (sa, sb) = p.sentence_of(label, m.start())
        if not _PRONOUN_START.match(text, sa):
            return False  # a general line about shipping
        targets = p.attribute(label, m.start(), m.end())  # "It ships free, too.": the product before
    targets = [t for t in targets if t in p.idx.products]
    return bool(targets) and sum(min(_allowed_cents(p, t)) for t in targets) < min(mins)


_PRONOUN_START = re.compile(r"[\"'“‘(]*(?:it|they|this|these|that|those|both|each|all three|all two)\b", re.I)


_BEHAVIOUR_BEFORE = fold(re.compile(
    r"\b(?:bought|purchased|ordered|viewed|browsed|visited|searched|clicked|joined|signed up|looked|added|returned|"
    r"shopped|picked up|last order|your order|your purchase|your visit|since)\b[^.!?\n]{0,30}$", re.I))
_OFFER_WORD_AFTER_CUE = fold(re.compile(
    r"\b(?:until|through|thru|till|til|ends?|ending|expires?|expiring|valid|starts?|starting|deadline|last day)\b", re.I))


def behaviour_date(text: str, a: int) -> bool:
    """The date at ``a`` follows a behaviour cue ("ordered on", "since") with no offer word ("ends", "until") between."""
    m = _BEHAVIOUR_BEFORE.search(text[max(0, a - 50):a])
    return m is not None and _OFFER_WORD_AFTER_CUE.search(m.group(0)) is None


_OFFER_DATE_CUE = fold(re.compile(
    r"\b(?:until|through|thru|till|til|ends?|ending|expires?|expiring|by|before|valid|starts?|starting|from|"
    r"deadline|last day|runs?|offer|sale|off|points|ship|shipping)\b", re.I))
_HOLIDAYS = {(12, 24), (12, 25), (12, 31), (1, 1), (2, 14), (10, 31), (7, 4), (11, 11)}


@register_check("facts.offer_dates", needs=DIGITS)  # every date holds a digit
def check_dates(rule: Rule, view: MessageView) -> Iterator[Hit]:
    p = prep(view)
    send = view.ctx.send_date
    for label, text in p.fields:
        for a, b, md in T.date_matches(text, send):
            if behaviour_date(text, a):
                continue  # a date of the member's behaviour: brand.value-first
            sent = _sentence_text(p, label, text, a, with_prev=True)
            kinds = set()
            if _PCT_CUE.search(sent):
                kinds.add("percent_off")
            if _POINTS_CUE.search(sent):
                kinds.add("points_multiplier")
            if _SHIP_RE.search(sent) or _SHIP_CUE.search(sent):
                kinds.add("free_shipping")
            cands = [o for o in p.valid_offers if not kinds or o.kind in kinds]
            if any(T.date_equals(md, o.valid_until) or T.date_equals(md, o.valid_from) for o in cands):
                continue
            if any(T.date_equals(md, o.valid_until) or T.date_equals(md, o.valid_from) for o in p.valid_offers):
                continue
            own = _sentence_text(p, label, text, a)
            if kinds or _OFFER_DATE_CUE.search(own):
                dates = sorted({o.valid_until for o in cands} or {o.valid_until for o in p.valid_offers})
                expect = ", ".join(f"{d:%B} {d.day}" for d in dates) or "no offer is valid on the send date"
                if (md[0], md[1]) in _HOLIDAYS and not kinds:
                    continue
                yield Hit(label, a, b, slots={"expected": expect})
            elif (md[0], md[1]) not in _HOLIDAYS:
                yield Hit(label, a, b, decidable=False, severity="warning",
                          slots={"expected": "a date that matches an offer (a human should check this one)"})


_NEG = fold(re.compile(r"\b(?:not|isn't|isn’t|aren't|aren’t|no|never|without)\s+(?:\w+\s+)?$", re.I))


def _claims_entries(rule: Rule) -> tuple[Alt, list[list[str]]]:
    """The claim vocabulary (``params.claims``) as an :class:`Alt` (one named group per claim) and
    each claim's supporting catalog words, built once per rule."""
    vocab = rule.params.get("claims", [])
    entries = _CLAIMS_CACHE.get(rule.id)
    if entries is None:
        parts, supports = [], []
        for i, item in enumerate(vocab):
            if isinstance(item, str):
                item = {"pattern": re.escape(item).replace(r"\-", "[- ]?").replace(r"\ ", "[- ]?"),
                        "supported_by": [item]}
            re.compile(item["pattern"])
            parts.append(item["pattern"])
            supports.append([_norm(x) for x in item.get("supported_by", [])])
        alt = Alt(parts, re.I, named="c")
        alt.compile_full()  # validates the whole alternation once
        alt.compile_items()
        entries = (alt, supports)
        _CLAIMS_CACHE[rule.id] = entries
    return entries


@register_check("facts.claims", prepare=_claims_entries)
def check_claims(rule: Rule, view: MessageView) -> Iterator[Hit]:
    p = prep(view)
    alt, supports = _claims_entries(rule)
    rx = alt.regex_for(view.present(FACT_FIELDS))
    if rx is None and p.idx.claims_rx is None:
        return
    found_cache = _CLAIM_HITS.setdefault(rule.id, {})
    for label, text in p.fields:
        found = found_cache.get(text) if rx is not None else []  # the claim phrases not negated:
        if found is None:  # pure in the rule and the text
            found = []
            if alt.may_match(text):
                for m in rx.finditer(text):
                    if _NEG.search(text[max(0, m.start() - 20):m.start()]):
                        continue
                    found.append((m.start(), m.end(), m.group(), int(m.lastgroup[1:])))  # type: ignore[index]
            if len(found_cache) > 8192:
                found_cache.clear()
            found_cache[text] = found
        for ma, mb, mg, gi in found:
            if True:
                inside = [mm for mm in p.mentions.get(label, ()) if mm.start <= ma and mb <= mm.end]
                if inside and any(_norm(mg) in _norm(_product_name(p, mm.pid)) for mm in inside):
                    continue  # part of a product name ("Glacier Insulated Bottle")
                if not inside and _generic_noun_supported(p, text, mb, _norm(mg), supports[gi]):
                    continue  # "merino socks": a recommended product of that kind carries the claim
                targets = p.attribute(label, ma, mb)
                if not targets:
                    yield Hit(label, ma, mb, slots={"name": "any recommended product"})
                    continue
                support = supports[gi]
                sup = " | ".join(p.idx.support.get(t, "") for t in targets)
                claim_norm = _norm(mg)
                if _HAS_DIGIT.search(claim_norm):  # "SPF 30" needs that number, not any SPF
                    if claim_norm.replace(" ", "") in sup.replace(" ", ""):
                        continue
                elif claim_norm in sup or any(s in sup for s in support):
                    continue
                yield Hit(label, ma, mb,
                          slots={"name": ", ".join(_product_name(p, t) for t in targets)})
        if p.idx.claims_rx is not None:
            spans = _catalog_claim_spans(p.idx, text)
            if spans:
                yield from _misplaced_catalog_claims(p, view, label, text, found, spans)


def _misplaced_catalog_claims(p: Prep, view: MessageView, label: str, text: str,
                              vocab: list[tuple[int, int, str, int]], spans: tuple[tuple[int, int], ...]
                              ) -> Iterator[Hit]:
    """A claim the catalog lists for one product ("Best in Test 2025") said of another: the product
    named in the same sentence (or the explanation's product) must list it. Claims the vocabulary
    covers were checked above; without a product in the sentence nothing is said here."""
    for a, b in spans:
        if any(va < b and a < vb for va, vb, _, _ in vocab) or _NEG.search(text[max(0, a - 20):a]):
            continue
        if any(mm.start <= a and b <= mm.end for mm in p.mentions.get(label, ())):
            continue  # part of a product name
        targets = p.sentence_products(label, a)
        if not targets and label.startswith("explanations["):
            i = int(label[len("explanations["):label.index("]")])
            targets = [view.msg.explanations[i].product_id]
        targets = [t for t in targets if t in p.idx.products]
        if not targets:
            continue
        claim = _norm(text[a:b])
        if _generic_noun_supported(p, text, b, claim, [claim]):
            continue  # "a soy wax candle": the noun after it names the product that carries it
        before = [mm.pid for mm in p.mentions.get(label, ()) if mm.end <= a and mm.pid in targets]
        if before:
            targets = [before[-1]]  # the nearest product named before it in the sentence
        if any(claim in p.idx.support.get(t, "") for t in targets):
            continue
        yield Hit(label, a, b, slots={"name": ", ".join(_product_name(p, t) for t in targets)})


def _catalog_claim_spans(idx: CatalogIndex, text: str) -> tuple[tuple[int, int], ...]:
    """Catalog claims in a text (pure in the catalog and the text: cached)."""
    cache = idx.claim_only_cache
    got = cache.get(text)
    if got is None:
        assert idx.claims_rx is not None
        low = safe_lower(text)
        if low is not None and not any(c in low for c in idx.claims_lower):
            got = ()  # (claims_rx matches a claim case-insensitively: its lowercase occurs)
        else:
            got = tuple(m.span() for m in idx.claims_rx.finditer(text))
        if len(cache) > 8192:
            cache.clear()
        cache[text] = got
    return got


_CLAIM_HITS: dict[str, dict[str, list[tuple[int, int, str, int]]]] = {}
_CLAIMS_CACHE: dict[str, tuple[Alt, list[list[str]]]] = {}
_HAS_DIGIT = re.compile(r"\d")
_NEXT_WORDS = re.compile(r"[\s-]*([A-Za-z]+)(?:[\s-]+([A-Za-z]+))?")


def _generic_noun_supported(p: Prep, text: str, end: int, claim: str, support: list[str]) -> bool:
    """A claim followed by a noun ("merino socks") that names a recommended product carrying the claim."""
    m = _NEXT_WORDS.match(text, end)
    if not m:
        return False
    nouns = {w.lower() for w in m.groups() if w}
    nouns |= {w[:-1] for w in nouns if w.endswith("s")}
    for pid in p.rec_ids:
        toks = p.idx.tokens.get(pid, set())
        if nouns & toks:
            sup = p.idx.support.get(pid, "")
            if claim in sup or any(s in sup for s in support):
                return True
    return False
_WORDNUM = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
            "ten": 10, "a couple": 2, "a few": 3}


@register_check("facts.urgency", prepare=_prepare_urgency)
def check_urgency(rule: Rule, view: MessageView) -> Iterator[Hit]:
    """Time pressure ("ends tonight", "last chance") needs a valid offer ending within the window."""
    p = prep(view)
    rx, alt = _compiled(rule, "time", rule.params.get("phrases", ()), view)
    limit = int(rule.params.get("within_days", 2))
    send = view.ctx.send_date
    rx_any, alt_any = _compiled(rule, "any_offer", rule.params.get("offer_phrases", ()), view)
    if any(d in view.lower(FACT_FIELDS) for d in _WEEKDAYS):
        for label, text in p.fields:
            yield from _weekday_deadlines(p, label, text, send)
    if rx_any is None or p.valid_offers:
        rx_any = None
        if rx is None:
            return
    for label, text in p.fields:
        if rx_any is not None and alt_any.may_match(text):  # type: ignore[union-attr]
            for m in rx_any.finditer(text):
                yield Hit(label, m.start(), m.end(), slots={"reason": "no offer is valid on the send date"})
        if rx is None or not alt.may_match(text):  # type: ignore[union-attr]
            continue
        for m in rx.finditer(text):
            phrase = m.group().lower()
            need = 0 if re.search(r"tonight|today|midnight|hours? left|final hours", phrase) else (
                1 if "tomorrow" in phrase else limit)
            prods = [p.idx.products[t] for t in p.attribute(label, m.start(), m.end()) if t in p.idx.products]
            if "weekend" in phrase:  # "this weekend only": an offer ending on the coming weekend (Fri-Mon)
                if any((o.valid_until - send).days <= 7 and o.valid_until.weekday() in (4, 5, 6) and (
                        o.kind == "free_shipping" or not prods or any(o.applies_to_product(pr) for pr in prods))
                       for o in p.valid_offers):
                    continue
                yield Hit(label, m.start(), m.end(), slots={"reason": "no offer valid on the send date ends this weekend"})
                continue
            if any((o.valid_until - send).days <= need and (
                    o.kind == "free_shipping" or not prods or any(o.applies_to_product(pr) for pr in prods))
                   for o in p.valid_offers):
                continue
            yield Hit(label, m.start(), m.end(),
                      slots={"reason": "no offer valid on the send date ends within "
                                       f"{need * 24 if need else 24} hours"})


_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
#: an offer deadline given as a weekday ("wraps up Friday", "through this Sunday")
_WEEKDAY_DEADLINE = fold(re.compile(
    r"\b(?:ends?|ending|wraps? up|wrapping up|closes?|closing|expires?|expiring|finish(?:es)?|runs? (?:through|until|till)|"
    r"through|thru|until|till|last day is|only until)\s+(?:this |next |on |this coming )?(" + "|".join(_WEEKDAYS) + r")\b",
    re.I))


def _weekday_deadlines(p: Prep, label: str, text: str, send: dt.date) -> Iterator[Hit]:
    """A deadline named by weekday must be the end date of an offer valid on the send date: the
    weekday is the next one on or after the send date ("next Friday": the one after)."""
    ends = tuple(sorted({(o.kind, o.valid_until) for o in p.valid_offers}))
    for a, b, reason in _weekday_hits(text, send, ends):
        yield Hit(label, a, b, slots={"reason": reason})


@lru_cache(maxsize=8192)
def _weekday_hits(text: str, send: dt.date, ends: tuple[tuple[str, dt.date], ...]) -> tuple[tuple[int, int, str], ...]:
    """(start, end, reason) of each weekday deadline that is no offer's end date (pure: cached). A
    sentence that names a kind of offer (percent, points, shipping) is held to offers of that kind."""
    low = text.lower()
    if not any(d in low for d in _WEEKDAYS):
        return ()
    out = []
    dates = None
    for m in _WEEKDAY_DEADLINE.finditer(text):
        if dates is None:
            dates = [a for a, _, _ in T.date_matches(text, send)]
        if any(0 <= a - m.end(1) <= 3 for a in dates):
            continue  # "Sunday, December 6": the date says which Sunday (facts.offer-dates checks it)
        wd = _WEEKDAYS.index(m.group(1).lower())
        ahead = (wd - send.weekday()) % 7
        if "next " in m.group(0).lower() and ahead < 7:
            ahead += 7
        day = send + dt.timedelta(days=ahead)
        sent = next((text[a:b] for a, b in T.split_sentences(text) if a <= m.start() < b), text)
        kinds = {k for k, cue in (("percent_off", _PCT_CUE), ("points_multiplier", _POINTS_CUE),
                                  ("free_shipping", _SHIP_CUE)) if cue.search(sent)}
        days = sorted({d for k, d in ends if not kinds or k in kinds})
        if day in days:
            continue
        said = ", ".join(f"{d:%A %B} {d.day}" for d in days) or "none"
        out.append((m.start(1), m.end(1),
                    f"{day:%A %B} {day.day} is no offer's end date; offers valid on the send date end {said}"))
    return tuple(out)


_FEW = re.compile(r"\b(?:few|low|last|limited|only|running out|almost gone|\d+ left)\b", re.I)


def _inventory_backs(view: MessageView, pid: str, n: int | None) -> bool:
    """The product's recommendation carries inventory evidence with that count ("only 4 left in
    stock"), or, for a claim without a number, any low-stock wording."""
    for r in view.ctx.recommendations:
        if r.product_id != pid:
            continue
        for e in r.evidence:
            if e.source != "inventory":
                continue
            if n is not None:
                if re.search(rf"(?<!\d){n}(?!\d)", e.detail):
                    return True
            elif _FEW.search(e.detail):
                return True
    return False


@register_check("facts.scarcity", prepare=_prepare_scarcity)
def check_scarcity(rule: Rule, view: MessageView) -> Iterator[Hit]:
    """Stock pressure ("only 2 left", "selling fast") needs real low stock of that product."""
    p = prep(view)
    rx, alt = _compiled(rule, "stock", rule.params.get("phrases", ()), view)
    if rx is None:
        return
    low_stock = int(rule.params.get("low_stock", 10))
    for label, text in p.fields:
        if not alt.may_match(text):  # type: ignore[union-attr]
            continue
        for m in rx.finditer(text):
            targets = p.attribute(label, m.start(), m.end())
            prods = [p.idx.products[t] for t in targets if t in p.idx.products]
            num = re.search(r"\b(\d+|one|two|three|four|five|six|seven|eight|nine|ten|a couple|a few)\b", m.group(),
                            re.I)
            n = None
            if num:
                g = num.group(1).lower()
                n = int(g) if g.isdigit() else _WORDNUM.get(g)
            backed = False
            for pr in prods:
                if pr.stock is None:  # the catalog doesn't say: the recommendation's inventory evidence may
                    fuzzy = num is not None and num.group(1).lower() in ("a few", "a couple")
                    backed = backed or _inventory_backs(view, pr.product_id, None if fuzzy else n)
                    continue
                if pr.stock <= 0:
                    continue
                if n is not None:
                    backed = backed or (pr.stock == n or (g in ("a few", "a couple") and pr.stock <= 5))
                else:
                    backed = backed or pr.stock <= low_stock
            if backed:
                continue
            stock = ", ".join(f"{pr.name}: {'unknown' if pr.stock is None else pr.stock}" for pr in prods) or "none"
            yield Hit(label, m.start(), m.end(), slots={"reason": f"stock on hand is {stock}"})
