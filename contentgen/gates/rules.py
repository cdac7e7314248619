"""The YAML rule engine (Vale-like): rule files are data, a fixed set of kinds runs them.

A rule file holds one rule family::

    family: superlatives
    rules:
      - id: brand.superlatives
        gate: brand
        severity: error
        message: "'{excerpt}' is an absolute claim; describe what the product does instead"
        ref: brand-voice.md#measurable-rules
        kind: existence
        tokens: [best, greatest, "#1"]
        exceptions: [best-selling]
        examples: {fail: ["The best socks ever."], pass: ["Socks for longer runs."]}

Kinds: ``existence``, ``substitution``, ``regex``, ``occurrence``, ``sentence_length``,
``length``, ``required`` and ``check`` (a named Python check from ``CHECKS``).
A broken file raises :class:`RuleFileError` naming the file, line and rule id.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import ahocorasick
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import RuleFileError
from ..models import (
    Evidence,
    Explanation,
    Finding,
    GateContext,
    Member,
    Offer,
    Product,
    Recommendation,
    RenderedMessage,
)
from . import text as T
from .casefold import Folded, fold, lower, safe_lower

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DIRS: tuple[Path, ...] = (REPO_ROOT / "brand_rules", REPO_ROOT / "compliance")

KINDS = ("existence", "substitution", "regex", "occurrence", "sentence_length", "length", "required", "check")
FIELD_NAMES = ("subject", "preheader", "body", "cta_text", "cta_url", "explanations", "footer")


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Example(_Strict):
    """One example text, optionally with a small context."""

    text: str = ""
    field: str | None = None
    tier: Literal[1, 2, 3] | None = None
    segment: str | None = None
    first_name: str | None = None
    send_date: dt.date | None = None
    product_id: str | None = None
    channel: Literal["email", "push", "sms", "inapp"] | None = None
    message: dict[str, Any] | None = None


class Examples(_Strict):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
    fail: tuple[str | Example, ...] = ()
    pass_: tuple[str | Example, ...] = Field(default=(), alias="pass")


CHANNELS = ("email", "push", "sms", "inapp")


class When(_Strict):
    tier: tuple[Literal[1, 2, 3], ...] | None = None
    segment: tuple[str, ...] | None = None
    has_first_name: bool | None = None
    channel: tuple[Literal["email", "push", "sms", "inapp"], ...] | None = None


class Unless(_Strict):
    offer_ends_within_hours: int | None = None


class Rule(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_.-]*$")
    gate: Literal["facts", "brand", "compliance", "schema"]
    severity: Literal["error", "warning", "info"]
    message: str
    ref: str = ""
    kind: Literal["existence", "substitution", "regex", "occurrence", "sentence_length", "length", "required",
                  "check"]
    description: str = ""
    fields: tuple[Literal["subject", "preheader", "body", "cta_text", "cta_url", "explanations", "footer"], ...] = \
        T.MODEL_FIELDS
    when: When | None = None
    unless: Unless | None = None
    decidable: bool = True
    examples: Examples = Examples()
    # existence / occurrence
    tokens: tuple[str, ...] = ()
    exceptions: tuple[str, ...] = ()
    ignorecase: bool = True
    skip_protected: bool | None = None  # None: brand rules skip catalog names/claims, others don't
    # substitution
    swap: dict[str, str] = Field(default_factory=dict)
    # regex / occurrence / required
    pattern: str | None = None
    # occurrence / sentence_length / length
    max: int | None = None
    min: int | None = None
    scope: Literal["field", "message"] = "field"
    # required
    position: Literal["anywhere", "start", "end"] = "anywhere"
    # check
    check: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _kind_fields(self) -> Rule:
        k = self.kind
        need = {
            "existence": self.tokens,
            "substitution": self.swap,
            "regex": self.pattern,
            "occurrence": (self.pattern or self.tokens) and (self.max is not None or self.min is not None),
            "sentence_length": self.max is not None,
            "length": self.max is not None or self.min is not None,
            "required": self.pattern,
            "check": self.check,
        }[k]
        if not need:
            what = {"existence": "tokens", "substitution": "swap", "regex": "pattern",
                    "occurrence": "pattern or tokens, and max or min", "sentence_length": "max",
                    "length": "max or min", "required": "pattern", "check": "check"}[k]
            raise ValueError(f"kind '{k}' needs {what}")
        return self


# --------------------------------------------------------------------------- checks registry

@dataclass(slots=True)
class Hit:
    field: str
    start: int
    end: int
    excerpt: str | None = None
    slots: dict[str, Any] = field(default_factory=dict)
    decidable: bool | None = None
    severity: str | None = None


CheckFn = Callable[["Rule", "MessageView"], Iterable[Hit]]
CHECKS: dict[str, CheckFn] = {}


#: check name -> lowercase substrings one of which occurs in the message's model fields whenever the
#: check can report anything (the rule is then skipped, like a word list none of whose anchors occurs)
CHECK_NEEDS: dict[str, frozenset[str]] = {}


#: check name -> what to build from a rule's params when the rule is loaded (phrase lists compiled
#: once, and bad params reported as the rule file's error rather than on the first message)
PREPARE: dict[str, Callable[[Any], object]] = {}


def register_check(name: str, needs: Iterable[str] = (),
                   prepare: Callable[[Any], object] | None = None) -> Callable[[CheckFn], CheckFn]:
    def deco(fn: CheckFn) -> CheckFn:
        CHECKS[name] = fn
        if prepare is not None:
            PREPARE[name] = prepare
        if needs:
            CHECK_NEEDS[name] = frozenset(needs)
            ANCHORS.add(CHECK_NEEDS[name])
        return fn
    return deco


def _ensure_checks() -> None:
    from . import brand, compliance, facts  # noqa: F401  (they register their checks)


# --------------------------------------------------------------------------- compiled rules

_PARSER: Any
try:  # Python >= 3.11
    import re._constants as _C  # type: ignore[import-not-found]
    import re._parser as _PARSER  # type: ignore[import-not-found,no-redef]
except ImportError:  # pragma: no cover
    import sre_constants as _C  # type: ignore[no-redef]
    import sre_parse as _PARSER  # type: ignore[no-redef]


_COMMON = frozenset("""you your you're you've the and for our we we're we've a an of to in on at it it's this that
with is are be as or by from my me us its all more
recommend recommended""".split())  # (every explanation says "We recommended this because")


def _score(anchors: set[str] | None) -> int:
    """How selective a set of anchors is: the shortest anchor's length, common words count as 0."""
    if not anchors:
        return -1
    return min(0 if a.strip(" '") in _COMMON else len(a.strip()) for a in anchors)


