"""A message as the rules see it: its fields, what the prefilter found in each, and per-message
caches that every rule shares."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...models import GateContext, RenderedMessage
from .. import text as T
from .model import FIELD_NAMES, MODEL_FIELDS
from .registry import ANALYSES

if TYPE_CHECKING:
    from .ruleset import RuleSet

_MODEL_SET = frozenset(MODEL_FIELDS)


class MessageView:
    """A message plus its context and its rule set, with per-message caches shared by all rules."""

    __slots__ = ("msg", "ctx", "rules", "matcher", "bkey", "cache", "_fields", "_present", "_lower", "_lowered",
                 "_by_name")

    def __init__(self, msg: RenderedMessage, ctx: GateContext, rules: RuleSet) -> None:
        self.msg = msg
        self.ctx = ctx
        self.rules = rules
        self.matcher, self.bkey = rules.matcher_for(ctx.brand)
        self.cache: dict[str, Any] = {}
        self._fields: dict[tuple[str, ...], list[tuple[str, str]]] = {}
        self._present: dict[tuple[str, ...], frozenset[int] | None] = {}
        self._lower: dict[tuple[str, ...], str] = {}
        self._lowered: dict[tuple[str, ...], list[str]] = {}
        msg = self.msg
        self._by_name: dict[str, list[tuple[str, str]]] = {
            "subject": [("subject", msg.subject or "")], "preheader": [("preheader", msg.preheader or "")],
            "body": [("body", msg.body or "")], "cta_text": [("cta_text", msg.cta_text or "")],
            "cta_url": [("cta_url", msg.cta_url or "")], "footer": [("footer", msg.footer or "")],
            "explanations": [(f"explanations[{i}].text", ex.text) for i, ex in enumerate(msg.explanations)]}

    # ------------------------------------------------------------------ fields

    def fields(self, names: tuple[str, ...]) -> list[tuple[str, str]]:
        """(label, text) of the named fields, in order; explanations expand to ``explanations[i].text``."""
        f = self._fields.get(names)
        if f is None:
            by_name = self._by_name
            f = self._fields[names] = [x for n in names for x in by_name.get(n, ())]
        return f

    def text(self, label: str) -> str:
        if label.startswith("explanations["):
            i = int(label[len("explanations["):label.index("]")])
            return self.msg.explanations[i].text
        return getattr(self.msg, label, "") or ""

    def lower(self, names: tuple[str, ...]) -> str:
        s = self._lower.get(names)
        if s is None:
            s = self._lower[names] = "\n".join(self.lowered(names))
        return s

    def lowered(self, names: tuple[str, ...]) -> list[str]:
        w = self._lowered.get(names)
        if w is None:
            w = self._lowered[names] = [T.lower(t) for _, t in self.fields(names)]
        return w

    # ------------------------------------------------------------------ prefilter

    def hits(self, text: str) -> frozenset[int] | None:
        """The patterns that may match in a text (None: any of them)."""
        return self.matcher.hits(text)

    def present(self, names: tuple[str, ...] = MODEL_FIELDS) -> frozenset[int] | None:
        """The patterns that may match in the named fields, or in more fields (None: any of them):
        the union over the model's fields, or over every field when ``names`` reaches past them."""
        key = MODEL_FIELDS if _MODEL_SET.issuperset(names) else FIELD_NAMES
        try:
            return self._present[key]
        except KeyError:
            pass
        out: set[int] = set()
        got: frozenset[int] | None
        hits = self.matcher.hits
        for _, t in self.fields(key):
            h = hits(t)
            if h is None:
                got = None
                break
            out.update(h)
        else:
            got = frozenset(out)
        self._present[key] = got
        return got

    def may(self, ids: frozenset[int] | None, names: tuple[str, ...] = MODEL_FIELDS) -> bool:
        """Whether one of the patterns may match in the named fields (``ids`` None: always; a
        superset: a True may be about another field)."""
        if ids is None:
            return True
        p = self.present(names)
        return p is None or not p.isdisjoint(ids)

    def fields_with(self, ids: frozenset[int] | None, names: tuple[str, ...]) -> list[tuple[str, str]]:
        """The named fields in which one of the patterns may match (``ids`` None: every field)."""
        if ids is None:
            return self.fields(names)
        hits = self.matcher.hits
        out = []
        for label, text in self.fields(names):
            h = hits(text)
            if h is None or not h.isdisjoint(ids):
                out.append((label, text))
        return out

    # ------------------------------------------------------------------ context

    @property
    def tier(self) -> int:
        return self.ctx.member.opt_in_tier

    @property
    def when_key(self) -> tuple[int, str, bool, str]:
        m = self.ctx.member
        return m.opt_in_tier, m.segment, bool(m.first_name), self.ctx.channel or "email"

    @property
    def layout(self) -> T.Layout:
        """The body's greeting and sign-off lines (the greeting vocabulary and the campaign's sign-off)."""
        lay: T.Layout | None = self.cache.get("layout")
        if lay is None:
            lay = self.cache["layout"] = T.layout(self.rules.vocab.find("greetings"), self.ctx.brand.signoff)
        return lay

    def analysis(self, name: str) -> Any:
        """A shared per-message analysis (registered with :func:`~.registry.analysis`), run once."""
        key = "analysis:" + name
        got = self.cache.get(key)
        if got is None:
            got = self.cache[key] = ANALYSES[name](self)
        return got

    def protected(self, label: str) -> list[tuple[int, int]]:
        """Spans of catalog product names and catalog claims in a field (brand rules skip them)."""
        key = "protected:" + label
        p: list[tuple[int, int]] | None = self.cache.get(key)
        if p is None:
            fn = ANALYSES.get("protected_spans")
            p = self.cache[key] = fn(self, label) if fn is not None else []
        return p
