"""``kind: occurrence``: a pattern (or word list) may occur at most ``max`` / at least ``min``
times per field, or per message (``scope: message``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..findings import Hit
from ..model import Rule
from ..plugin import Build, Kind
from ..phrases import Exceptions, Phrases, matches, rule_flags
from .occurrence_models import OccurrenceSpec

if TYPE_CHECKING:
    from ..view import MessageView


class Occurrence(Kind):
    name = "occurrence"
    Spec = OccurrenceSpec
    spec: OccurrenceSpec

    def __init__(self, rule: Rule, spec: OccurrenceSpec, build: Build) -> None:
        super().__init__(rule, spec, build)
        flags = rule_flags(rule)
        self.phrases = (Phrases(build, spec.tokens, flags) if spec.tokens
                        else Phrases(build, (spec.pattern or "",), flags, head="", tail=""))
        self.exc = Exceptions(build, spec.exceptions, flags)
        self.needs = self.phrases.ids if spec.min is None else None

    def hits(self, view: MessageView) -> Iterator[Hit]:
        rule, spec = self.rule, self.spec
        fields = view.fields(rule.fields)
        alt = self.phrases.get(view)

        def found(label: str, text: str) -> list[tuple[str, re.Match[str]]]:
            return [(label, m) for m in matches(alt, self.exc, rule, view, label, text)]

        groups: list[list[tuple[str, re.Match[str]]]] = []
        if spec.scope == "message":
            groups.append([x for label, text in fields for x in found(label, text)])
        else:
            groups.extend(found(label, text) for label, text in fields)
        for g in groups:
            n = len(g)
            if spec.max is not None and n > spec.max:
                label, m = g[spec.max]
                yield Hit(label, m.start(), m.end(), slots={"count": n, "max": spec.max})
            elif spec.min is not None and n < spec.min:
                label = g[0][0] if g else (fields[0][0] if fields else rule.fields[0])
                yield Hit(label, 0, 0, excerpt="", slots={"count": n, "min": spec.min})