DIGITS = frozenset("0123456789")
_DIGIT_CLASSES = ([(_C.CATEGORY, _C.CATEGORY_DIGIT)], [(_C.RANGE, (48, 57))])
#: a digit \d matches that is not an ASCII digit
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def _anchors(seq: Any, min_score: int = 2) -> set[str] | None:
    """Literal substrings (lowercase) one of which must occur for the pattern to match; None: unknown."""
    items = list(seq)
    if len(items) == 1 and items[0][0] is _C.BRANCH:
        out: set[str] = set()
        for br in items[0][1][1]:
            a = _anchors(br, min_score)
            if a is None:
                return None
            out |= a
        return out
    runs: list[str] = []
    run: list[str] = []
    subs: list[Any] = []
    digits = False
    for op, av in items:
        if op is _C.LITERAL:
            run.append(chr(av).lower())
            continue
        if run:
            runs.append("".join(run))
        run = []
        if op is _C.SUBPATTERN:
            subs.append(av[-1])
        elif op in (_C.MAX_REPEAT, _C.MIN_REPEAT) and av[0] >= 1:
            subs.append(av[2])
        elif op is _C.BRANCH:
            subs.append([(op, av)])
        elif op is _C.IN and av in _DIGIT_CLASSES:
            digits = True
    if run:
        runs.append("".join(run))
    cands: list[set[str]] = [{r} for r in runs if r.strip()]
    if digits:  # a digit (\d or [0-9]); AnchorIndex.present() reports every digit for non-ASCII ones
        cands.append(set(DIGITS))
    for sub in subs:
        a = _anchors(sub, min_score)
        if a:
            cands.append(a)
    if not cands:
        return None
    best = max(cands, key=_score)
    return best if _score(best) >= min_score else None


def pattern_anchors(pattern: str, min_score: int = 2) -> frozenset[str] | None:
    try:
        parsed = _PARSER.parse(pattern, 0)
    except Exception:  # pragma: no cover - compile already validated it
        return None
    a = _anchors(parsed, min_score)
    return frozenset(a) if a else None


# --------------------------------------------------------------------------- anchored alternations

def _trie_source(words: Iterable[str]) -> str:
    """A regex matching any of the words, shaped as a trie (one branch per next character), longest first."""
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


class AnchorIndex:
    """Every literal anchor of every :class:`Alt`, found in one pass over a text.

    ``present(text)`` runs an Aho-Corasick automaton (pyahocorasick) of every anchor over the
    lowercased text once: it reports every occurrence, overlapping ones and anchors that are
    prefixes of others included.
    """

    def __init__(self) -> None:
        self.anchors: set[str] = set()
        self.version = 0
        self._ac: Any = None
        self._texts: dict[str, frozenset[str]] = {}  # field text -> anchors (footers, links, CTAs repeat)

    def add(self, anchors: Iterable[str]) -> None:
        new = set(anchors) - self.anchors
        if new:
            self.anchors |= new
            self.version += 1
            self._ac = None
            self._texts = {}

    def _build(self) -> Any:
        ac = ahocorasick.Automaton()
        for a in self.anchors:
            ac.add_word(a, a)
        if self.anchors:
            ac.make_automaton()
        self._ac = ac
        return ac

    def present(self, lowered: str) -> frozenset[str]:
        ac = self._ac or self._build()
        out = {a for _, a in ac.iter(lowered)} if self.anchors else set()
        if not lowered.isascii() and any(c.isdecimal() for c in set(_NON_ASCII.findall(lowered))):
            out.update(DIGITS & self.anchors)  # \d also matches other scripts' digits (Unicode Nd)
        return frozenset(out)

    def present_in(self, texts: Iterable[str]) -> frozenset[str]:
        """The anchors occurring in any of the texts (each text's anchors are cached)."""
        cache = self._texts
        if type(texts) is tuple and len(texts) == 1:  # type: ignore[arg-type]
            p = cache.get(texts[0])  # type: ignore[index]
            if p is not None:
                return p
        sets = []
        for t in texts:
            p = cache.get(t)
            if p is None:
                if len(cache) > 20000:
                    cache.clear()
                p = cache[t] = self.present(t.lower())
            sets.append(p)
        return sets[0] if len(sets) == 1 else frozenset().union(*sets)


ANCHORS = AnchorIndex()


class AltScan:
    """``finditer`` of the alternation ``head (?:i1)|(?:i2)|... tail`` run as one regex per item.

    At each position an alternation takes the first item (in order) that matches there, and its
    next search starts where that match ended. Each item's regex (``head (?:item) tail``) matches
    at a position exactly as the item's branch of the alternation does (lookbehinds see the whole
    string), so the leftmost of the items' next matches, lowest item first on a tie, is the
    alternation's next match (until a match would be empty: finditer then has rules of its own, so
    the alternation itself runs). Items' compiled regexes are shared by every subset, so a
    combination of items seen once costs no compile; one that keeps coming back is compiled as the
    alternation (the same matches, in one scan) after ``COMPILE_AFTER`` uses.
    """

    __slots__ = ("pats", "lows", "cores", "source", "flags", "uses", "combined")

    #: after this many scans the alternation itself is compiled (one scan instead of one per item);
    #: only when some item has no case-folded twin: twins, which open with a literal or skip to their
    #: core (see casefold), scan faster one by one than the alternation does
    COMPILE_AFTER = 64
    COMBINE_TWINS = False

    def __init__(self, pats: tuple[Any, ...], source: str = "", flags: int = 0) -> None:
        self.pats = pats  # re.Pattern or casefold.Folded
        # every item's case-sensitive twin for lowercased ASCII text (None: some item has none)
        lows = tuple(getattr(p, "low", None) if type(p) is Folded else None for p in pats)
        self.lows = lows if all(x is not None for x in lows) else None
        self.cores = tuple(p.core if type(p) is Folded else None for p in pats)
        self.source, self.flags = source, flags
        self.uses = 0
        self.combined: Any = None

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        if self.combined is not None:
            return self.combined.finditer(text)
        self.uses += 1
        if self.source and self.uses >= self.COMPILE_AFTER and (self.lows is None or self.COMBINE_TWINS):
            self.combined = fold(re.compile(self.source, self.flags))
            return self.combined.finditer(text)
        if self.lows is not None:
            low = safe_lower(text)
            if low is not None:
                return self._scan(low, self.lows, text, self.cores)
        return self._scan(text, self.pats, text)

    def _scan(self, text: str, pats: tuple[Any, ...], original: str,
              cores: tuple[Any, ...] | None = None) -> Iterator[re.Match[str]]:
        if cores is None:
            nxt = [p.search(text) for p in pats]
        else:  # an item whose core is absent cannot match (see casefold._core)
            nxt = [None if c is not None and c.search(text) is None else p.search(text) for p, c in zip(pats, cores)]
        out: list[re.Match[str]] = []
        while True:
            best = None
            for m in nxt:
                if m is not None and (best is None or m.start() < best.start()):
                    best = m
            if best is None:
                return iter(out)
            end = best.end()
            if end == best.start():  # an empty match: finditer's own rules apply, so let the alternation run
                self.combined = fold(re.compile(self.source, self.flags))
                return self.combined.finditer(original)
            out.append(best)
            for i, m in enumerate(nxt):
                if m is not None and m.start() < end:
                    nxt[i] = pats[i].search(text, end)

    def search(self, text: str) -> re.Match[str] | None:
        return next(self.finditer(text), None)


