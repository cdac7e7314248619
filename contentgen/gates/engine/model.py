"""The rule model: what every rule file entry has, whatever its kind.

A rule's kind-specific keys (``tokens``, ``pattern``, ``max``, a check's ``params``...) are
validated by its kind (see :mod:`.registry`); this module knows only the keys every rule shares.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

FieldName = Literal["subject", "preheader", "body", "cta_text", "cta_url", "explanations", "footer"]
#: Fields a rule may read; ``explanations`` expands to every explanation's text.
FIELD_NAMES: tuple[FieldName, ...] = ("subject", "preheader", "body", "cta_text", "cta_url", "explanations", "footer")
#: Fields the model writes (or that carry model words); the footer and the link are the renderer's.
MODEL_FIELDS: tuple[FieldName, ...] = ("subject", "preheader", "body", "cta_text", "explanations")
GateName = Literal["facts", "brand", "compliance", "schema"]
SeverityName = Literal["error", "warning", "info"]

#: Keys every rule may carry (the rest belong to its kind).
COMMON_KEYS = frozenset({"id", "gate", "severity", "message", "fix", "ref", "kind", "description", "fields", "when",
                         "unless", "decidable", "examples", "skip_protected", "ignorecase"})


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Example(Strict):
    """One example text, optionally with a small context (see ``tests/examples.py``)."""

    text: str = ""
    field: str | None = None
    tier: Literal[1, 2, 3] | None = None
    segment: str | None = None
    first_name: str | None = None
    send_date: dt.date | None = None
    product_id: str | None = None
    channel: str | None = None
    message: dict[str, Any] | None = None


class Examples(Strict):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
    fail: tuple[str | Example, ...] = ()
    pass_: tuple[str | Example, ...] = Field(default=(), alias="pass")


class When(Strict):
    """Who and where a rule applies to (every listed condition must hold)."""

    tier: tuple[Literal[1, 2, 3], ...] | None = None
    segment: tuple[str, ...] | None = None
    has_first_name: bool | None = None
    channel: tuple[str, ...] | None = None

    def holds(self, tier: int, segment: str, has_first_name: bool, channel: str) -> bool:
        return not ((self.tier is not None and tier not in self.tier)
                    or (self.segment is not None and segment not in self.segment)
                    or (self.has_first_name is not None and has_first_name != self.has_first_name)
                    or (self.channel is not None and channel not in self.channel))


class Unless(Strict):
    """A rule is off for a message when one of these holds."""

    offer_ends_within_hours: int | None = None


class Rule(Strict):
    """The keys every rule has; ``spec`` holds its kind's own keys, validated by the kind."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_.-]*$")
    gate: GateName
    severity: SeverityName
    message: str
    #: what to change, in words the repair prompt gives the model ("{signoff}"-style slots allowed)
    fix: str = Field(min_length=1)
    ref: str = ""
    kind: str
    description: str = ""
    fields: tuple[FieldName, ...] = MODEL_FIELDS
    when: When | None = None
    unless: Unless | None = None
    decidable: bool = True
    examples: Examples = Examples()
    #: None: brand rules skip catalog product names and claims, other gates don't
    skip_protected: bool | None = None
    ignorecase: bool = True
    spec: dict[str, Any] = Field(default_factory=dict)

    @property
    def protects(self) -> bool:
        """Whether matches inside catalog product names and claims are left alone."""
        return self.skip_protected if self.skip_protected is not None else self.gate == "brand"
