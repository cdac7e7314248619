"""One matcher: a multi-pattern prefilter says which patterns may match a text; Python's ``re``
confirms every candidate and is the only source of truth.

Every prefilterable regex of a rule set (each word-list item with its word boundaries, each
``regex`` pattern, each phrase a check declares) is numbered in one :class:`PatternTable`. A text
is scanned once by the prefilter, which returns the numbers of the patterns that *may* match
there (a superset of those that do); a rule then runs ``re`` on only its candidates
(:class:`Alternation`). A pattern the prefilter does not report cannot match, so dropping it from
an alternation changes no match: the findings are exactly those of the full regexes.

Backends (``CONTENTGEN_PREFILTER`` picks one; default: the first that imports):

- ``hyperscan``: every pattern compiled in Hyperscan's prefilter mode (a superset by
  construction), one database per rule set, cached on disk by the hash of its patterns;
- ``ahocorasick``: literal anchors of each pattern (a lowercase substring every match holds,
  read from the parsed pattern) found with one pyahocorasick automaton;
- ``none``: every pattern is a candidate (``re`` alone; the reference the others are tested against).

The prefilter is only used on texts whose characters mean the same to both engines: ASCII
(without the control characters Python counts as whitespace and PCRE does not), plus non-ASCII
characters that are no letter, digit or space and have no case (dashes, curly quotes, symbols,
emoji). Any other text gets every pattern as a candidate.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

#: Python flags -> what the prefilter must honour (others, e.g. re.VERBOSE, are not used by rules)
_KNOWN_FLAGS = re.IGNORECASE | re.MULTILINE | re.DOTALL


class Prefilter(Protocol):
    name: str

    def scan(self, text: str) -> frozenset[int] | None:
        """The ids of the patterns that may match in the text; None: any of them may."""


_UNSAFE_ASCII = re.compile(r"[\x1c-\x1f]")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def prefilterable(text: str) -> bool:
    """Whether the prefilter's answer holds for the text (see the module docstring)."""
    if text.isascii():
        return _UNSAFE_ASCII.search(text) is None
    for c in set(_NON_ASCII.findall(text)):
        if c.isalnum() or c.isspace() or c.lower() != c or c.upper() != c or chr(0xD800) <= c <= chr(0xDFFF):  # (a lone surrogate literal does not compile with mypyc)
            return False
    return _UNSAFE_ASCII.search(text) is None


class PatternTable:
    """The numbered patterns of a rule set (identical source and flags share a number)."""

    def __init__(self) -> None:
        self.patterns: list[tuple[str, int]] = []
        self._ids: dict[tuple[str, int], int] = {}

    def add(self, source: str, flags: int) -> int:
        key = (source, flags & _KNOWN_FLAGS)
        pid = self._ids.get(key)
        if pid is None:
            pid = self._ids[key] = len(self.patterns)
            self.patterns.append(key)
        return pid

    def expanded(self, expand: Callable[[str], str] | None) -> PatternTable:
        """The table with every pattern's brand slots filled in (same numbers)."""
        if expand is None:
            return self
        out = PatternTable()
        out.patterns = [(expand(src), flags) for src, flags in self.patterns]
        return out

    def digest(self) -> str:
        h = hashlib.sha256()
        for src, flags in self.patterns:
            h.update(f"{flags}\x00{src}\x01".encode())
        return h.hexdigest()


class NoPrefilter:
    name = "none"

    def scan(self, text: str) -> frozenset[int] | None:
        return None


