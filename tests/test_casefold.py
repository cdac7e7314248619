"""Case-folded twins (contentgen/gates/casefold.py) find exactly what the case-insensitive originals find."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

import contentgen.gates.brand as brand
import contentgen.gates.compliance as compliance
import contentgen.gates.facts as facts
import contentgen.gates.rules as rules_mod
import contentgen.gates.text as text_mod
from contentgen.gates import load_rules
from contentgen.gates.casefold import Folded, fold, folded_twin, safe_lower, twin_core

ROOT = Path(__file__).resolve().parents[1]


def _patterns() -> list[tuple[str, re.Pattern[str]]]:
    out = []
    for mod in (facts, brand, compliance, text_mod, rules_mod):
        for name, v in vars(mod).items():
            rx = v.rx if isinstance(v, Folded) else v
            if isinstance(rx, re.Pattern) and isinstance(rx.pattern, str) and rx.flags & re.I:
                out.append((f"{mod.__name__}.{name}", rx))
    for cr in load_rules().rules:
        alts = ([cr.alt] if cr.alt is not None else []) + [a for a, _ in cr.swap_alts]
        for alt in alts:
            out.append((f"{cr.id} (all items)", re.compile(alt.full, alt.flags)))
            out.extend((f"{cr.id} item {i}", re.compile(alt._source((i,)), alt.flags)) for i in range(len(alt.items)))
        out.extend((f"{cr.id} exception {j}", rx.rx if isinstance(rx, Folded) else rx)
                   for j, rx in enumerate(cr.exceptions))
    return out


def _texts() -> list[str]:
    texts = []
    for f in sorted((ROOT / "tests" / "cases").glob("*.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            m = json.loads(line).get("message") or {}
            texts += [v for v in (m.get("subject"), m.get("preheader"), m.get("body")) if isinstance(v, str)]
            texts += [e.get("text", "") for e in m.get("explanations") or [] if isinstance(e, dict)]
    rnd = random.Random(11)
    texts = rnd.sample(texts, min(len(texts), 700))
    alphabet = ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;!?'\"-$%/#@\n\t()"
                "—–’‘“”…•€©®™°\u00a0🎉٣")
    texts += ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 120))) for _ in range(250)]
    # and the same words in capitals
    texts += [t.upper() for t in texts[:150]]
    return texts


PATTERNS = _patterns()
TEXTS = _texts()


def test_there_is_something_to_compare():
    assert len(PATTERNS) > 300
    assert sum(folded_twin(rx) is not None for _, rx in PATTERNS) > 0.9 * len(PATTERNS)


@pytest.mark.parametrize("chunk", range(8))
def test_twins_find_the_same_spans_on_text_safe_lower_accepts(chunk):
    checked = 0
    for name, rx in PATTERNS[chunk::8]:
        twin = folded_twin(rx)
        if twin is None:
            continue
        for t in TEXTS:
            low = safe_lower(t)
            if low is None:
                continue
            want = [m.span() for m in rx.finditer(t)]
            got = [m.span() for m in twin.finditer(low)]
            assert got == want, (name, t)
            checked += 1
    assert checked


@pytest.mark.parametrize("chunk", range(4))
def test_folded_patterns_with_their_cores_find_what_the_originals_find(chunk):
    """Folded.finditer skips a text whose core is absent: it must never skip a match."""
    cores = 0
    for name, rx in PATTERNS[chunk::4]:
        f = fold(rx)
        cores += twin_core(rx) is not None
        for t in TEXTS:
            assert [m.span() for m in f.finditer(t)] == [m.span() for m in rx.finditer(t)], (name, t)
            assert (f.search(t) is None) == (rx.search(t) is None), (name, t)
    assert cores


def test_text_with_cased_non_ascii_letters_goes_to_the_original():
    assert safe_lower("Café au lait") is None
    assert safe_lower("ſale") is None  # the long s matches "s" under IGNORECASE
    assert safe_lower("Shop now — it’s 20% off 🎉") == "shop now — it’s 20% off 🎉"
    rx = fold(re.compile(r"(?<![\w])(?:sale)(?![\w])", re.I))
    assert isinstance(rx, Folded)
    assert [m.span() for m in rx.finditer("ſale and SALE")] == [(0, 4), (9, 13)]
    assert [m.span() for m in rx.finditer("ÉTÉ SALE — now")] == [(4, 8)]


def test_scoped_case_flags_keep_the_original():
    rx = re.compile(r"near (?-i:[A-Z][a-z]+)", re.I)
    assert folded_twin(rx) is None
    f = fold(rx)
    assert [m.span() for m in f.finditer("NEAR Boston, near boston")] == [(0, 11)]


def test_case_sensitive_patterns_are_returned_as_they_are():
    rx = re.compile(r"[A-Z]{4,}")
    assert fold(rx) is rx
