"""Facts: product claims (waterproof, organic, SPF 30...) only where the catalog lists them for
that product. The claim vocabulary and what supports each claim are the rule's params; features,
material and component families and units are data files in the rules folder's vocab/. Besides the
vocabulary: a number with a unit or counted noun the catalog states with another number ("690 g"
for "weighs 790 g"), and a material or component the catalog states another of ("walnut" for
"cherry wood"). What the catalog says of a product is its claims, its name and its category."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pydantic.main  # noqa: F401  (mypyc: see claims_models)
import yaml
from pydantic import BaseModel, ValidationError

from ..engine.findings import Hit
from ..engine.matcher import line_local
from ..engine.model import Rule
from ..engine.plugin import Build, Check, Params
from ..engine.view import MessageView
from .catalog import CatalogIndex, Prep, catalog_claim_spans, norm, prep
from .claims_models import Claim, ClaimsParams, _Families, _Features, _Units


_M = TypeVar("_M", bound=BaseModel)
_HAS_DIGIT = re.compile(r"\d")
_HAS_DIGIT_OR_WORD = re.compile(r"\d|\b(?:two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)\b", re.I)
# the member's own things: "You bought a titanium pot", "you cook with a cast-iron skillet", "your walnut desk"
_OWN_PURCHASE = re.compile(r"\byou(?:'ve|’ve| have| had)?[ \t]+(?:\w+[ \t]+)?(?:bought|own(?:ed)?|purchased|ordered|got|use[ds]?|cook(?:ed)? with|brew(?:ed)? with|play(?:ed)? with|tried)"
                           r"[ \t]+(?:an?|the|some|that|those|this|these|your)?[ \t]*(?:\w+[ \t]+)?$", re.I)
_YOUR = re.compile(r"\byour[ \t]+(?:[\w-]+[ \t]+)?$", re.I)
_COMPARATOR = re.compile(r"\b(?:than|least|most|over|under|about|around|nearly|almost)[ \t]+$", re.I)
_PRONOUN_START = re.compile(r"[\s\W]*(?:it|its|it's|it’s|they|their|they're|they’re|this|these|that|those|each|both)\b", re.I)
_NEXT_WORDS = re.compile(r"[\s-]*([A-Za-z]+)(?:[\s-]+([A-Za-z]+))?")


class Claims(Check):
    """A claim phrase needs the catalog to list that claim for the product it is said of; a claim
    the catalog lists for one product must not be said of another."""
    name = "facts.claims"

    Params = ClaimsParams

    def __init__(self, params: ClaimsParams, build: Build) -> None:
        super().__init__(params, build)
        parts, supports, maker = [], [], []
        fillers: list[frozenset[str]] = []
        items: list[str | Claim] = list(params.claims)
        if params.features_file:
            items += list(_data_file(build, params.features_file, _Features).features)
        for item in items:
            if isinstance(item, str):
                item = Claim(pattern=re.escape(item).replace(r"\-", "[- ]?").replace(r"\ ", "[- ]?"),
                             supported_by=(item,))
            re.compile(item.pattern)
            parts.append(item.pattern)
            supports.append([norm(x) for x in item.supported_by])
            maker.append(item.of_what_is_made)
            fillers.append(frozenset(w.lower() for w in item.filler))
        self.fillers = fillers
        self.maker = maker
        self.maker_nouns = frozenset(w.lower() for w in params.maker_nouns)
        # material and component families: (family term regexes, one finder over them all)
        self.families: list[list[re.Pattern[str]]] = []
        self.family_rx: re.Pattern[str] | None = None
        if params.families_file:
            fams = _data_file(build, params.families_file, _Families).families
            alts: list[str] = []
            for terms in fams.values():
                rxs = [re.compile(r"(?<![\w])(?:" + t + r")(?![\w])", re.I) for t in terms]
                self.families.append(rxs)
                alts += terms
            self.family_rx = re.compile(r"(?<![\w])(?:" + "|".join(sorted(alts, key=len, reverse=True)) + r")(?![\w])",
                                        re.I)
        # numeric specifications: a number and its unit or counted noun
        self.units: dict[str, tuple[str, float]] = {}
        self.not_counted: frozenset[str] = frozenset()
        self.numbers: dict[str, float] = {}
        self.qty_rx: re.Pattern[str] | None = None
        if params.units_file:
            u = _data_file(build, params.units_file, _Units)
            self.units = {k.lower(): v for k, v in u.units.items()}
            self.not_counted = frozenset(w.lower() for w in u.not_counted)
            self.numbers = {k.lower(): v for k, v in u.numbers.items()}
            num = r"(?:\d+(?:\.\d+)?" + "".join("|" + w for w in sorted(self.numbers, key=len, reverse=True)) + ")"
            self.qty_rx = re.compile(
                r"\b(?:ages?|aged|kids|children)[ \t]+(?P<age>" + num + r")(?:[ \t]*(?:-|–|to)[ \t]*(?P<age2>" + num + r"))?"
                r"|(?<![\w$£€.,/:-])(?P<n1>" + num + r")(?:[ \t]*(?:-|–|to)[ \t]*(?P<n2>" + num + r"))?\+?"
                r"[ \t-]?(?P<unit>°[ \t]?[fc]\b|[a-z]+\b)", re.I)
        self.alt = build.alternation(parts, re.I, named="c")
        assert self.alt.ids is not None
        self.ids = frozenset(self.alt.ids)
        self.supports = supports
        # (a negation sits on its claim's line, in the 20 characters before it)
        self.neg = re.compile(r"\b(?:" + "|".join(params.negations) + r")[ \t]+(?:\w+[ \t]+)?$", re.I)
        self.found: dict[str, list[tuple[int, int, str, int]]] = {}
        self.local = all(line_local(it, re.I) for it in parts)
        self.spec_cache: dict[tuple[str, tuple[str, ...], str], dict[str, set[float]]] = {}

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
                if not inside and _OWN_PURCHASE.search(text[max(0, ma - 60):ma]):
                    continue  # "You bought a titanium pot from us": the member's own thing, not a product claim
                if not inside and _named_in_catalog(p, text, mb, norm(mg)):
                    continue  # "a cast iron kettle": the catalog names a product so ("Tetsu Cast Iron Kettle")
                targets = p.attribute(label, ma, mb)
                if not targets:
                    yield Hit(label, ma, mb, slots={"name": "any recommended product"})
                    continue
                if self.maker[gi] and self._made_with(p, targets):
                    continue  # "a handmade wallet" from a pattern pack: what the member makes
                support = self.supports[gi]
                sup = " | ".join(_support(p, t) for t in targets)
                claim_norm = norm(mg)
                if _HAS_DIGIT.search(claim_norm):  # "SPF 30" needs that number, not any SPF
                    if claim_norm.replace(" ", "") in sup.replace(" ", ""):
                        continue
                elif claim_norm in sup or any(s in sup for s in support):
                    continue
                elif self.fillers[gi] and _words_in(claim_norm, self.fillers[gi], sup):
                    continue  # "needs no kiln" for a catalog's "no kiln needed"
                yield Hit(label, ma, mb, slots={"name": ", ".join(p.name(t) for t in targets)})
            if p.idx.claims_rx is not None:
                spans = catalog_claim_spans(p.idx, text)
                if spans:
                    yield from self._misplaced(p, view, label, text, found, spans)
            if self.family_rx is not None:
                yield from self._swapped(p, label, text, found)
            if self.qty_rx is not None and _HAS_DIGIT_OR_WORD.search(text):
                yield from self._numbers(p, label, text, found)

    def _made_with(self, p: Prep, targets: list[str]) -> bool:
        """Every product is a kit, pattern or supply (a maker noun in its name or category)."""
        if not self.maker_nouns:
            return False
        for t in targets:
            prod = p.idx.products.get(t)
            if prod is None:
                return False
            words = set(re.findall(r"[a-z]+", (prod.name + " " + prod.category).lower()))
            if not words & self.maker_nouns:
                return False
        return True

    def _swapped(self, p: Prep, label: str, text: str,
                 vocab: list[tuple[int, int, str, int]]) -> Iterator[Hit]:
        """A material or component said of a product whose catalog names another of its family and
        not this one ("hand-finished walnut" for a box of "cherry wood")."""
        assert self.family_rx is not None
        for m in self.family_rx.finditer(text):
            a, b = m.span()
            if any(va < b and a < vb for va, vb, _, _ in vocab) or self.neg.search(text[max(0, a - 20):a]):
                continue
            if any(mm.start <= a and b <= mm.end for mm in p.mentions.get(label, ())):
                continue  # part of a product name
            if _members_own(text, a):
                continue  # "You bought a fleece jacket", "your walnut desk": the member's own thing
            if _named_in_catalog(p, text, b, norm(m.group())):
                continue  # "a soft linen throw": the catalog's "Linen Throw Blanket", not the scarf before it
            g = m.group()
            if g[:1].isupper() and g[1:2].islower() and text[max(0, a - 2):a].strip(" \t") not in ("", ".", "!", "?", "\n"):
                continue  # a proper name inside a sentence ("Maple Street"), not a material
            said = norm(m.group())
            family = next((f for f in self.families if any(rx.fullmatch(m.group()) for rx in f)), None)
            if family is None:
                continue
            targets = _subject(p, label, text, a, b)
            if not targets:
                continue
            against: list[str] = []
            for t in targets:
                sup = _support(p, t)
                if any(rx.fullmatch(m.group()) and rx.search(sup) for rx in family):
                    against = []
                    break  # the catalog says it of this product
                for rx in family:
                    other = rx.search(sup)
                    if other and not rx.fullmatch(m.group()) and other.group() not in said and said not in other.group():
                        against.append(t)
                        break
            if against:
                yield Hit(label, a, b, slots={"name": ", ".join(p.name(t) for t in against)})

    def _specs(self, p: Prep, pid: str) -> dict[str, set[float]]:
        """Quantities the catalog states of a product: dimension (or "n:" + counted noun) -> values in
        the dimension's base unit. From its claims and category; from its name only units and plural
        counted nouns ("Puzzle Box, 21 Moves", not the model number in "Volt 120 Squash Racquet")."""
        prod = p.idx.products.get(pid)
        if prod is None:
            return {}
        key_ = (prod.name, tuple(prod.claims), prod.category)
        got = self.spec_cache.get(key_)
        if got is None:
            got = {}
            for text, plural_only in ((norm(" | ".join((*prod.claims, prod.category))), False), (norm(prod.name), True)):
                for key, vals, _, _ in self._quantities(text, plural_only):
                    got.setdefault(key, set()).update(vals)
            if len(self.spec_cache) > 4096:
                self.spec_cache.clear()
            self.spec_cache[key_] = got
        return got

    def _quantities(self, text: str, plural_only: bool = False) -> Iterator[tuple[str, list[float], int, int]]:
        assert self.qty_rx is not None
        for m in self.qty_rx.finditer(text):
            if m.group("age"):
                nums, key, factor = [m.group("age"), m.group("age2")], "age", 1.0
            else:
                n1 = m.group("n1")
                if n1.isalpha() and text[m.end("n1"):m.end("n1") + 1] not in (" ", "\t", "-"):
                    continue
                unit = m.group("unit").lower().replace(" ", "").replace("\t", "")
                if unit in self.units:
                    key, factor = self.units[unit]
                elif unit.isalpha() and len(unit) > 2 and unit not in self.not_counted and unit not in self.numbers \
                        and (not plural_only or (unit.endswith("s") and not unit.endswith("ss"))):
                    key, factor = "n:" + (unit[:-1] if unit.endswith("s") and not unit.endswith("ss") else unit), 1.0
                else:
                    continue
                nums = [n1, m.group("n2")]
            vals = [self._num(x) * factor for x in nums if x]
            yield key, vals, m.start(), m.end()

    def _num(self, x: str) -> float:
        return self.numbers[x.lower()] if x.isalpha() else float(x)

    def _numbers(self, p: Prep, label: str, text: str, vocab: list[tuple[int, int, str, int]]) -> Iterator[Hit]:
        """A number with a unit or counted noun said of a product whose catalog states that quantity
        with other numbers only ("690 g" for a paddle that "weighs 790 g")."""
        for key, vals, a, b in self._quantities(text):
            if any(va < b and a < vb for va, vb, _, _ in vocab):
                continue  # inside a claim checked above ("drop-tested to 10 feet")
            if any(mm.start < b and a < mm.end for mm in p.mentions.get(label, ())):
                continue  # part of a product name ("Kite Line Winder, 500 ft")
            if self.neg.search(text[max(0, a - 20):a]) or _members_own(text, a) or _COMPARATOR.search(text[max(0, a - 12):a]):
                continue
            targets = _subject(p, label, text, a, b)
            against: list[str] = []
            for t in targets:
                have = self._specs(p, t).get(key)
                if not have:
                    continue
                if all(any(abs(v - h) <= 0.01 * max(abs(h), 1e-9) for h in have) for v in vals):
                    against = []
                    break
                against.append(t)
            if against:
                yield Hit(label, a, b, slots={"name": ", ".join(p.name(t) for t in against)})

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
            elif any(claim in _support(p, t) for t in _subject(p, label, text, a, b)):
                continue  # "It has two mic preamps ... your Bluebird": said of the product named before
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


def _support(p: Prep, pid: str) -> str:
    """What the catalog says of a product: its claims and name (the index's support) and its category."""
    sup = p.idx.support.get(pid, "")
    prod = p.idx.products.get(pid)
    return sup + " | " + norm(prod.category) if prod is not None and prod.category else sup


def _subject(p: Prep, label: str, text: str, a: int, b: int) -> list[str]:
    """The products a phrase at text[a:b] is said of: the nearest product named before it in its
    sentence; for a sentence that opens with a pronoun ("It has...", "Its shaft..."), the product
    named last before that sentence; else as :meth:`Prep.attribute` does, without one-word mentions."""
    ms = [m for m in p.mentions.get(label, []) if m.how != "partial1"]  # not one word of a name ("Linen")
    _, (sa, sb) = p.sentence_of(label, a)
    before = [m for m in ms if sa <= m.start and m.end <= a]
    if before:
        return [before[-1].pid]
    earlier = [m for m in ms if m.end <= sa]
    if earlier and _PRONOUN_START.match(text, sa) is not None:
        return [earlier[-1].pid]
    after = [m for m in ms if b <= m.start and m.end <= sb]
    if after:
        return [after[0].pid]
    if earlier:
        return [earlier[-1].pid]
    return p.all_mentioned() or [t for t in p.rec_ids if t in p.idx.products]


def _named_in_catalog(p: Prep, text: str, end: int, claim: str) -> bool:
    """A claim followed by a noun that, with it, names a catalog product ("a cast iron kettle" for the
    catalog's "Tetsu Cast Iron Kettle"): the copy refers to that product as the catalog names it."""
    m = _NEXT_WORDS.match(text, end)
    if not m:
        return False
    noun = m.group(1).lower()
    for name in p.idx.names.values():
        n = norm(name)
        if claim in n:
            rest = n.split(claim, 1)[1].split()
            if rest and (rest[0] == noun or rest[0] == noun.rstrip("s")):
                return True
    return False


def _data_file(build: Build, name: str, model: type[_M]) -> _M:
    """A data file (YAML) in the rules folders' vocab/, read into ``model``; a missing or malformed
    file is one line naming the file, the entry and what to do."""
    dirs: list[Path] = []
    for f in build.vocab.files.values():
        d = Path(f).parent
        if d not in dirs:
            dirs.append(d)
    for d in dirs:
        path = d / name
        if path.is_file():
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8"))
                got = model.model_validate(data)
                if isinstance(got, _Families):
                    for terms in got.families.values():
                        for t in terms:
                            re.compile(t)
                return got
            except yaml.YAMLError as e:
                mark = getattr(e, "problem_mark", None)
                where = f":{mark.line + 1}" if mark is not None else ""
                raise ValueError(f"{path}{where}: not valid YAML ({getattr(e, 'problem', e)}); fix the file") from None
            except ValidationError as e:
                err = e.errors()[0]
                loc = ".".join(str(x) for x in err["loc"]) or "(top)"
                raise ValueError(f"{path}: entry '{loc}': {err['msg']}; see the file's opening comment for the form") from None
            except re.error as e:
                raise ValueError(f"{path}: term {e.pattern!r} is not a valid regex ({e}); fix the term") from None
    raise ValueError(f"facts.claims data file '{name}' not found in {', '.join(map(str, dirs)) or 'no vocab/ folder'}; "
                     "put it in the rules folder's vocab/ or fix the rule's file name")


def _members_own(text: str, a: int) -> bool:
    """The phrase at ``a`` describes the member's own thing ("You bought a fleece jacket", "your walnut desk")."""
    before = text[max(0, a - 60):a]
    return _OWN_PURCHASE.search(before) is not None or _YOUR.search(before) is not None


def _words_in(claim: str, filler: frozenset[str], sup: str) -> bool:
    """Every word of the claim but its filler words is a word of the catalog text (plurals as singulars)."""
    words = {w.rstrip("s") for w in sup.split()}
    return all(w.rstrip("s") in words for w in claim.split() if w not in filler)
