"""Case-insensitive regexes run as case-sensitive twins on lowercased text.

Python's ``re`` scans a pattern compiled with ``re.IGNORECASE`` several times slower than the
same pattern without it (every character is case-folded at every try, and a pattern that opens
with a cased letter gets no fast search for where it can start). Messages are ASCII plus a few
caseless characters (dashes, curly quotes, symbols, emoji); for such text ``text.lower()``
changes only ``A-Z`` and keeps every position, so a pattern rewritten to match on lowercased
text exactly what the original matches on the text finds the same spans, several times faster.

:func:`fold` rewrites the parsed pattern: every literal, negated literal and character class
matches on the lowercase ASCII characters what it matched under ``IGNORECASE`` (worked out by
trying each of those 102 characters against the original node) and on caseless characters what
it always did; then the tree is compiled without ``IGNORECASE``. Everything else (groups,
repeats, lookarounds, ``\\b``, group references) keeps its meaning on lowercased text. A leading
``(?<![\\w])`` is moved behind the literal characters that follow it (:func:`_push_head`), so
that the twin opens with a literal. A pattern with a scoped ``(?i:...)`` or ``(?-i:...)`` is
left as it is.

:class:`Folded` holds both: ``finditer``/``search``/``match`` use the twin on text that
:func:`safe_lower` accepts and the original otherwise. Matches then come from the lowercased
text, so ``group()`` is lowercase: callers that need the original characters slice the text.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

try:  # Python >= 3.11
    import re._compiler as _compiler  # type: ignore[import-not-found]
    import re._constants as _C  # type: ignore[import-not-found]
    import re._parser as _parser  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - Python 3.10
    import sre_compile as _compiler  # type: ignore[no-redef]
    import sre_constants as _C  # type: ignore[no-redef]
    import sre_parse as _parser  # type: ignore[no-redef]

#: the characters lowercased ASCII text can hold
_LOWERED_ASCII = tuple(chr(c) for c in range(128) if not 65 <= c <= 90)


class Unfoldable(Exception):
    pass


@lru_cache(maxsize=4096)
def lower(text: str) -> str:
    """``text.lower()``, cached: every rule scanning a field lowercases the same text."""
    return text.lower()


def safe_lower(text: str) -> str | None:
    """``text.lower()`` when the twins may scan it (see :func:`_safe_lower`); short texts (the
    slices around a match that checks look at) are not cached, so they don't crowd out fields."""
    if len(text) <= 96:
        if text.isascii():
            return text.lower()
        return _safe_lower.__wrapped__(text)
    return _safe_lower(text)


@lru_cache(maxsize=4096)
def _safe_lower(text: str) -> str | None:
    """``text.lower()`` when the twins may scan it: every character is ASCII or caseless (dashes,
    curly quotes, symbols, emoji: ``c.lower() == c == c.upper()``), so lowercasing changes only
    A-Z and keeps every position; None otherwise (the original pattern scans the text)."""
    if not text.isascii():
        for c in set(_NON_ASCII.findall(text)):
            if c.lower() != c or c.upper() != c:
                return None
    return text.lower()


_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def _node_members(op: Any, av: Any, flags: int) -> tuple[int, ...]:
    """The characters of lowercased ASCII text that the single-character node matches under ``flags``
    (cached: rule items share their classes, and combinations of items are folded as they come)."""
    key = (op, repr(av), flags)
    got = _MEMBERS.get(key)
    if got is None:
        got = _MEMBERS[key] = _members(op, av, flags)
    return got


_MEMBERS: dict[tuple[Any, str, int], tuple[int, ...]] = {}


def _members(op: Any, av: Any, flags: int) -> tuple[int, ...]:
    state = _parser.State()
    state.flags = flags
    sub = _parser.SubPattern(state, [(op, av)])
    rx = _compiler.compile(sub, flags)
    return tuple(ord(c) for c in _LOWERED_ASCII if rx.fullmatch(c))


def _class_node(op: Any, av: Any, flags: int) -> tuple[Any, Any]:
    """A negated literal or a character class for lowercased text: on its lowercase ASCII characters
    it matches what the node matched under IGNORECASE; on caseless characters (punctuation, symbols,
    emoji: the only others :func:`safe_lower` lets through) it matches what the node matches, case
    playing no part for them."""
    members = _node_members(op, av, flags)
    if op is _C.NOT_LITERAL:
        others = [ord(c) for c in _LOWERED_ASCII if ord(c) not in members]
        return (_C.IN, [(_C.NEGATE, None), *[(_C.LITERAL, c) for c in others], (_C.LITERAL, av)])
    items = list(av)
    if items and items[0][0] is _C.NEGATE:  # excluded: the original items, and the ASCII non-members
        others = [ord(c) for c in _LOWERED_ASCII if ord(c) not in members]
        return (_C.IN, [(_C.NEGATE, None), *[(_C.LITERAL, c) for c in others], *items[1:]])
    return (_C.IN, [*[(_C.LITERAL, c) for c in members], *items])


