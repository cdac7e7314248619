"""A loaded rule set: compiled rules, their matcher, vocabularies and accept list; and running
them on a message. Everything a rule caches lives on its compiled form here, so a rule set
loaded again (an edited file, another folder) starts fresh."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ...config import Brand
from ...models import Finding, GateContext, RenderedMessage
from .accept import AcceptList
from .findings import Hit, make_findings
from .matcher import Matcher
from .model import FIELD_NAMES, MODEL_FIELDS, Rule
from .slots import BrandKey, brand_key, expand
from .plugin import Build, Kind, Vocab
from .view import MessageView

T = TypeVar("T")


@dataclass
class CompiledRule:
    rule: Rule
    file: str
    line: int | None
    impl: Kind

    @property
    def id(self) -> str:
        return self.rule.id

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


def _offer_ends_within(view: MessageView, hours: int) -> bool:
    limit = hours / 24.0
    send = view.ctx.send_date
    return any(o.valid_on(send) and (o.valid_until - send).days <= limit for o in view.ctx.offers)


class _Plan:
    """The rules applicable to one (tier, segment, has first name, channel): those that always run,
    and, per field group, pattern number -> the rules that need it."""

    def __init__(self, rules: list[CompiledRule]) -> None:
        self.rules = rules
        self.always: list[int] = []
        groups: dict[tuple[str, ...], dict[int, list[int]]] = {}
        for i, cr in enumerate(rules):
            needs = cr.impl.needs
            if needs is None:
                self.always.append(i)
                continue
            names = MODEL_FIELDS if set(cr.rule.fields) <= set(MODEL_FIELDS) else FIELD_NAMES
            by_id = groups.setdefault(names, {})
            for pid in needs:
                by_id.setdefault(pid, []).append(i)
        self.gated = [(names, by_id, frozenset(by_id)) for names, by_id in groups.items()]
        #: (rule, its hits function) by index, and those of the rules that always run
        self.fns = [(cr, cr.impl.hits) for cr in rules]
        self.always_fns = [self.fns[i] for i in self.always]
        #: the prefilter's answers per field group -> the rules to run (answers repeat across messages)
        self._selected: dict[tuple[frozenset[int] | None, ...], list[tuple[CompiledRule, Any]]] = {}

    def selected(self, view: MessageView) -> list[tuple[CompiledRule, Any]]:
        """The rules to run on a message: those that always run, then those one of whose patterns the
        prefilter found in the message, in rule order."""
        key = tuple(view.present(names) for names, _, _ in self.gated)
        got = self._selected.get(key)
        if got is None:
            chosen: set[int] = set()
            for (_, by_id, keys), present in zip(self.gated, key):
                if present is None:
                    chosen.update(i for ids in by_id.values() for i in ids)
                    continue
                for pid in keys.intersection(present):
                    chosen.update(by_id[pid])
            got = self.always_fns + [self.fns[i] for i in sorted(chosen)]
            if len(self._selected) > 4096:
                self._selected.clear()
            self._selected[key] = got
        return got


@dataclass
class RuleSet:
    rules: tuple[CompiledRule, ...]
    files: tuple[str, ...]
    build: Build
    accept: AcceptList
    digest: str
    backend: str | None = None
    _matchers: dict[BrandKey, Matcher] = field(default_factory=dict, repr=False)
    _by_brand: dict[int, tuple[Brand, Matcher, BrandKey]] = field(default_factory=dict, repr=False)
    _when: dict[tuple[int, str, bool, str], list[CompiledRule]] = field(default_factory=dict, repr=False)
    _plans: dict[tuple[int, str, bool, str], _Plan] = field(default_factory=dict, repr=False)
    _shared: dict[str, Any] = field(default_factory=dict, repr=False)

    def shared(self, name: str, factory: Callable[[RuleSet], T]) -> T:
        """State that shared analyses keep per rule set (per-catalog indexes...), made on first use."""
        got: T | None = self._shared.get(name)
        if got is None:
            got = self._shared[name] = factory(self)
        return got

    @property
    def vocab(self) -> Vocab:
        return self.build.vocab

    def matcher_for(self, brand: Brand) -> tuple[Matcher, BrandKey]:
        """The prefilter over every pattern of the set, brand slots filled in for the campaign's brand
        (built on first use: compiling or loading the database happens once per rule set and brand),
        and the brand's key."""
        got = self._by_brand.get(id(brand))
        if got is not None and got[0] is brand:
            return got[1], got[2]
        key = brand_key(brand)
        m = self._matchers.get(key)
        if m is None:
            m = self._matchers[key] = Matcher(self.build.table.expanded(lambda src: expand(src, brand)),
                                              self.backend)
        if len(self._by_brand) > 4096:
            self._by_brand.clear()
        self._by_brand[id(brand)] = (brand, m, key)  # (holds the brand: its id is not reused meanwhile)
        return m, key

    def __iter__(self) -> Iterator[CompiledRule]:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def get(self, rule_id: str) -> CompiledRule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)

    def applicable(self, key: tuple[int, str, bool, str]) -> list[CompiledRule]:
        """The rules whose ``when`` holds for (tier, segment, has first name, channel)."""
        got = self._when.get(key)
        if got is None:
            got = self._when[key] = [cr for cr in self.rules if cr.rule.when is None or cr.rule.when.holds(*key)]
        return got

    def view(self, msg: RenderedMessage, ctx: GateContext) -> MessageView:
        return MessageView(msg, ctx, self)

    def findings(self, msg: RenderedMessage, ctx: GateContext) -> list[Finding]:
        """Every rule's findings on the message (unsorted; the accept list applied)."""
        return self.run(MessageView(msg, ctx, self))

    def _plan(self, key: tuple[int, str, bool, str]) -> _Plan:
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = _Plan(self.applicable(key))
        return plan

    def run(self, view: MessageView) -> list[Finding]:
        """Every applicable rule's findings: the rules that always run, and the rules one of whose
        patterns the prefilter found in the message (in rule order)."""
        # (the order rules run in does not matter: findings are sorted on a total key afterwards)
        out: list[Finding] = []
        for cr, fn in self._plan(view.when_key).selected(view):
            hits = list(fn(view))
            if hits:
                out.extend(self._found(cr, view, hits))
        return self.accept.filter(out, view) if len(self.accept) else out

    @staticmethod
    def _found(cr: CompiledRule, view: MessageView, hits: list[Hit]) -> list[Finding]:
        u = cr.rule.unless
        if u is not None and u.offer_ends_within_hours is not None and _offer_ends_within(
                view, u.offer_ends_within_hours):
            return []
        return make_findings(cr.rule, view, hits)

    def evaluate(self, cr: CompiledRule, view: MessageView) -> list[Finding]:
        """One rule's findings on a message whose member and channel its ``when`` allows."""
        rule, impl = cr.rule, cr.impl
        needs = impl.needs
        if needs is not None and not view.may(needs, rule.fields):
            return []
        hits = list(impl.hits(view))
        return self._found(cr, view, hits) if hits else []

    def run_rule(self, cr: CompiledRule, msg: RenderedMessage, ctx: GateContext) -> list[Finding]:
        """One rule on a message (its ``when`` and the accept list honoured)."""
        view = MessageView(msg, ctx, self)
        if cr.rule.when is not None and not cr.rule.when.holds(*view.when_key):
            return []
        return self.accept.filter(self.evaluate(cr, view), view)
