"""What a rule kind and a named check implement, and what they get to build themselves.

Kind and Check are native classes when the gates are compiled (contentgen/gates/compiled.py): a kind or
check in the package names itself with a ``name`` class attribute (``registry.load_plugins`` registers
it); a class defined elsewhere may use the ``@kind``/``@check`` decorators instead."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from mypy_extensions import mypyc_attr
from pydantic import BaseModel

from .matcher import Alternation, PatternTable
from .model import Rule
from .plugin_models import NoParams as NoParams, Params as Params  # (re-exported: the models import them here)

if TYPE_CHECKING:
    from .findings import Hit
    from .view import MessageView


class Vocab:
    """Word and phrase lists kept as data (``<rules folder>/vocab/NAME.txt``, one entry a line)."""

    def __init__(self, lists: dict[str, tuple[str, ...]], files: dict[str, str]) -> None:
        self.lists = lists
        self.files = files

    def find(self, name: str) -> tuple[str, ...]:
        """The named list, or none (for what the engine reads when a rules folder has it)."""
        return self.lists.get(name, ())

    def get(self, name: str) -> tuple[str, ...]:
        try:
            return self.lists[name]
        except KeyError:
            raise KeyError(f"no vocabulary '{name}' (known: {', '.join(sorted(self.lists)) or 'none'}); "
                           f"add vocab/{name}.txt to a rules folder") from None


class Build:
    """What compiling one rule may use: the rule set's pattern table and vocabularies."""

    def __init__(self, table: PatternTable, vocab: Vocab) -> None:
        self.table = table
        self.vocab = vocab

    def pattern(self, source: str, flags: int = 0) -> int:
        """Number a regex for the prefilter (validated here: a bad one is the rule file's error)."""
        re.compile(source, flags)
        return self.table.add(source, flags)

    def patterns(self, sources: Iterable[str], flags: int = 0) -> frozenset[int]:
        return frozenset(self.pattern(s, flags) for s in sources)

    def feature(self, *names: str) -> frozenset[int]:
        """The prefilter patterns of text features (``money``, ``percent``, ``date``, ``url``,
        ``digit``: what the parsers in :mod:`contentgen.gates.text` look for)."""
        from .. import text as T

        return frozenset(self.table.add(src, flags) for n in names for src, flags in T.FEATURES[n])

    def alternation(self, items: Sequence[str], flags: int = re.I, *, head: str = r"(?<![\w])(?:",
                    tail: str = r")(?![\w])", named: str | None = None, prefilter: bool = True) -> Alternation:
        """A phrase list as one alternation, validated now and run on prefilter candidates."""
        alt = Alternation(self.table if prefilter else None, items, flags, head=head, tail=tail, named=named)
        alt.full()
        return alt


@mypyc_attr(allow_interpreted_subclasses=True)
class Kind:
    """A rule kind: reads its own keys (``Spec``) and reports hits on a message."""

    name: ClassVar[str] = ""
    Spec: ClassVar[type[BaseModel]]
    #: pattern numbers one of which is a candidate in a field the rule reads whenever it can fire
    #: (None: it runs on every message)
    needs: frozenset[int] | None = None

    def __init__(self, rule: Rule, spec: Any, build: Build) -> None:
        self.rule = rule
        self.spec = spec

    def hits(self, view: MessageView) -> Iterable[Hit]:
        raise NotImplementedError


@mypyc_attr(allow_interpreted_subclasses=True)
class Check:
    """A named check (``kind: check``): Python for what a word list cannot say, with typed params."""

    name: ClassVar[str] = ""
    Params: ClassVar[type[Params]] = NoParams
    #: like :attr:`Kind.needs`: pattern numbers one of which occurs whenever the check can report
    needs: frozenset[int] | None = None

    def __init__(self, params: Any, build: Build) -> None:
        self.params = params

    def run(self, rule: Rule, view: MessageView) -> Iterable[Hit]:
        raise NotImplementedError
