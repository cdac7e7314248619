"""Facts: product claims (waterproof, organic, SPF 30...) only where the catalog lists them for
that product. The claim vocabulary and what supports each claim are the rule's params."""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..engine.findings import Hit
from ..engine.matcher import line_local
from ..engine.model import Rule
from ..engine.plugin import Build, Check, Params
from ..engine.view import MessageView
from .catalog import CatalogIndex, Prep, catalog_claim_spans, norm, prep
from .claims_models import Claim, ClaimsParams


_HAS_DIGIT = re.compile(r"\d")
_NEXT_WORDS = re.compile(r"[\s-]*([A-Za-z]+)(?:[\s-]+([A-Za-z]+))?")


class Claims(Check):
    """A claim phrase needs the catalog to list that claim for the product it is said of; a claim
    the catalog lists for one product must not be said of another."""
    name = "facts.claims"

    Params = ClaimsParams

    def __init__(self, params: ClaimsParams, build: Build) -> None:
        super().__init__(params, build)
        parts, supports = [], []
        for item in params.claims:
            if isinstance(item, str):
                item = Claim(pattern=re.escape(item).replace(r"\-", "[- ]?").replace(r"\ ", "[- ]?"),
                             supported_by=(item,))
            re.compile(item.pattern)
            parts.append(item.pattern)
            supports.append([norm(x) for x in item.supported_by])
        self.alt = build.alternation(parts, re.I, named="c")
        assert self.alt.ids is not None
        self.ids = frozenset(self.alt.ids)
        self.supports = supports
        # (a negation sits on its claim's line, in the 20 characters before it)
        self.neg = re.compile(r"\b(?:" + "|".join(params.negations) + r")[ \t]+(?:\w+[ \t]+)?$", re.I)
        self.found: dict[str, list[tuple[int, int, str, int]]] = {}
        self.local = all(line_local(it, re.I) for it in parts)

    def _found(self, view: MessageView, text: str) -> list[tuple[int, int, str, int]]:
        """The claim phrases in a text that are not negated (pure in the rule and the text; line by
        line when no claim or negation reaches across a line break)."""
        if not self.local or "\n" not in text:
            return self._found_in(text, view.hits(text))
        hits = view.hits(text)
        out: list[tuple[int, int, str, int]] = []
        pos = 0
        for line in text.split("\n"):
            if line:
                got = self._found_in(line, hits)
                if got:
                    out.extend((a + pos, b + pos, g, i) for a, b, g, i in got)
            pos += len(line) + 1
        return out

    def _found_in(self, text: str, hits: frozenset[int] | None) -> list[tuple[int, int, str, int]]:
        got = self.found.get(text)
        if got is None:
            got = []
            for m in self.alt.finditer(text, hits):
                if self.neg.search(text[max(0, m.start() - 20):m.start()]):
                    continue
                got.append((m.start(), m.end(), m.group(), int(m.lastgroup[1:])))  # type: ignore[index]
            if len(self.found) > 8192:
                self.found.clear()
            self.found[text] = got
        return got

    def run(self, rule: Rule, view: MessageView) -> Iterator[Hit]:
        p = prep(view)
        vocab_may = view.may(self.ids)
        if not vocab_may and p.idx.claims_rx is None:
            return
        for label, text in p.fields:
            found = self._found(view, text) if vocab_may else []
            for ma, mb, mg, gi in found:
                inside = [mm for mm in p.mentions.get(label, ()) if mm.start <= ma and mb <= mm.end]
                if inside and any(norm(mg) in norm(p.name(mm.pid)) for mm in inside):
                    continue  # part of a product name ("Glacier Insulated Bottle")
                if not inside and _generic_noun_supported(p, text, mb, norm(mg), self.supports[gi]):
                    continue  # "merino socks": a recommended product of that kind carries the claim
                targets = p.attribute(label, ma, mb)
                if not targets:
                    yield Hit(label, ma, mb, slots={"name": "any recommended product"})
                    continue
                support = self.supports[gi]
                sup = " | ".join(p.idx.support.get(t, "") for t in targets)
                claim_norm = norm(mg)
                if _HAS_DIGIT.search(claim_norm):  # "SPF 30" needs that number, not any SPF
                    if claim_norm.replace(" ", "") in sup.replace(" ", ""):
                        continue
                elif claim_norm in sup or any(s in sup for s in support):
                    continue
                yield Hit(label, ma, mb, slots={"name": ", ".join(p.name(t) for t in targets)})
            if p.idx.claims_rx is not None:
                spans = catalog_claim_spans(p.idx, text)
                if spans:
                    yield from self._misplaced(p, view, label, text, found, spans)

    def _misplaced(self, p: Prep, view: MessageView, label: str, text: str,
                   vocab: list[tuple[int, int, str, int]], spans: tuple[tuple[int, int], ...]) -> Iterator[Hit]:
        """A claim the catalog lists for one product ("Best in Test 2025") said of another: the product
        named in the same sentence (or the explanation's product) must list it. Claims the vocabulary
        covers were checked above; without a product in the sentence nothing is said here."""
        for a, b in spans:
            if any(va < b and a < vb for va, vb, _, _ in vocab) or self.neg.search(text[max(0, a - 20):a]):
                continue
            if any(mm.start <= a and b <= mm.end for mm in p.mentions.get(label, ())):
                continue  # part of a product name
            targets = p.sentence_products(label, a)
            if not targets and label.startswith("explanations["):
                i = int(label[len("explanations["):label.index("]")])
                targets = [view.msg.explanations[i].product_id]
            targets = [t for t in targets if t in p.idx.products]
            if not targets:
                continue
            claim = norm(text[a:b])
            if _generic_noun_supported(p, text, b, claim, [claim]):
                continue  # "a soy wax candle": the noun after it names the product that carries it
            before = [mm.pid for mm in p.mentions.get(label, ()) if mm.end <= a and mm.pid in targets]
            if before:
                targets = [before[-1]]  # the nearest product named before it in the sentence
            if any(claim in p.idx.support.get(t, "") for t in targets):
                continue
            yield Hit(label, a, b, slots={"name": ", ".join(p.name(t) for t in targets)})


def _generic_noun_supported(p: Prep, text: str, end: int, claim: str, support: list[str]) -> bool:
    """A claim followed by a noun ("merino socks") that names a recommended product carrying the claim."""
    m = _NEXT_WORDS.match(text, end)
    if not m:
        return False
    nouns = {w.lower() for w in m.groups() if w}
    nouns |= {w[:-1] for w in nouns if w.endswith("s")}
    idx: CatalogIndex = p.idx
    for pid in p.rec_ids:
        toks = idx.tokens.get(pid, set())
        if nouns & toks:
            sup = idx.support.get(pid, "")
            if claim in sup or any(s in sup for s in support):
                return True
    return False