class Alt:
    """``head (?:item1)|(?:item2)|... tail``, scanning only the items that can match a given text.

    Each item's literal anchors (substrings one of which every match contains) are known; an item
    none of whose anchors occurs in a text cannot match there, so the regex for that text keeps only
    the other items, in their original order. Leftmost-first alternation then finds exactly the
    matches of the full regex, at a fraction of the scanning cost.
    """

    __slots__ = ("items", "flags", "head", "tail", "named", "item_anchors", "full", "_cache", "_all_on", "_union",
                 "_by_anchor", "_by_hits", "_item_rx")

    def __init__(self, items: Sequence[str], flags: int, head: str = r"(?<![\w])(?:", tail: str = r")(?![\w])",
                 named: str | None = None) -> None:
        self.items = tuple(items)
        self.flags = flags
        self.head, self.tail, self.named = head, tail, named
        self.item_anchors = tuple(pattern_anchors(p, 1) for p in self.items)
        self._all_on = tuple(i for i, a in enumerate(self.item_anchors) if a is None)
        self._by_anchor: dict[str, list[int]] = {}
        for i, a in enumerate(self.item_anchors):
            if a:
                ANCHORS.add(a)
                for x in a:
                    self._by_anchor.setdefault(x, []).append(i)
        self._union = frozenset(self._by_anchor)
        self.full = self._source(range(len(self.items)))
        self._cache: dict[tuple[int, ...], re.Pattern[str] | AltScan | None] = {}
        self._by_hits: dict[frozenset[str], re.Pattern[str] | AltScan | None] = {}
        self._item_rx: dict[int, Any] = {}

    def _source(self, idx: Iterable[int]) -> str:
        idx = tuple(idx)
        if not self.head and not self.tail and not self.named and len(self.items) == 1 and idx == (0,):
            return self.items[0]
        if self.named:
            parts = [f"(?P<{self.named}{i}>{self.items[i]})" for i in idx]
        else:
            parts = [f"(?:{self.items[i]})" for i in idx]
        return self.head + "|".join(parts) + self.tail

    def compile_full(self) -> re.Pattern[str]:
        return re.compile(self.full, self.flags)

    def compile_items(self) -> Alt:
        """Compile (and case-fold) every item now rather than on the first text that needs it."""
        for i in range(len(self.items)):
            self._item(i)
        return self

    def _item(self, i: int) -> Any:
        """Item i's regex (``head (?:item) tail``), case-folded (see :mod:`.casefold`)."""
        rx = self._item_rx.get(i)
        if rx is None:
            rx = self._item_rx[i] = fold(re.compile(self._source((i,)), self.flags))
        return rx

    def may_match(self, text: str) -> bool:
        """False when no item can match in this text (none of the items' anchors occurs in it)."""
        if self._all_on:
            return True
        here = ANCHORS._texts.get(text)
        return not self._union.isdisjoint(here if here is not None else ANCHORS.present_in((text,)))

    def regex_for(self, present: frozenset[str]) -> re.Pattern[str] | AltScan | None:
        """A regex (``finditer``) of the items that can match a text whose present anchors are given
        (None: no item)."""
        hits = self._union.intersection(present)
        rx = self._by_hits.get(hits, False)
        if rx is not False:
            return rx  # type: ignore[return-value]
        on = set(self._all_on)
        for x in hits:
            on.update(self._by_anchor[x])
        idx = tuple(sorted(on))
        rx = self._cache.get(idx, False)
        if rx is False:
            if not idx:
                rx = None
            elif len(idx) == 1:
                rx = self._item(idx[0])
            else:
                rx = AltScan(tuple(self._item(i) for i in idx), self._source(idx), self.flags)
            self._cache[idx] = rx
        if len(self._by_hits) > 4096:
            self._by_hits.clear()
        self._by_hits[hits] = rx
        return rx  # type: ignore[return-value]


_WORDS_RE = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?")


def _split_anchors(anchors: frozenset[str] | None) -> tuple[frozenset[str], tuple[str, ...]] | None:
    """Anchors that are whole words (checked against the message's word set) and the rest (substrings)."""
    if anchors is None:
        return None
    # whole-word lookups would miss inflections ("conservative" in "conservatives"): substrings only
    return frozenset(), tuple(sorted(anchors, key=len, reverse=True))


@dataclass
class CompiledRule:
    rule: Rule
    file: str
    line: int | None
    regex: Any = None  # re.Pattern or casefold.Folded
    anchors: frozenset[str] | None = None
    exceptions: tuple[Any, ...] = ()
    swaps: tuple[tuple[re.Pattern[str], str], ...] = ()
    check: CheckFn | None = None
    pre: tuple[frozenset[str], tuple[str, ...]] | None = None
    alt: Alt | None = None  # existence/occurrence tokens, regex pattern: scanned per field via anchors
    swap_alts: tuple[tuple[Alt, str], ...] = ()
    required_cache: dict[str, bool] = field(default_factory=dict, repr=False, compare=False)
    hit_cache: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)  # per text (see raw_spans)
    conditional: bool = False  # the rule has a 'when' or an 'unless'

    def __post_init__(self) -> None:
        self.conditional = self.rule.when is not None or self.rule.unless is not None

    @property
    def id(self) -> str:
        return self.rule.id