def _fold_seq(seq: Any, flags: int) -> None:
    """Rewrite a parsed (sub)pattern in place for lowercased text."""
    data = seq.data
    for k, (op, av) in enumerate(data):
        if op is _C.LITERAL:
            if av < 128 and not 65 <= av <= 90 and not chr(av).isalpha():
                continue  # a digit or punctuation: case plays no part
            if av >= 128:
                members = _node_members(op, av, flags)  # "ſ" matches "s", the Kelvin sign "k"
                if len(members) == 1:
                    data[k] = (_C.LITERAL, members[0])
                elif members:  # pragma: no cover - no character folds to two ASCII letters
                    raise Unfoldable("literal")
                continue  # otherwise it matches only itself (or cased letters safe_lower keeps out)
            data[k] = (_C.LITERAL, ord(chr(av).lower()))
        elif op is _C.NOT_LITERAL or op is _C.IN:
            data[k] = _class_node(op, av, flags)
        elif op is _C.SUBPATTERN:
            group, add, rem, p = av
            if (add | rem) & re.IGNORECASE:
                raise Unfoldable("scoped case flag")
            _fold_seq(p, flags | add)
        elif op is _C.BRANCH:
            for p in av[1]:
                _fold_seq(p, flags)
        elif op in (_C.MAX_REPEAT, _C.MIN_REPEAT) or op is getattr(_C, "POSSESSIVE_REPEAT", None):
            _fold_seq(av[2], flags)
        elif op is _C.ASSERT or op is _C.ASSERT_NOT:
            _fold_seq(av[1], flags)
        elif op is getattr(_C, "ATOMIC_GROUP", None):
            _fold_seq(av, flags)
        elif op is _C.GROUPREF_EXISTS:
            _fold_seq(av[1], flags)
            if av[2] is not None:
                _fold_seq(av[2], flags)
        elif op in (_C.ANY, _C.AT, _C.GROUPREF):
            continue
        else:  # pragma: no cover - an opcode this module does not know
            raise Unfoldable(f"opcode {op}")


_ANY_NODE: list[Any] = []


def _any_char() -> Any:
    if not _ANY_NODE:
        _ANY_NODE.append(_parser.parse(r"[\s\S]").data[0])
    return _ANY_NODE[0]


def _push_head(body: list[Any], seq: Any) -> bool:
    r"""Move a one-character negative lookbehind (``body``: what it must not see, e.g. ``\w``) from
    before ``seq`` to after ``seq``'s leading run of literal characters, widened by that run:
    ``(?<!\w)best`` becomes ``best(?<!\w....)``. Both say the same (the run is what was just
    matched), but a pattern that opens with a literal lets ``re`` jump between the places where that
    literal occurs instead of trying the lookbehind at every position. Branches and groups take it
    one by one. False when ``seq`` cannot take it (the caller keeps it in front)."""
    data = seq.data
    if not data:
        return False
    op, av = data[0]
    if op is _C.LITERAL or op is _C.IN:
        k = 1
        while op is _C.LITERAL and k < len(data) and data[k][0] is _C.LITERAL:
            k += 1
        data.insert(k, (_C.ASSERT_NOT, (-1, _parser.SubPattern(seq.state, list(body) + [_any_char()] * k))))
        return True
    if op is _C.BRANCH:
        for br in av[1]:
            if not _push_head(body, br):
                br.data.insert(0, (_C.ASSERT_NOT, (-1, _parser.SubPattern(seq.state, list(body)))))
        return True
    if op is _C.SUBPATTERN and not av[1] and not av[2]:
        return _push_head(body, av[3])
    return False


def _is_head(node: Any) -> bool:
    return node[0] is _C.ASSERT_NOT and node[1][0] == -1 and node[1][1].getwidth() == (1, 1)


def _lead_with_literals(parsed: Any) -> None:
    r"""``(?<![\w])(?:...)`` patterns (every rule token), and alternations of them
    (``(?<!\w)a(?!\w)|(?<!\w)b(?!\w)``), rewritten by :func:`_push_head`."""
    data = parsed.data
    if data and _is_head(data[0]):
        rest = _parser.SubPattern(parsed.state, data[1:])
        if _push_head(data[0][1][1].data, rest):
            parsed.data = rest.data
    elif len(data) == 1 and data[0][0] is _C.BRANCH:
        for br in data[0][1][1]:
            if br.data and _is_head(br.data[0]):
                rest = _parser.SubPattern(br.state, br.data[1:])
                if _push_head(br.data[0][1][1].data, rest):
                    br.data = rest.data


_REPEATS = (_C.MAX_REPEAT, _C.MIN_REPEAT)


def _expand_lead(data: list[Any]) -> list[Any]:
    """``x{1,2}...`` as ``x x{0,1}...`` (the same matches): a pattern that opens with a character or a
    class, rather than a repeat of one, lets ``re`` skip to where that character occurs."""
    if data and data[0][0] in _REPEATS:
        lo, hi, sub = data[0][1]
        if lo >= 1 and len(sub.data) == 1 and sub.data[0][0] in (_C.LITERAL, _C.IN):
            rest = [] if hi == 1 else [(data[0][0], (lo - 1, hi if hi == _C.MAXREPEAT else hi - 1, sub))]
            return [sub.data[0], *rest, *data[1:]]
    return data


