"""Brand slots in rule patterns: ``{{program}}``, ``{{sender}}``, ``{{signoff}}``,
``{{postal_address}}`` and ``{{brand_names}}`` stand for the campaign's identity (the gate
context's ``brand``), so that no rule file or check names the client.

- ``{{program}}``, ``{{sender}}``: the names as configured (``AthenaPlus``, ``Athena Retail Group``);
- ``{{brand_names}}``: either of them, or the sender's first word (its short name: ``Athena``);
- ``{{signoff}}``: the sign-off line (``— The AthenaPlus team``), any dash (em, en, one or two
  hyphens) and spaces or tabs after it;
- ``{{postal_address}}``: the address, any run of whitespace between words, commas optional;
- ``{{allowed_domains}}``: any of the domains links may go to.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ...config import Brand
from .. import text as T

SLOT = re.compile(r"\{\{(\w+)\}\}")


def _address(addr: str) -> str:
    parts = [re.escape(w.rstrip(",")) + (",?" if w.endswith(",") else "") for w in addr.split()]
    return r"\s+".join(parts)


def _names(b: Brand) -> str:
    names = [b.program, b.sender]
    first = b.sender.split()[0] if b.sender.split() else ""
    if first and first not in names:
        names.append(first)
    return "(?:" + "|".join(re.escape(n) for n in sorted(set(names), key=len, reverse=True) if n) + ")"


SLOTS: dict[str, Callable[[Brand], str]] = {
    "program": lambda b: re.escape(b.program),
    "sender": lambda b: re.escape(b.sender),
    "brand_names": _names,
    "signoff": lambda b: T.signoff_source(b.signoff),
    "postal_address": lambda b: _address(b.postal_address),
    "allowed_domains": lambda b: "(?:" + "|".join(re.escape(d) for d in b.allowed_domains) + ")",
}


def has_slots(source: str) -> bool:
    return "{{" in source and SLOT.search(source) is not None


def check_slots(source: str) -> None:
    """Raise ValueError naming an unknown slot."""
    for m in SLOT.finditer(source):
        if m.group(1) not in SLOTS:
            raise ValueError(f"unknown slot {{{{{m.group(1)}}}}} (known: {', '.join('{{%s}}' % s for s in SLOTS)})")


def expand(source: str, brand: Brand) -> str:
    """The regex with each brand slot replaced by the campaign's value (as a regex)."""
    return SLOT.sub(lambda m: SLOTS[m.group(1)](brand), source)


BrandKey = tuple[str, str, str, str, tuple[str, ...]]


def brand_key(brand: Brand) -> BrandKey:
    return brand.program, brand.sender, brand.signoff, brand.postal_address, brand.allowed_domains


def brand_words(brand: Brand) -> frozenset[str]:
    """Lowercase words of the program's and the sender's names (never a product, a person or a place)."""
    return frozenset(w.lower() for n in (brand.program, brand.sender) for w in n.split())