@dataclass
class RuleSet:
    rules: tuple[CompiledRule, ...]
    files: tuple[str, ...]
    _gate: tuple[dict[str, list[int]], list[bool]] | None = field(default=None, repr=False, compare=False)
    _when: dict[tuple[Any, ...], tuple[list[int], frozenset[int]]] = field(default_factory=dict, repr=False,
                                                                           compare=False)
    _owner_keys: frozenset[str] = field(default=frozenset(), repr=False, compare=False)
    _batch: WordListBatch | None = field(default=None, repr=False, compare=False)
    _batch_when: dict[tuple[Any, ...], tuple[Any, ...]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def batch(self) -> WordListBatch:
        if self._batch is None:
            self._batch = WordListBatch.build(self.rules)
        return self._batch

    def split(self, view: MessageView) -> tuple[list[int], frozenset[int]]:
        """(:meth:`active`'s rules other than the word-list batch's, the batch's rules whose ``when``
        applies): what :func:`contentgen.gates.run_gates` evaluates rule by rule and field by field."""
        if self._gate is None:
            self.active(view)  # builds the anchor owners
        m = view.ctx.member
        key = (m.opt_in_tier, m.segment, bool(m.first_name), view.ctx.channel or "email")
        got = self._batch_when.get(key)
        if got is None:
            batch = self.batch.reads
            owners, gated = self._gate  # type: ignore[misc]
            ungated, gated_ok, applies = [], set(), set()
            for i, cr in enumerate(self.rules):
                if _when_applies(cr.rule.when, *key):
                    if i in batch:
                        applies.add(i)
                    elif gated[i]:
                        gated_ok.add(i)
                    else:
                        ungated.append(i)
            # anchor -> the gated rules outside the batch that apply to this member and channel
            by_anchor = {x: tuple(i for i in ix if i in gated_ok) for x, ix in owners.items()}
            by_anchor = {x: ix for x, ix in by_anchor.items() if ix}
            if len(self._batch_when) > 4096:
                self._batch_when.clear()
            got = self._batch_when[key] = (ungated, frozenset(applies), by_anchor, frozenset(by_anchor))  # type: ignore
        ungated, applies, by_anchor, keys = got  # type: ignore[misc]
        hit = keys.intersection(view.present(T.MODEL_FIELDS))
        if not hit:
            return ungated, applies
        extra: set[int] = set()
        for x in hit:
            extra.update(by_anchor[x])
        return ungated + sorted(extra), applies

    def for_message(self, view: MessageView) -> Iterator[CompiledRule]:
        """The rules that can fire on a message.

        A rule whose ``when`` does not apply to the member and channel is skipped (the rules that
        apply are worked out once per tier, segment, first-name presence and channel). A word-list
        rule (existence, regex, substitution) none of whose anchors occurs in the message cannot
        match, so it is skipped without being evaluated; so is a check registered with ``needs``
        none of which occurs.
        """
        for i in self.active(view):
            yield self.rules[i]

    def active(self, view: MessageView) -> list[int]:
        """Indices of :meth:`for_message`'s rules, in order."""
        if self._gate is None:
            owners: dict[str, list[int]] = {}
            gated = []
            for i, cr in enumerate(self.rules):
                alts = [cr.alt] if cr.alt is not None else [a for a, _ in cr.swap_alts]
                g = cr.rule.kind in ("existence", "regex", "substitution") and bool(alts) and all(
                    not a._all_on for a in alts) and _MODEL_SET.issuperset(cr.rule.fields)
                needs = CHECK_NEEDS.get(cr.rule.check or "") if cr.rule.kind == "check" and _MODEL_SET.issuperset(
                    cr.rule.fields) else None
                gated.append(g or bool(needs))
                if g:
                    for a in alts:
                        for x in a._union:
                            owners.setdefault(x, []).append(i)
                elif needs:
                    for x in needs:
                        owners.setdefault(x, []).append(i)
            self._gate = (owners, gated)
            self._owner_keys = frozenset(owners)
        owners, gated = self._gate
        m = view.ctx.member
        key = (m.opt_in_tier, m.segment, bool(m.first_name), view.ctx.channel or "email")
        by_when = self._when.get(key)
        if by_when is None:
            ungated = []
            gated_ok = set()
            for i, cr in enumerate(self.rules):
                if _when_applies(cr.rule.when, *key):
                    if gated[i]:
                        gated_ok.add(i)
                    else:
                        ungated.append(i)
            if len(self._when) > 4096:
                self._when.clear()
            by_when = self._when[key] = (ungated, frozenset(gated_ok))
        ungated, gated_ok = by_when
        active: set[int] = set()
        for x in self._owner_keys.intersection(view.present(T.MODEL_FIELDS)):
            active.update(owners[x])
        if not active:
            return ungated
        return sorted(ungated + [i for i in active if i in gated_ok])

    def __iter__(self) -> Iterator[CompiledRule]:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def get(self, rule_id: str) -> CompiledRule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)


def _wrap_tokens(tokens: Sequence[str]) -> str:
    return r"(?<![\w])(?:" + "|".join(f"(?:{t})" for t in tokens) + r")(?![\w])"


