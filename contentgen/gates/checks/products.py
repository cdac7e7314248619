"""Facts: every product named exists, is recommended and is in stock."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

from rapidfuzz import fuzz, process

from .. import text as T
from ..engine.findings import Hit
from ..engine.model import Rule
from ..engine.plugin import Build, Check, Params
from ..engine.view import MessageView
from .catalog import _NUMS, Prep, claim_spans, common_word, prep
from .products_models import UnknownProductParams

class ProductRecommended(Check):
    """A catalog product named in the message must be one of its recommendations (or the hero)."""
    name = "facts.product_recommended"

    def run(self, rule: Rule, view: MessageView) -> Iterator[Hit]:
        p = prep(view)
        for label, _ in p.fields:
            for m in p.mentions[label]:
                if m.pid in p.rec_ids or m.pid in p.owned:
                    continue  # a pick, or what the member already bought ("the Bluebird mic you bought")
                name = p.name(m.pid)
                if m.how == "partial1":
                    if common_word(p, label, m):
                        continue  # "Running gear": a category or ordinary word, not a product
                    yield Hit(label, m.start, m.end, slots={"name": name}, decidable=False, severity="warning")
                else:
                    yield Hit(label, m.start, m.end, slots={"name": name})


class InStock(Check):
    """No product that is out of stock, named or explained."""
    name = "facts.in_stock"

    def run(self, rule: Rule, view: MessageView) -> Iterator[Hit]:
        p = prep(view)
        for label, _ in p.fields:
            for m in p.mentions[label]:
                if p.aside(label, m):
                    continue  # "Swim picks earn...": a word opening a sentence, no product
                prod = p.idx.products[m.pid]
                if not prod.in_stock or prod.stock == 0:
                    yield Hit(label, m.start, m.end, slots={"name": prod.name})
        for r in view.ctx.recommendations:  # a recommended product that is out of stock, named or not
            rec = p.idx.products.get(r.product_id)
            if rec is not None and (not rec.in_stock or rec.stock == 0) and not any(
                    m.pid == rec.product_id for ms in p.mentions.values() for m in ms):
                for i, ex in enumerate(view.msg.explanations):
                    if ex.product_id == rec.product_id:
                        yield Hit(f"explanations[{i}].text", 0, len(ex.text), slots={"name": rec.name})


_PRICE_AFTER = re.compile(r"\s*(?:[,:(—–-]|is|are|for|at|costs?)\s*(?:just |only )?(?:\$|USD)")
_HAS_DIGIT = re.compile(r"\d")
#: a price that ends the sentence before a phrase does not make that phrase a product ("$289. Through June")
_SENTENCE_END = re.compile(r"[.!?]")


class UnknownProduct(Check):
    """A capitalized phrase that reads as a product (it ends with a product noun, or a price follows
    it) but is not in the catalog; a catalog name with another number is a variant it doesn't have."""
    name = "facts.unknown_product"

    Params = UnknownProductParams

    def __init__(self, params: UnknownProductParams, build: Build) -> None:
        super().__init__(params, build)
        self.nouns = frozenset(n.lower() for n in params.product_nouns)
        self.groups = frozenset(n.lower() for n in params.group_words)
        self._ignore: dict[tuple[str, str], frozenset[str]] = {}

    def ignore(self, view: MessageView) -> frozenset[str]:
        b = view.ctx.brand
        key = (b.program, b.sender)
        got = self._ignore.get(key)
        if got is None:
            got = self._ignore[key] = frozenset(
                x.replace("{program}", b.program).replace("{sender}", b.sender).lower()
                for x in self.params.ignore_phrases)
        return got

    def run(self, rule: Rule, view: MessageView) -> Iterator[Hit]:
        p = prep(view)
        nouns = self.nouns
        ignore = self.ignore(view)
        names = None
        variants = _variant_patterns(p)
        for label, text in p.fields:
            if variants and _HAS_DIGIT.search(text):
                low = text.lower()
                for rx, nums, pname, key in variants:
                    if key not in low:
                        continue  # the name's longest word is not in the text
                    for vm in rx.finditer(text):
                        if _NUMS.findall(vm.group()) != nums:
                            yield Hit(label, vm.start(), vm.end(), slots={"hint": f"; did you mean the {pname}?"})
            unknown = p.unknown[label]
            if not unknown:
                continue
            money = T.money_matches(text)
            claims = claim_spans(p.idx, text) if p.idx.claims_rx is not None else ()
            for a, b, phrase in unknown:
                if claims and any(ca <= a and b <= cb for ca, cb in claims):
                    continue  # words of a catalog claim ("Best Value Tripod 2025 (Outdoor Photo Review)")
                title_only = phrase.startswith("\x00")
                phrase = phrase.lstrip("\x00")
                if phrase.lower() in ignore:
                    continue
                if any(phrase.lower() in c for c in p.idx.claims_lower):
                    continue  # a name a catalog claim holds ("rated ... by Sea Kayak Review"): not a product
                if self._generic(p, phrase):
                    continue  # "a Riverline Reel": catalog words describing catalog products, no new product
                last = phrase.split()[-1].lower().strip("’'")
                noun = last in nouns or last.rstrip("s") in nouns or last[:-2] in nouns or self._line_variant(p, phrase)
                near_price = any(0 <= ma - b <= 12 or (0 <= a - me <= 3 and not _SENTENCE_END.search(text, me, a))
                                 for ma, me, _ in money) or bool(
                    _PRICE_AFTER.match(text[b:b + 20]))
                if title_only and not near_price:
                    continue
                if not (noun or near_price):
                    continue
                if names is None:
                    names = tuple(p.idx.names.values())
                hint = _hint(phrase, names) if names else ""
                yield Hit(label, a, b, slots={"hint": hint})


    @staticmethod
    def _generic(p: Prep, phrase: str) -> bool:
        """Every word of the phrase is a word of some catalog name (and no number): a general
        reference to products the catalog has ("your Riverline Reel"), not a product it lacks."""
        if _HAS_DIGIT.search(phrase):
            return False
        owners = p.idx.token_owner
        conn = p.idx.words.connectors
        ws = [w.lower().strip("’'.,") for w in phrase.split()]
        ws = [w[:-2] if w.endswith(("'s", "’s")) else w for w in ws]
        return all(w in conn or w in owners or w.rstrip("s") in owners or (w + "s") in owners for w in ws)

    def _line_variant(self, p: Prep, phrase: str) -> bool:
        """A phrase that opens with a catalog product line's name ("Tidewater ...") and adds a word no
        catalog name has: a product of that line the catalog doesn't carry ("Tidewater Hard Rod Tube")."""
        lines = p.idx.extra.get("lines")
        if lines is None:
            words = p.idx.words
            lines = p.idx.extra["lines"] = frozenset(
                f for f in (name.split()[0].lower() for name in p.idx.names.values() if name.split())
                if len(f) >= 4 and f not in words.openers and f not in words.non_products)
        ws = [w.lower().strip("’'.,") for w in phrase.split()]
        if len(ws) < 2 or ws[0] not in lines or ws[-1] in self.groups:
            return False
        return any(w not in p.idx.token_owner and w.rstrip("s") not in p.idx.token_owner for w in ws[1:])


