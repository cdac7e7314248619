"""Literal anchors of a regex, for the pyahocorasick prefilter (used only where Hyperscan does not
install): lowercase substrings one of which every match of the pattern contains.

The pattern is read with the standard library's regex parser (``re._parser``, private); if it is
missing or changes shape, a pattern simply gets no anchors and is a candidate on every text, so
this module can make the fallback slower, never wrong.
"""

from __future__ import annotations

from typing import Any

try:  # Python >= 3.11
    import re._constants as _C  # type: ignore[import-not-found, unused-ignore]
    import re._parser as _P  # type: ignore[import-not-found, unused-ignore]
except ImportError:  # pragma: no cover
    _C = _P = None

#: words so common that an anchor made of them alone does not narrow anything down
_COMMON = frozenset("""you your the and for our we a an of to in on at it this that with is are be as or by from
my me us its all more""".split())
DIGITS = frozenset("0123456789")


def _score(anchors: set[str] | None) -> int:
    if not anchors:
        return -1
    return min(0 if a.strip(" '") in _COMMON else len(a.strip()) for a in anchors)


def _anchors(seq: Any) -> set[str] | None:
    items = list(seq)
    if len(items) == 1 and items[0][0] is _C.BRANCH:
        out: set[str] = set()
        for br in items[0][1][1]:
            a = _anchors(br)
            if a is None:
                return None
            out |= a
        return out
    runs: list[str] = []
    run: list[str] = []
    subs: list[Any] = []
    digits = False
    for op, av in items:
        if op is _C.LITERAL:
            run.append(chr(av).lower())
            continue
        if run:
            runs.append("".join(run))
        run = []
        if op is _C.SUBPATTERN:
            subs.append(av[-1])
        elif op in (_C.MAX_REPEAT, _C.MIN_REPEAT) and av[0] >= 1:
            subs.append(av[2])
        elif op is _C.BRANCH:
            subs.append([(op, av)])
        elif op is _C.IN and av in ([(_C.CATEGORY, _C.CATEGORY_DIGIT)], [(_C.RANGE, (48, 57))]):
            digits = True
    if run:
        runs.append("".join(run))
    cands: list[set[str]] = [{r} for r in runs if r.strip()]
    if digits:
        cands.append(set(DIGITS))
    for sub in subs:
        a = _anchors(sub)
        if a:
            cands.append(a)
    if not cands:
        return None
    best = max(cands, key=_score)
    return best if _score(best) >= 1 else None


def literal_anchors(source: str, flags: int = 0) -> frozenset[str] | None:
    """Lowercase literals one of which every match of ``source`` holds (None: none known)."""
    if _P is None:  # pragma: no cover
        return None
    try:
        parsed = _P.parse(source, flags)
        a = _anchors(parsed)
    except Exception:  # pragma: no cover - an unexpected parse tree: no anchors, never wrong
        return None
    return frozenset(a) if a else None
