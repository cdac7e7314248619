"""Product types from catalog names, so the plan never picks two of the same thing.

No embeddings: a name is normalized (lower case, no punctuation, parentheses,
trailing variants, sizes, pack counts or colour words), its brand prefix is stripped (the words before the
longest word-suffix it shares with another catalog name: "Nestwell Cast Iron
Skillet" and "Brightwood Cast Iron Skillet" are both a "cast iron skillet"),
and its head noun is the last word of that type ("skillet"; "mug set" when the
last word is a generic container like set, kit or pack).

Two products are near-duplicates when they have the same head noun, or when
their types (brand-free) are as similar as ``max_similarity`` (rapidfuzz
token-set ratio), or their whole names are.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from rapidfuzz import fuzz

#: Colour words that are not also product words (no cream, rose, sage, mint, gold, lemon...).
COLOUR_WORDS = frozenset("""
black white grey gray charcoal graphite navy blue indigo teal turquoise aqua green olive emerald red crimson
burgundy maroon coral pink blush fuchsia magenta purple plum lavender lilac violet yellow mustard orange rust
beige ivory camel khaki brown taupe multicolor multicolour
""".split())
#: Last words that name a container rather than a kind of product: the word before them counts too.
GENERIC_HEADS = frozenset("set kit pack bundle collection box case duo trio pair sampler assortment".split())
_SIZE = re.compile(r"^(?:\d+(?:[.,]\d+)?(?:-?(?:pack|pk|ct|count|piece|pc|oz|fl|ml|l|lb|lbs|g|kg|in|inch|cm|mm|qt|"
                   r"gal|w|v|mah|l))?|x{0,3}[sml]|xxl|xxxl|one-size|size)$")
_WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")


def name_words(name: str) -> tuple[str, ...]:
    """Lower-cased words of a name without parentheticals, a trailing variant (" - Navy", ", 2-pack"),
    sizes, pack counts and colour words (never its last word: "Black Tea" stays tea)."""
    name = re.sub(r"\([^)]*\)|\[[^\]]*\]", " ", name.lower())
    name = re.split(r"\s[-\u2013\u2014/|]\s|,\s", name, maxsplit=1)[0]
    words = [w for w in _WORD.findall(name) if not _SIZE.match(w)]
    kept = tuple(w for w in words[:-1] if w not in COLOUR_WORDS) + tuple(words[-1:])
    return kept


@dataclass(frozen=True)
class ProductType:
    brand: str          # the words stripped as a brand prefix ("" when none)
    kind: str           # the brand-free type: "cast iron skillet"
    head: str           # its head noun: "skillet"


class ProductTypes:
    """The type of every catalog product, learned from the names of the whole catalog."""

    def __init__(self, names: Iterable[str]) -> None:
        self._words = {n: name_words(n) for n in names}
        self._suffixes: Counter[tuple[str, ...]] = Counter()
        for words in set(self._words.values()):
            for i in range(1, len(words)):
                self._suffixes[words[i:]] += 1
        self._cache: dict[str, ProductType] = {}

    def of(self, name: str) -> ProductType:
        got = self._cache.get(name)
        if got is None:
            got = self._cache[name] = self._type(name)
        return got

    def _type(self, name: str) -> ProductType:
        words = self._words.get(name) or name_words(name)
        if not words:
            return ProductType("", name.lower(), name.lower())
        kind = words
        for i in range(1, len(words)):  # longest proper suffix another name shares: the rest is a brand
            if self._suffixes[words[i:]] >= 2 and not set(words[i:]) <= GENERIC_HEADS:
                kind = words[i:]
                break
        head = kind[-1]
        if head in GENERIC_HEADS and len(kind) > 1:
            head = f"{kind[-2]} {head}"
        return ProductType(" ".join(words[:len(words) - len(kind)]), " ".join(kind), head)

    def near_duplicate(self, a: str, b: str, max_similarity: int) -> bool:
        """Same kind of product: same head noun, or brand-free types (or whole names) this similar."""
        ta, tb = self.of(a), self.of(b)
        if ta.head == tb.head:
            return True
        if fuzz.token_set_ratio(ta.kind, tb.kind) >= max_similarity:
            return True
        return fuzz.token_set_ratio(a, b) >= max_similarity