def _has_groupref(data: list[Any]) -> bool:
    for op, av in data:
        if op is _C.GROUPREF or op is _C.GROUPREF_EXISTS:
            return True
        for x in (av if isinstance(av, (tuple, list)) else (av,)):
            if isinstance(x, _parser.SubPattern) and _has_groupref(x.data):
                return True
            if isinstance(x, list) and x and isinstance(x[0], _parser.SubPattern) and any(
                    _has_groupref(b.data) for b in x):
                return True
    return False


def _core(parsed: Any, flags: int) -> re.Pattern[str] | None:
    r"""What every match must contain once its leading optional parts and assertions are dropped
    (``(?:at |around )?(?<![$.,])\d{1,2}:\d{2}`` -> ``\d{1,2}:\d{2}``): if it does not occur in a
    text, neither does the pattern, and it is found quickly (it opens with a character or class)."""
    data = parsed.data
    k = 0
    while k < len(data) and (data[k][0] in (_C.ASSERT, _C.ASSERT_NOT, _C.AT) or (
            data[k][0] in _REPEATS and data[k][1][0] == 0)):
        k += 1
    if k == 0 or k == len(data) or _has_groupref(data[k:]):
        return None
    rest = _expand_lead(list(data[k:]))
    if rest[0][0] not in (_C.LITERAL, _C.IN):
        return None  # no faster to find than the pattern itself
    return _compiler.compile(_parser.SubPattern(parsed.state, rest), flags)


@lru_cache(maxsize=None)
def _twins(pattern: str, flags: int) -> tuple[re.Pattern[str] | None, re.Pattern[str] | None]:
    """(twin, core of the twin) of a case-insensitive pattern; (None, None) when it cannot be folded."""
    try:
        parsed = _parser.parse(pattern, flags)
        pflags = parsed.state.flags
        _fold_seq(parsed, pflags)
        _lead_with_literals(parsed)
        parsed.data = _expand_lead(parsed.data)
        parsed.state.flags = pflags & ~re.IGNORECASE
        cflags = (flags | pflags) & ~re.IGNORECASE
        twin = _compiler.compile(parsed, cflags)
        return twin, _core(parsed, cflags)
    except (Unfoldable, re.error, RecursionError):  # pragma: no cover - keep the original
        return None, None


def folded_twin(rx: re.Pattern[str]) -> re.Pattern[str] | None:
    """The case-sensitive twin of a case-insensitive str pattern (None: not case-insensitive, or not foldable)."""
    if not isinstance(rx.pattern, str) or not rx.flags & re.IGNORECASE or rx.flags & re.ASCII:
        return None
    return _twins(rx.pattern, rx.flags)[0]


def twin_core(rx: re.Pattern[str]) -> re.Pattern[str] | None:
    """The core (see :func:`_core`) of :func:`folded_twin`'s twin, or None."""
    if folded_twin(rx) is None:
        return None
    return _twins(rx.pattern, rx.flags)[1]


class Folded:
    """A case-insensitive pattern and its twin for lowercased ASCII text (see the module doc)."""

    __slots__ = ("rx", "low", "core", "pattern", "flags")

    def __init__(self, rx: re.Pattern[str], low: re.Pattern[str] | None, core: re.Pattern[str] | None = None) -> None:
        self.rx, self.low, self.core = rx, low, core
        self.pattern, self.flags = rx.pattern, rx.flags

    def finditer(self, text: str, pos: int = 0, endpos: int = sys.maxsize) -> Iterator[re.Match[str]]:
        if self.low is not None:
            low = safe_lower(text)
            if low is not None:
                if self.core is not None and self.core.search(low, pos, endpos) is None:
                    return iter(())
                return self.low.finditer(low, pos, endpos)
        return self.rx.finditer(text, pos, endpos)

    def search(self, text: str, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[str] | None:
        if self.low is not None:
            low = safe_lower(text)
            if low is not None:
                if self.core is not None and self.core.search(low, pos, endpos) is None:
                    return None
                return self.low.search(low, pos, endpos)
        return self.rx.search(text, pos, endpos)

    def match(self, text: str, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[str] | None:
        if self.low is not None:
            low = safe_lower(text)
            if low is not None:
                return self.low.match(low, pos, endpos)
        return self.rx.match(text, pos, endpos)

    def fullmatch(self, text: str, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[str] | None:
        if self.low is not None:
            low = safe_lower(text)
            if low is not None:
                return self.low.fullmatch(low, pos, endpos)
        return self.rx.fullmatch(text, pos, endpos)

    def __repr__(self) -> str:
        return f"Folded({self.rx!r})"


def fold(rx: re.Pattern[str]) -> Folded | re.Pattern[str]:
    """``rx`` itself when it is case-sensitive, else a :class:`Folded` pair."""
    if not rx.flags & re.IGNORECASE:
        return rx
    return Folded(rx, folded_twin(rx), twin_core(rx))