def _compile(rule: Rule, file: str, line: int | None) -> CompiledRule:
    flags = re.MULTILINE | (re.IGNORECASE if rule.ignorecase else 0)

    def comp(src: str, what: str) -> re.Pattern[str]:
        try:
            return re.compile(src, flags)
        except re.error as e:
            raise RuleFileError(f"rule '{rule.id}': bad regex in {what}: {e}", file=file, line=line,
                                key=rule.id, hint="fix the pattern (YAML single quotes keep backslashes)") from e

    cr = CompiledRule(rule=rule, file=file, line=line)
    if rule.kind in ("existence", "occurrence") and rule.tokens:
        for t in rule.tokens:
            comp(t, f"token {t!r}")
        src = _wrap_tokens(rule.tokens)
        cr.regex = fold(comp(src, "tokens"))
        anchors: set[str] | None = set()
        for t in rule.tokens:
            a = pattern_anchors(t)
            if a is None:
                anchors = None
                break
            anchors |= a  # type: ignore[operator]
        cr.anchors = frozenset(anchors) if anchors else None
    elif rule.pattern:
        cr.regex = fold(comp(rule.pattern, "pattern"))
        if rule.kind != "required":
            cr.anchors = pattern_anchors(rule.pattern)
    if rule.exceptions:
        cr.exceptions = tuple(fold(comp(e, f"exception {e!r}")) for e in rule.exceptions)
    if rule.swap:
        cr.swaps = tuple((comp(_wrap_tokens([bad]), f"swap {bad!r}"), good) for bad, good in rule.swap.items())
        anchors = set()
        for bad in rule.swap:
            a = pattern_anchors(bad)
            if a is None:
                anchors = None
                break
            anchors |= a
        cr.anchors = frozenset(anchors) if anchors else None
    cr.pre = _split_anchors(cr.anchors)
    if rule.kind in ("existence", "occurrence") and rule.tokens:
        cr.alt = Alt(rule.tokens, flags)
    elif rule.kind in ("regex", "occurrence") and rule.pattern:
        cr.alt = Alt((rule.pattern,), flags, head="", tail="")
    if rule.swap:
        cr.swap_alts = tuple((Alt((bad,), flags), good) for bad, good in rule.swap.items())
    # each item's regex is compiled with the rule (load time), not on the first message that needs it
    for alt in ([cr.alt] if cr.alt is not None else []) + [a for a, _ in cr.swap_alts]:
        for i in range(len(alt.items)):
            alt._item(i)
    if rule.kind == "check":
        _ensure_checks()
        if rule.check not in CHECKS:
            raise RuleFileError(f"rule '{rule.id}': unknown check '{rule.check}' (known: {', '.join(sorted(CHECKS))})",
                                file=file, line=line, key=rule.id)
        cr.check = CHECKS[rule.check]
        prepare = PREPARE.get(rule.check)
        if prepare is not None:
            try:
                prepare(rule)
            except (re.error, ValueError, TypeError, KeyError, AttributeError) as e:
                raise RuleFileError(f"rule '{rule.id}': bad params for check '{rule.check}': {e}", file=file,
                                    line=line, key=rule.id, hint="fix the rule's params (see its check's docstring)"
                                    ) from e
    return cr


# --------------------------------------------------------------------------- loading

#: libyaml's safe loader when PyYAML was built with it (the rule files are read at every start)
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _rule_lines(text: str) -> list[int | None]:
    """1-based line of each item of the top-level 'rules' list (None when not found)."""
    try:
        node = yaml.compose(text, Loader=_YAML_LOADER)
    except yaml.YAMLError:
        return []
    if node is None or not isinstance(node, yaml.MappingNode):
        return []
    for k, v in node.value:
        if getattr(k, "value", None) == "rules" and isinstance(v, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in v.value]
    return []


def _key_line(text: str, rule_line: int | None, key: str) -> int | None:
    if rule_line is None:
        return None
    lines = text.splitlines()
    for i in range(rule_line - 1, min(len(lines), rule_line + 200)):
        if re.match(rf"^\s*(?:-\s+)?{re.escape(key)}\s*:", lines[i]):
            return i + 1
        if i > rule_line - 1 and re.match(r"^\s*-\s+id\s*:", lines[i]):
            break
    return rule_line


def load_rule_file(path: Path) -> list[CompiledRule]:
    file = str(path)
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise RuleFileError(f"not valid YAML: {getattr(e, 'problem', e)}", file=file,
                            line=mark.line + 1 if mark else None) from e
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise RuleFileError("a rule file is a mapping with a 'rules' list", file=file, line=1)
    unknown = set(data) - {"family", "description", "rules"}
    if unknown:
        raise RuleFileError(f"unknown top-level key(s): {', '.join(sorted(unknown))}", file=file, line=1)
    lines = _rule_lines(text)
    out = []
    for i, raw in enumerate(data["rules"]):
        line = lines[i] if i < len(lines) else None
        rid = raw.get("id", f"#{i + 1}") if isinstance(raw, dict) else f"#{i + 1}"
        if not isinstance(raw, dict):
            raise RuleFileError(f"rule {rid}: each rule is a mapping", file=file, line=line)
        try:
            rule = Rule.model_validate(raw)
        except ValidationError as e:
            err = e.errors()[0]
            loc = ".".join(str(p) for p in err["loc"]) or "(rule)"
            top = str(err["loc"][0]) if err["loc"] else ""
            kind = err["type"]
            msg = ("unknown key" if kind == "extra_forbidden" else err["msg"])
            raise RuleFileError(f"rule '{rid}': {msg} at '{loc}'", file=file,
                                line=_key_line(text, line, top) if top else line, key=str(rid)) from e
        out.append(_compile(rule, file, line))
    return out


_CACHE: dict[tuple[tuple[str, float], ...], RuleSet] = {}


def load_rules(dirs: Sequence[Path] | None = None) -> RuleSet:
    """Load every ``*.yaml`` rule file in the folders (default: the repo's brand_rules/ and compliance/).

    Cached on the files' paths and modification times. Raises RuleFileError for a broken file.
    """
    folders = [Path(d) for d in (dirs or DEFAULT_DIRS)]
    files: list[Path] = []
    for d in folders:
        if not d.is_dir():
            raise RuleFileError("rule folder does not exist", file=str(d))
        files.extend(sorted(list(d.glob("*.yaml")) + list(d.glob("*.yml"))))
    key = tuple((str(f), f.stat().st_mtime) for f in files)
    if key in _CACHE:
        return _CACHE[key]
    rules: list[CompiledRule] = []
    seen: dict[str, CompiledRule] = {}
    for f in files:
        for cr in load_rule_file(f):
            if cr.id in seen:
                first = seen[cr.id]
                raise RuleFileError(f"duplicate rule id '{cr.id}' (first defined in {first.file}:{first.line})",
                                    file=cr.file, line=cr.line, key=cr.id)
            seen[cr.id] = cr
            rules.append(cr)
    rs = RuleSet(rules=tuple(rules), files=tuple(str(f) for f in files))
    _CACHE[key] = rs
    return rs


# --------------------------------------------------------------------------- evaluation

_MODEL_SET = frozenset(T.MODEL_FIELDS)