@lru_cache(maxsize=4096)
def _hint(phrase: str, names: tuple[str, ...]) -> str:
    """The closest catalog name to an unknown product phrase (pure in both: phrases and catalogs repeat)."""
    best = process.extractOne(phrase, names, scorer=fuzz.WRatio)
    return f"; did you mean the {best[0]}?" if best and best[1] >= 70 else ""


def _variant_patterns(p: Prep) -> list[tuple[re.Pattern[str], list[str], str, str]]:
    """For each catalog name holding a number ("Starlight 500-Piece Puzzle"), a pattern for the same
    name with any number: another size or count is a variant the catalog doesn't have."""
    got: list[tuple[re.Pattern[str], list[str], str, str]] | None = p.idx.extra.get("variants")
    if got is None:
        got = p.idx.extra["variants"] = _variants_for(
            tuple(pr.name for pr in p.idx.products.values() if _HAS_DIGIT.search(pr.name)))
    return got


def _variants_for(names: tuple[str, ...]) -> list[tuple[re.Pattern[str], list[str], str, str]]:
    got = []
    for name in names:
        nums = _NUMS.findall(name)
        parts = _NUMS.split(name)
        src = r"\d+(?:\.\d+)?".join(re.escape(x).replace(r"\ ", r"[ \t]+") for x in parts)
        key = max(re.findall(r"[A-Za-z]+", name) or [""], key=len).lower()
        got.append((re.compile(r"(?<![\w])" + src + r"(?![\w])", re.I), nums, name, key))
    return got