class HyperscanPrefilter:
    """Hyperscan block-mode database of every pattern in prefilter mode (one report per pattern)."""

    name = "hyperscan"
    _hs: Any
    _local: Any
    db: Any

    def __init__(self, table: PatternTable, cache_dir: Path | None) -> None:
        import hyperscan as hs

        self._hs = hs
        self._local = threading.local()
        self.db = self._load(table, cache_dir)

    def _flags(self, flags: int) -> int:
        hs = self._hs
        out = hs.HS_FLAG_PREFILTER | hs.HS_FLAG_SINGLEMATCH | hs.HS_FLAG_UTF8 | hs.HS_FLAG_ALLOWEMPTY
        if flags & re.IGNORECASE:
            out |= hs.HS_FLAG_CASELESS
        if flags & re.MULTILINE:
            out |= hs.HS_FLAG_MULTILINE
        if flags & re.DOTALL:
            out |= hs.HS_FLAG_DOTALL
        return int(out)

    def _load(self, table: PatternTable, cache_dir: Path | None) -> Any:
        hs = self._hs
        key = hashlib.sha256(f"hyperscan {hs.__version__}\x00{table.digest()}".encode()).hexdigest()[:32]
        path = cache_dir / f"prefilter-{key}.hsdb" if cache_dir is not None else None
        if path is not None and path.is_file():
            try:
                return hs.loadb(path.read_bytes(), hs.HS_MODE_BLOCK)
            except (hs.error, OSError, ValueError, TypeError):
                pass  # a stale or truncated file: compile again
        db = hs.Database(mode=hs.HS_MODE_BLOCK)
        if table.patterns:
            db.compile(expressions=[src.encode("utf-8") for src, _ in table.patterns],
                       flags=[self._flags(f) for _, f in table.patterns], ids=list(range(len(table.patterns))))
        if path is not None and table.patterns:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_bytes(bytes(hs.dumpb(db)))
                os.replace(tmp, path)
            except OSError:
                pass  # a read-only cache folder only costs the compile next time
        return db

    def _scratch(self) -> Any:
        s = getattr(self._local, "scratch", None)
        if s is None:
            s = self._local.scratch = self._hs.Scratch(self.db)
        return s

    def scan(self, text: str) -> frozenset[int] | None:
        if not prefilterable(text):
            return None
        found: set[int] = set()
        if text:
            self.db.scan(text.encode("utf-8"), match_event_handler=_collect, context=found, scratch=self._scratch())
        return frozenset(found)


def _collect(pid: int, start: int, end: int, flags: int, found: set[int]) -> None:
    found.add(pid)


class AhoCorasickPrefilter:
    """Literal anchors of each pattern, found with one pyahocorasick automaton over lowercase text."""

    name = "ahocorasick"

    def __init__(self, table: PatternTable) -> None:
        import ahocorasick

        from . import anchors

        self.always: frozenset[int] = frozenset()
        by_anchor: dict[str, set[int]] = {}
        always = set()
        for pid, (src, flags) in enumerate(table.patterns):
            lits = anchors.literal_anchors(src, flags)
            if not lits:
                always.add(pid)
                continue
            for a in lits:
                by_anchor.setdefault(a, set()).add(pid)
        self.always = frozenset(always)
        self.ac = ahocorasick.Automaton()
        for a, pids in by_anchor.items():
            self.ac.add_word(a, frozenset(pids))
        if by_anchor:
            self.ac.make_automaton()
        self._empty = not by_anchor

    def scan(self, text: str) -> frozenset[int] | None:
        if not prefilterable(text):
            return None
        if self._empty:
            return self.always
        out = set(self.always)
        for _, pids in self.ac.iter(text.lower()):
            out |= pids
        return frozenset(out)


def cache_dir() -> Path | None:
    """Where compiled prefilter databases are kept (``CONTENTGEN_CACHE``, else ~/.cache/contentgen;
    ``CONTENTGEN_CACHE=off`` keeps none)."""
    env = os.environ.get("CONTENTGEN_CACHE")
    if env == "off":
        return None
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "contentgen"


def backend_names() -> list[str]:
    """The prefilter backends that import here, best first."""
    out = []
    for name, mod in (("hyperscan", "hyperscan"), ("ahocorasick", "ahocorasick")):
        try:
            __import__(mod)
        except ImportError:
            continue
        out.append(name)
    return out + ["none"]


def build_prefilter(table: PatternTable, backend: str | None = None) -> Prefilter:
    name = backend or os.environ.get("CONTENTGEN_PREFILTER") or backend_names()[0]
    if name == "hyperscan":
        return HyperscanPrefilter(table, cache_dir())
    if name == "ahocorasick":
        return AhoCorasickPrefilter(table)
    if name == "none":
        return NoPrefilter()
    raise ValueError(f"unknown prefilter backend {name!r} (known: hyperscan, ahocorasick, none)")


class Matcher:
    """The prefilter of a rule set (for one brand: patterns may name it) and its answers per text
    (texts repeat: footers, links, subjects)."""

    def __init__(self, table: PatternTable, backend: str | None = None) -> None:
        self.table = table
        self.prefilter = build_prefilter(table, backend)
        self._hits: dict[str, frozenset[int] | None] = {}

    def hits(self, text: str) -> frozenset[int] | None:
        cache = self._hits
        try:
            return cache[text]
        except KeyError:
            pass
        got = self.prefilter.scan(text)
        if len(cache) > 20000:
            cache.clear()
        cache[text] = got
        return got


