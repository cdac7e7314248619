"""``kind: regex``: one regular expression, matched anywhere."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..findings import Hit
from ..model import Rule
from ..plugin import Build, Kind
from ..phrases import Exceptions, Phrases, rule_flags
from .existence import Spans, field_hits
from .regex_models import RegexSpec

if TYPE_CHECKING:
    from ..view import MessageView


class Regex(Kind):
    name = "regex"
    Spec = RegexSpec
    spec: RegexSpec

    def __init__(self, rule: Rule, spec: RegexSpec, build: Build) -> None:
        super().__init__(rule, spec, build)
        self.phrases = Phrases(build, (spec.pattern,), rule_flags(rule), head="", tail="")
        self.spans = Spans(self.phrases, Exceptions(build, spec.exceptions, rule_flags(rule)))
        self.needs = self.phrases.ids

    def hits(self, view: MessageView) -> Iterator[Hit]:
        return field_hits(self.rule, self.spans, view)
