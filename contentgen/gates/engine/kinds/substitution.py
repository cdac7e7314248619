"""``kind: substitution``: a word or phrase to replace, and what with (``swap: {bad: good}``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..findings import Hit
from ..model import Rule
from ..plugin import Build, Kind
from ..phrases import Exceptions, Phrases, matches, rule_flags
from .substitution_models import SubstitutionSpec

if TYPE_CHECKING:
    from ..view import MessageView


class Substitution(Kind):
    name = "substitution"
    Spec = SubstitutionSpec
    spec: SubstitutionSpec

    def __init__(self, rule: Rule, spec: SubstitutionSpec, build: Build) -> None:
        super().__init__(rule, spec, build)
        flags = rule_flags(rule)
        self.swaps = tuple((Phrases(build, (bad,), flags), good) for bad, good in spec.swap.items())
        self.exc = Exceptions(build, spec.exceptions, flags)
        ids: set[int] = set()
        for ph, _ in self.swaps:
            if ph.ids is None:
                ids = set()
                break
            ids |= ph.ids
        self.needs = frozenset(ids) if ids else None

    def hits(self, view: MessageView) -> Iterator[Hit]:
        for label, text in view.fields(self.rule.fields):
            for ph, good in self.swaps:
                for m in matches(ph.get(view), self.exc, self.rule, view, label, text):
                    yield Hit(label, m.start(), m.end(), slots={"suggestion": good})