_NL_ESCAPES = re.compile(r"\\(?:[sWDnAZ]|x0[aA]|012|u000[aA]|N)")
_NEG_CLASS = re.compile(r"\[\^((?:\\.|[^\]\\])*)\]")


def line_local(source: str, flags: int) -> bool:
    """Whether no match of the regex can cross or touch a line break, so that a text's matches are
    its lines' (a conservative reading of the source: no ``\\s``, ``\\W``, ``\\D``, ``\\n``,
    no ``\\A``/``\\Z``, no negated class that lets a newline in, no ``^``/``$`` without MULTILINE,
    no DOTALL)."""
    if flags & re.DOTALL or "\n" in source or "(?s" in source:
        return False
    for m in _NEG_CLASS.finditer(source):
        if "\\n" not in m.group(1):
            return False  # [^...] without \n matches a newline
    rest = _NEG_CLASS.sub("", source)  # (classes that keep \n out are fine)
    if _NL_ESCAPES.search(rest):
        return False
    if not flags & re.MULTILINE and ("^" in rest or "$" in rest.replace("\\$", "")):
        return False
    return True


class Alternation:
    """``head (?:item1)|(?:item2)|... tail`` run with ``re`` on only the items the prefilter reports.

    Leftmost-first alternation takes, at each position, the first item (in order) that matches
    there; an item that matches nowhere in the text never takes part, so the alternation of the
    candidate items, in their order, finds exactly the full alternation's matches.
    """

    __slots__ = ("items", "flags", "head", "tail", "named", "ids", "idset", "_rx", "_full")

    def __init__(self, table: PatternTable | None, items: Sequence[str], flags: int, head: str = r"(?<![\w])(?:",
                 tail: str = r")(?![\w])", named: str | None = None, prefilter: bool = True,
                 ids: tuple[int, ...] | None = None) -> None:
        self.items = tuple(items)
        self.flags = flags
        self.head, self.tail, self.named = head, tail, named
        #: each item's pattern number (None: not prefiltered, always a candidate)
        self.ids: tuple[int, ...] | None = ids if ids is not None else (
            tuple(table.add(self.item_source(i), flags) for i in range(len(self.items)))
            if table is not None and prefilter else None)
        self.idset = frozenset(self.ids) if self.ids is not None else None
        self._rx: dict[tuple[int, ...], re.Pattern[str] | None] = {}
        self._full: re.Pattern[str] | None = None

    def item_source(self, i: int) -> str:
        """Item i as the prefilter sees it (with the alternation's head and tail)."""
        return self.head + "(?:" + self.items[i] + ")" + self.tail

    def source(self, idx: Iterable[int]) -> str:
        if self.named:
            parts = [f"(?P<{self.named}{i}>{self.items[i]})" for i in idx]
        else:
            parts = [f"(?:{self.items[i]})" for i in idx]
        return self.head + "|".join(parts) + self.tail

    def full(self) -> re.Pattern[str]:
        """The whole alternation (compiled once; also what validates the items together)."""
        if self._full is None:
            self._full = re.compile(self.source(range(len(self.items))), self.flags)
        return self._full

    def candidates(self, hits: frozenset[int] | None) -> tuple[int, ...]:
        ids = self.ids
        if ids is None or hits is None:
            return tuple(range(len(self.items)))
        if hits.isdisjoint(self.idset):  # type: ignore[arg-type]
            return ()
        return tuple(i for i, pid in enumerate(ids) if pid in hits)

    def regex(self, hits: frozenset[int] | None) -> re.Pattern[str] | None:
        """The alternation of the candidate items (None: no item can match)."""
        idx = self.candidates(hits)
        if not idx:
            return None
        if len(idx) == len(self.items):
            return self.full()
        rx = self._rx.get(idx, False)
        if rx is False:
            rx = re.compile(self.source(idx), self.flags)
            if len(self._rx) > 4096:
                self._rx.clear()
            self._rx[idx] = rx
        return rx  # type: ignore[return-value]

    def finditer(self, text: str, hits: frozenset[int] | None) -> Iterator[re.Match[str]]:
        rx = self.regex(hits)
        return iter(()) if rx is None else rx.finditer(text)

    def search(self, text: str, hits: frozenset[int] | None) -> re.Match[str] | None:
        rx = self.regex(hits)
        return None if rx is None else rx.search(text)