class MessageView:
    """A message plus its context, with per-message caches shared by all rules."""

    __slots__ = ("msg", "ctx", "cache", "_fields", "_lower", "_words", "_lowered", "_present", "_present_v")

    def __init__(self, msg: RenderedMessage, ctx: GateContext) -> None:
        self.msg = msg
        self.ctx = ctx
        self.cache: dict[str, Any] = {}
        self._fields: dict[tuple[str, ...], list[tuple[str, str]]] = {}
        self._lower: dict[tuple[str, ...], str] = {}
        self._words: dict[tuple[str, ...], frozenset[str]] = {}
        self._lowered: dict[tuple[str, ...], list[str]] = {}
        self._present: dict[Any, frozenset[str]] = {}
        self._present_v = ANCHORS.version

    def present(self, names: tuple[str, ...] = T.MODEL_FIELDS) -> frozenset[str]:
        """The rule anchors (see :class:`AnchorIndex`) that occur anywhere in the named fields.

        Computed once per message over the model's fields (or every field, when a rule also reads
        the footer or the link): a superset of what occurs in any one of them, so an :class:`Alt`
        narrowed to it still finds every match in every field.
        """
        if self._present_v != ANCHORS.version:  # a check compiled new anchors since: recompute
            self._present.clear()
            self._present_v = ANCHORS.version
        p = self._present.get(names)
        if p is not None:
            return p
        model = _MODEL_SET.issuperset(names)
        p = self._present.get(model)
        if p is None:
            p = self._present[model] = ANCHORS.present_in(
                t for _, t in self.fields(T.MODEL_FIELDS if model else T.ALL_FIELDS))
        self._present[names] = p
        return p

    @property
    def tier(self) -> int:
        return self.ctx.member.opt_in_tier

    def fields(self, names: tuple[str, ...]) -> list[tuple[str, str]]:
        f = self._fields.get(names)
        if f is None:
            by_name = self._fields.get(None)  # type: ignore[call-overload]
            if by_name is None:  # each field's (label, text) pairs, read from the message once
                msg = self.msg
                by_name = self._fields[None] = {  # type: ignore[index]
                    "subject": [("subject", msg.subject or "")], "preheader": [("preheader", msg.preheader or "")],
                    "body": [("body", msg.body or "")], "cta_text": [("cta_text", msg.cta_text or "")],
                    "cta_url": [("cta_url", msg.cta_url or "")], "footer": [("footer", msg.footer or "")],
                    "explanations": [(f"explanations[{i}].text", ex.text) for i, ex in enumerate(msg.explanations)]}
            f = self._fields[names] = [x for n in names for x in (by_name[n] if n in by_name  # type: ignore[index]
                                                                 else T.message_fields(self.msg, (n,)))]
        return f

    def lower(self, names: tuple[str, ...]) -> str:
        s = self._lower.get(names)
        if s is None:
            s = self._lower[names] = "\n".join(self.lowered(names))
        return s

    def lowered(self, names: tuple[str, ...]) -> list[str]:
        w = self._lowered.get(names)
        if w is None:  # (each text's lowercase is cached: footers, CTAs, subjects repeat)
            w = self._lowered[names] = [lower(t) for _, t in self.fields(names)]
        return w

    def words(self, names: tuple[str, ...]) -> frozenset[str]:
        w = self._words.get(names)
        if w is None:
            w = self._words[names] = frozenset(_WORDS_RE.findall(self.lower(names)))
        return w

    def may_match(self, pre: tuple[frozenset[str], tuple[str, ...]], names: tuple[str, ...]) -> bool:
        return any(map(self.lower(names).__contains__, pre[1]))

    def text(self, label: str) -> str:
        if label.startswith("explanations["):
            i = int(label[len("explanations["):label.index("]")])
            return self.msg.explanations[i].text
        return getattr(self.msg, label, "") or ""

    def protected(self, label: str) -> list[tuple[int, int]]:
        """Spans of catalog product names and catalog claims in a field (brand rules skip them)."""
        key = "protected:" + label
        p = self.cache.get(key)
        if p is None:
            from .facts import protected_spans
            p = self.cache[key] = protected_spans(self, label)
        return p


def _when_applies(w: When | None, tier: int, segment: str, has_first_name: bool, channel: str) -> bool:
    if w is not None:
        if w.tier is not None and tier not in w.tier:
            return False
        if w.segment is not None and segment not in w.segment:
            return False
        if w.has_first_name is not None and has_first_name != w.has_first_name:
            return False
        if w.channel is not None and channel not in w.channel:
            return False
    return True


def _applies(rule: Rule, view: MessageView, when_checked: bool = False) -> bool:
    if not when_checked and rule.when is not None:
        m = view.ctx.member
        if not _when_applies(rule.when, m.opt_in_tier, m.segment, bool(m.first_name), view.ctx.channel or "email"):
            return False
    u = rule.unless
    if u is not None and u.offer_ends_within_hours is not None:
        limit = u.offer_ends_within_hours / 24.0
        for o in view.ctx.offers:
            if o.valid_on(view.ctx.send_date) and (o.valid_until - view.ctx.send_date).days <= limit:
                return False
    return True


def _inside(spans: list[tuple[int, int]], a: int, b: int) -> bool:
    return any(s <= a and b <= e for s, e in spans)


def _excepted(cr: CompiledRule, text: str, a: int, b: int) -> bool:
    if not cr.exceptions:
        return False
    lo, hi = max(0, a - 60), min(len(text), b + 60)
    for rx in cr.exceptions:
        for m in rx.finditer(text, lo, hi):
            if m.start() <= a and b <= m.end():
                return True
    return False


def _matches(cr: CompiledRule, view: MessageView, label: str, text: str,
             regex: re.Pattern[str]) -> Iterator[re.Match[str]]:
    for m in regex.finditer(text):
        a, b = m.span()
        if a == b or _excepted(cr, text, a, b):
            continue
        if (cr.rule.skip_protected if cr.rule.skip_protected is not None else cr.rule.gate == "brand") and _inside(view.protected(label), a, b):
            continue
        yield m


_NEVER = re.compile(r"(?!x)x")


def raw_spans(cr: CompiledRule, text: str, here: frozenset[str] | None = None) -> tuple[tuple[int, int], ...]:
    """Spans of a word-list or regex rule's matches in a text (not empty, not excepted), before the
    protected spans (catalog names and claims) are taken out: pure in the rule and the text, so cached
    per text (subjects, explanations, CTAs and footers repeat). ``here``: the text's anchors, if known.
    """
    cache = cr.hit_cache
    spans = cache.get(text)  # type: ignore[call-overload]
    if spans is None:
        alt = cr.alt
        assert alt is not None
        # only the items whose anchors occur in this very text can match in it
        rx = alt.regex_for(here if here is not None else ANCHORS.present_in((text,)))
        if rx is None:
            spans = ()
        else:
            spans = tuple((a, b) for a, b in (m.span() for m in rx.finditer(text))
                          if a != b and not _excepted(cr, text, a, b))
        if len(cache) > 8192:
            cache.clear()
        cache[text] = spans  # type: ignore[index]
    return spans


