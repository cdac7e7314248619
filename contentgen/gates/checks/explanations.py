""""Why was this recommended?": each reason cites evidence the member's tier allows and the
recommendation carries; tier 1 gets none; tier 2/3 products named in the e-mail get one."""

from __future__ import annotations

import re
from collections.abc import Iterator

from ...models import TIER_SOURCES
from ..engine.findings import Hit
from ..engine.model import Rule
from ..engine.plugin import Build, Check, Params
from ..engine.view import MessageView
from .catalog import prep
from .explanations_models import EvidenceParams, Tier1Params

LABELS = {"purchase": "purchase history", "stated_preference": "stated preferences", "browsing": "browsing",
          "predicted": "predicted needs", "similar_members": "similar members", "inventory": "stock",
          "segment": "segment popularity"}


_SENT_BREAK = re.compile(r"[.!?;\n]|\(\d\)")


class ExplanationEvidence(Check):
    """Each cue an explanation cites names a source the tier allows and the recommendation carries."""
    name = "compliance.explanation_evidence"

    Params = EvidenceParams

    def __init__(self, params: EvidenceParams, build: Build) -> None:
        super().__init__(params, build)
        unknown = sorted(set(params.sources) - set(LABELS))
        if unknown:
            raise ValueError(f"unknown evidence source(s) {', '.join(unknown)} (known: {', '.join(LABELS)})")
        self.sources = [(src, build.alternation(list(ph), re.I)) for src, ph in params.sources.items()]
        self.said = re.compile(r"\byou (?:" + "|".join(params.stated_cues) + r")\b", re.I)
        self.cache: dict[str, list[tuple[int, int, str]]] = {}

    def cited(self, view: MessageView, text: str) -> list[tuple[int, int, str]]:
        """Evidence sources an explanation's wording cites; longer phrases win over overlapping shorter ones."""
        hits = view.hits(text)
        found = []
        for source, alt in self.sources:
            for m in alt.finditer(text, hits):
                found.append((m.start(), m.end(), source))
        found.sort(key=lambda x: (-(x[1] - x[0]), x[0]))
        kept: list[tuple[int, int, str]] = []
        for a, b, s in found:
            if not any(a < kb and ka < b for ka, kb, _ in kept):
                kept.append((a, b, s))
        return sorted(kept)

    def _reported(self, cited: list[tuple[int, int, str]], text: str, a: int) -> bool:
        """A cue inside what the member told us: a "you told us / you said" stated-preference cue
        earlier in the same sentence, close before it."""
        for sa, sb, src in cited:
            if src == "stated_preference" and sb <= a and a - sb <= 40 and self.said.search(text, sa, sb) \
                    and not _SENT_BREAK.search(text, sb, a):
                return True
        return False

    def run(self, rule: Rule, view: MessageView) -> Iterator[Hit]:
        tier = view.tier
        allowed = TIER_SOURCES[tier]
        if not view.msg.explanations:
            return
        recs = {r.product_id: {e.source for e in r.evidence} for r in view.ctx.recommendations}
        cache = self.cache
        for i, ex in enumerate(view.msg.explanations):
            label = f"explanations[{i}].text"
            carried = recs.get(ex.product_id)
            if carried is None:
                continue  # compliance.explanation-product
            cues = cache.get(ex.text)  # pure in the rule and the text: explanations repeat
            if cues is None:
                cited = self.cited(view, ex.text)
                # "you told us you're interested in ...": the member said it, not a weaker cue
                cues = [(a, b, src) for a, b, src in cited
                        if not (src != "stated_preference" and self._reported(cited, ex.text, a))]
                if len(cache) > 8192:
                    cache.clear()
                cache[ex.text] = cues
            for a, b, src in cues:
                if src not in allowed:
                    yield Hit(label, a, b, slots={"reason": f"tier {tier} does not allow {LABELS[src]} as a reason"})
                elif src not in carried:
                    yield Hit(label, a, b, slots={"reason": f"this recommendation carries no {LABELS[src]} evidence"})


class ExplanationProduct(Check):
    """An explanation is for one of the message's recommendations (or the hero product)."""
    name = "compliance.explanation_product"

    def run(self, rule: Rule, view: MessageView) -> Iterator[Hit]:
        recs = {r.product_id for r in view.ctx.recommendations}
        if view.ctx.hero_product_id:
            recs.add(view.ctx.hero_product_id)
        for i, ex in enumerate(view.msg.explanations):
            if ex.product_id not in recs:
                yield Hit(f"explanations[{i}].text", 0, len(ex.text), slots={"product": ex.product_id})


class Tier1Explanations(Check):
    """Tier 1: no per-member reasoning; an explanation may only cite segment-level popularity."""
    name = "compliance.tier1_explanations"

    Params = Tier1Params

    def __init__(self, params: Tier1Params, build: Build) -> None:
        super().__init__(params, build)
        self.segment = re.compile("|".join(f"(?:{p})" for p in params.segment_phrases) or r"(?!x)x", re.I)
        self.personal = re.compile(params.personal, re.I)

    def run(self, rule: Rule, view: MessageView) -> Iterator[Hit]:
        for i, ex in enumerate(view.msg.explanations):
            if self.personal.search(ex.text) or not self.segment.search(ex.text):
                yield Hit(f"explanations[{i}].text", 0, len(ex.text))


class ExplanationMissing(Check):
    """Tier 2/3: a recommended product named in the message carries an explanation."""
    name = "compliance.explanation_missing"

    def run(self, rule: Rule, view: MessageView) -> Iterator[Hit]:
        p = prep(view)
        explained = {ex.product_id for ex in view.msg.explanations}
        recs = [r.product_id for r in view.ctx.recommendations]
        seen = set()
        for label, _ in p.fields:
            if label.startswith("explanations"):
                continue
            for m in p.mentions[label]:
                if m.pid in recs and m.pid not in explained and m.pid not in seen and m.how != "partial1":
                    seen.add(m.pid)
                    yield Hit(label, m.start, m.end, slots={"name": p.idx.names.get(m.pid, m.pid)})