@dataclass
class WordListBatch:
    """The word-list and regex rules of a rule set, evaluated field by field rather than rule by rule.

    For each field text, the rules any of whose anchors occur in it are worked out once; of those, the
    ones that apply to the member and read the field are scanned (:func:`raw_spans`, cached per rule
    and text), so a repeated text costs a lookup and a message only looks further at rules with hits.
    """

    idx: tuple[int, ...]
    owners: dict[str, tuple[int, ...]]
    owner_keys: frozenset[str]
    all_on: tuple[int, ...]
    names: tuple[str, ...]  # every field any of them reads
    reads: dict[int, frozenset[str]]
    protect: dict[int, bool]
    by_text: dict[str, tuple[int, ...]] = field(default_factory=dict)

    @classmethod
    def build(cls, rules: Sequence[CompiledRule]) -> WordListBatch:
        idx = tuple(i for i, cr in enumerate(rules) if cr.rule.kind in ("existence", "regex") and cr.alt is not None)
        owners: dict[str, list[int]] = {}
        all_on = []
        for i in idx:
            alt = rules[i].alt
            assert alt is not None
            if alt._all_on:
                all_on.append(i)
            for x in alt._union:
                owners.setdefault(x, []).append(i)
        names = tuple(n for n in T.ALL_FIELDS if any(n in rules[i].rule.fields for i in idx))
        return cls(idx=idx, owners={k: tuple(v) for k, v in owners.items()}, owner_keys=frozenset(owners),
                   all_on=tuple(all_on), names=names, reads={i: frozenset(rules[i].rule.fields) for i in idx},
                   protect={i: (rules[i].rule.skip_protected if rules[i].rule.skip_protected is not None
                                else rules[i].rule.gate == "brand") for i in idx})

    def candidates(self, text: str) -> tuple[int, ...]:
        """The batch's rules any of whose anchors occur in the text (or that scan every text)."""
        got = self.by_text.get(text)
        if got is None:
            cands = set(self.all_on)
            for x in self.owner_keys.intersection(ANCHORS.present_in((text,))):
                cands.update(self.owners[x])
            got = tuple(sorted(cands))
            if len(self.by_text) > 8192:
                self.by_text.clear()
            self.by_text[text] = got
        return got

    def findings(self, rs: RuleSet, view: MessageView, applies: frozenset[int]) -> list[Finding]:
        """Findings of the batch's rules that apply (``applies``: their ``when`` holds) on the message."""
        out: list[Finding] = []
        rules = rs.rules
        reads = self.reads
        for label, text in view.fields(self.names):
            name = None
            for i in self.candidates(text):
                if i not in applies:
                    continue
                if name is None:
                    name = "explanations" if label.startswith("explanations[") else label
                if name not in reads[i]:
                    continue
                cr = rules[i]
                spans = raw_spans(cr, text)
                if not spans or (cr.rule.unless is not None and not _applies(cr.rule, view, True)):
                    continue
                found = [Hit(label, a, b) for a, b in spans
                         if not (self.protect[i] and _inside(view.protected(label), a, b))]
                out.extend(_findings(cr, view, found))
        return out


def _hits(cr: CompiledRule, view: MessageView) -> Iterator[Hit]:
    rule = cr.rule
    kind = rule.kind
    names = rule.fields
    fields = view.fields(names)
    if kind in ("existence", "regex"):
        protect = rule.skip_protected if rule.skip_protected is not None else rule.gate == "brand"
        for label, text in fields:
            for a, b in raw_spans(cr, text):
                if protect and _inside(view.protected(label), a, b):
                    continue
                yield Hit(label, a, b)
    elif kind == "substitution":
        present = view.present(names)
        for label, text in fields:
            for alt, good in cr.swap_alts:
                rx = alt.regex_for(present)
                if rx is None:
                    continue
                for m in _matches(cr, view, label, text, rx):
                    yield Hit(label, m.start(), m.end(), slots={"suggestion": good})
    elif kind == "occurrence":
        alt = cr.alt
        assert alt is not None

        rx = alt.regex_for(view.present(names))

        def found(label: str, text: str) -> list[tuple[str, re.Match[str]]]:
            return [] if rx is None else [(label, m) for m in _matches(cr, view, label, text, rx)]

        groups: list[list[tuple[str, re.Match[str]]]] = []
        if rule.scope == "message":
            groups.append([x for label, text in fields for x in found(label, text)])
        else:
            for label, text in fields:
                groups.append(found(label, text))
        for g in groups:
            n = len(g)
            if rule.max is not None and n > rule.max:
                label, m = g[rule.max]
                yield Hit(label, m.start(), m.end(), slots={"count": n, "max": rule.max})
            elif rule.min is not None and n < rule.min:
                label = g[0][0] if g else (fields[0][0] if fields else rule.fields[0])
                yield Hit(label, 0, 0, excerpt="", slots={"count": n, "min": rule.min})
    elif kind == "sentence_length":
        cache = cr.hit_cache  # pure in the text (and whether it is the body): cache by both
        for label, text in fields:
            key = (label == "body", text)
            long_ = cache.get(key)
            if long_ is None:
                # lines split independently, so a line's sentences are the whole text's sentences in it
                sents = T.split_sentences(text)
                if label == "body":
                    sents = T.spans_within(sents, T.body_prose_lines(text))
                long_ = []
                words = T.WORD_RE.findall
                for a, b in sents:
                    n = len(words(text, a, b))  # (T.count_words(text[a:b]) without the slice)
                    if n > rule.max:  # type: ignore[operator]
                        long_.append((a, b, n))
                long_ = tuple(long_)
                if len(cache) > 8192:
                    cache.clear()
                cache[key] = long_  # type: ignore[assignment]
            for a, b, n in long_:  # type: ignore[misc]
                yield Hit(label, a, b, slots={"count": n, "max": rule.max})
    elif kind == "length":
        for label, text in fields:
            n = len(text)
            if rule.max is not None and n > rule.max:
                yield Hit(label, rule.max, n, excerpt=text, slots={"count": n, "max": rule.max})
            elif rule.min is not None and n < rule.min:
                yield Hit(label, 0, n, excerpt=text, slots={"count": n, "min": rule.min})
    elif kind == "required":
        rx = cr.regex
        assert rx is not None

        seen = cr.required_cache

        def present(text: str) -> bool:  # pure in the rule and the text: footers and links repeat
            got = seen.get(text)
            if got is not None:
                return got
            if rule.position == "end":
                got = any(m.end() == len(text.rstrip()) for m in rx.finditer(text))
            elif rule.position == "start":
                got = rx.match(text.lstrip()) is not None
            else:
                got = rx.search(text) is not None
            if len(seen) > 4096:
                seen.clear()
            seen[text] = got
            return got

        if rule.scope == "message":
            if not any(present(t) for _, t in fields):
                label = fields[-1][0] if fields else rule.fields[-1]
                yield Hit(label, 0, 0, excerpt="")
        else:
            for label, text in fields:
                if not present(text):
                    tail = text.rstrip()
                    a = tail.rfind("\n") + 1 if rule.position == "end" else 0
                    yield Hit(label, a, len(tail), excerpt=tail[a:] if rule.position == "end" else "")
    elif kind == "check":
        yield from cr.check(rule, view)  # type: ignore[misc]


class _Slots(dict):  # type: ignore[type-arg]
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def evaluate(cr: CompiledRule, view: MessageView, when_checked: bool = False) -> list[Finding]:
    """The rule's findings on the message (``when_checked``: the caller already knows its ``when`` applies)."""
    rule = cr.rule
    if cr.conditional and not _applies(rule, view, when_checked):
        return []
    return _findings(cr, view, cr.check(rule, view) if cr.check is not None else _hits(cr, view))


def _findings(cr: CompiledRule, view: MessageView, hits: Iterable[Hit]) -> list[Finding]:
    rule = cr.rule
    out = []
    for h in hits:
        text = view.text(h.field) if h.excerpt is None else ""
        excerpt = h.excerpt if h.excerpt is not None else text[h.start:h.end]
        slots = _Slots(excerpt=excerpt, field=h.field, rule=rule.id, tier=view.tier, **h.slots)
        try:
            message = rule.message.format_map(slots)
        except (ValueError, IndexError):
            message = rule.message
        decidable = rule.decidable if h.decidable is None else h.decidable
        out.append(Finding(rule_id=rule.id, gate=rule.gate, severity=h.severity or rule.severity,  # type: ignore
                           field=h.field, span=(h.start, h.end), excerpt=excerpt[:300], message=message,
                           decidable=decidable))
    return out


# --------------------------------------------------------------------------- examples

def example_catalog() -> list[Product]:
    rows = [
        ("P100", "TrailLite Running Socks", "running", 14.0, True, None, ["moisture-wicking"]),
        ("P200", "Summit Hydration Vest 5L", "running", 59.0, True, None, ["lightweight"]),
        ("P300", "Aurora Rain Jacket", "outdoor", 129.0, True, None, ["waterproof", "recycled"]),
        ("P400", "Cedar Wool Scarf", "apparel", 39.0, True, None, ["merino wool"]),
        ("P500", "Harbor Ceramic Mug Set", "home", 32.0, False, 0, []),
        ("P600", "Glow Daily Moisturizer SPF 30", "beauty", 24.0, True, None, ["SPF 30", "fragrance-free"]),
        ("P700", "Peak Trail Running Shoes", "running", 119.0, True, 2, []),
        ("P800", "Linen Throw Blanket", "home", 49.0, True, None, ["organic linen"]),
        ("P900", "Puzzle Globe", "gifts", 27.0, True, None, []),
    ]
    return [Product(product_id=p, name=n, category=c, price=pr, in_stock=s, stock=st, claims=tuple(cl))
            for p, n, c, pr, s, st, cl in rows]


def example_context(tier: int = 3, segment: str = "Enthusiasts", first_name: str = "Nia",
                    send_date: dt.date | None = None, channel: str = "email") -> GateContext:
    send = send_date or dt.date(2026, 11, 24)
    ev = {
        "P100": [("purchase", "bought running shoes"), ("similar_members", "rated highly")],
        "P200": [("purchase", "bought trail shoes"), ("inventory", "in stock")],
        "P300": [("purchase", "bought hiking boots"), ("predicted", "likely to hike")],
        "P400": [("browsing", "viewed scarves"), ("stated_preference", "likes wool")],
        "P600": [("purchase", "bought sunscreen")],
        "P700": [("segment", "popular with Enthusiasts")],
    }
    recs = tuple(Recommendation(product_id=p, evidence=tuple(Evidence(source=s, detail=d) for s, d in e))
                 for p, e in ev.items())
    offers = (
        Offer(offer_id="O1", kind="percent_off", value=15, applies_to=("P300",), valid_from=dt.date(2026, 11, 20),
              valid_until=dt.date(2026, 12, 6)),
        Offer(offer_id="O2", kind="points_multiplier", value=2, applies_to_category="running",
              valid_from=dt.date(2026, 11, 20), valid_until=dt.date(2026, 11, 30)),
        Offer(offer_id="O3", kind="free_shipping", min_order=50, valid_from=dt.date(2026, 11, 1),
              valid_until=dt.date(2026, 12, 31)),
    )
    member = Member(member_id="M0001", first_name=first_name, segment=segment, churn_risk=0.2,  # type: ignore
                    opt_in_tier=tier)  # type: ignore[arg-type]
    return GateContext(send_date=send, member=member, recommendations=recs, offers=offers,
                       catalog={p.product_id: p for p in example_catalog()}, channel=channel)


def example_case(rule: Rule, ex: str | Example) -> tuple[RenderedMessage, GateContext]:
    if isinstance(ex, str):
        ex = Example(text=ex)
    ctx = example_context(tier=ex.tier or 3, segment=ex.segment or "Enthusiasts",
                          first_name="Nia" if ex.first_name is None else ex.first_name, send_date=ex.send_date,
                          channel=ex.channel or "email")
    if ex.message is not None:
        data = dict(ex.message)
        if "explanations" in data:
            data["explanations"] = [Explanation(**e) if isinstance(e, dict) else e for e in data["explanations"]]
        return RenderedMessage(**data), ctx
    fld = ex.field or rule.fields[0]
    if fld == "explanations":
        msg = RenderedMessage(explanations=(Explanation(product_id=ex.product_id or "P100", text=ex.text),))
    else:
        msg = RenderedMessage(**{fld: ex.text})
    return msg, ctx


def run_rule(cr: CompiledRule, msg: RenderedMessage, ctx: GateContext) -> list[Finding]:
    return evaluate(cr, MessageView(msg, ctx))
