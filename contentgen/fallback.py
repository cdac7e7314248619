"""The personal fallback: a human-written message with the member's own picks, each explained.

When a tier-2 or tier-3 member's model-written email fails its gates after its
repairs, ``FallbackWriter.personal`` writes the draft the member gets instead,
without a model:

* the copy is the segment's human-written template in ``prompts/fallback/personal/``,
  steered by the framing (``appreciation`` at high churn risk, ``member_price`` for a
  Bargain Hunter only where a pick really has a member offer price);
* every pick gets its "Why was this recommended?" from ``prompts/fallback/reasons.yaml``:
  one reason per evidence source the plan kept for it (only what the member's tier
  allows), in the file's order, at most ``max_reasons``.

Tier-1 members get the segment's basic message (``Prompts.fallback``), as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import TemplateError
from .models import EVIDENCE_SOURCES, Draft, Explanation, Plan, PlannedProduct

PERSONAL_DIR = "fallback/personal"
REASONS_FILE = "fallback/reasons.yaml"
_SLOT = re.compile(r"^[a-z][a-z -]*[a-z]$")


@dataclass(frozen=True)
class Reason:
    text: str
    match: re.Pattern[str] | None = None


@dataclass(frozen=True)
class Reasons:
    intro: str
    max_reasons: int
    order: tuple[str, ...]
    by_source: dict[str, tuple[Reason, ...]]

    @classmethod
    def load(cls, path: Path) -> Reasons:
        def bad(msg: str, key: str | None = None) -> TemplateError:
            return TemplateError(msg, file=str(path), key=key,
                                 hint="see the comments at the top of prompts/fallback/reasons.yaml")

        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise bad("the personal fallback's reasons file is missing") from None
        except yaml.YAMLError as e:
            line = getattr(getattr(e, "problem_mark", None), "line", None)
            raise TemplateError(f"not valid YAML: {getattr(e, 'problem', e)}", file=str(path),
                                line=None if line is None else line + 1) from None
        if not isinstance(raw, dict) or not isinstance(raw.get("reasons"), dict):
            raise bad("needs a 'reasons' mapping of evidence source to reasons", "reasons")
        by_source: dict[str, tuple[Reason, ...]] = {}
        for source, entries in raw["reasons"].items():
            if source not in EVIDENCE_SOURCES:
                raise bad(f"unknown evidence source {source!r} (one of {', '.join(EVIDENCE_SOURCES)})",
                          f"reasons.{source}")
            if not isinstance(entries, list) or not entries or "match" in entries[-1]:
                raise bad(f"{source}: a list of reasons whose last one has no 'match'", f"reasons.{source}")
            out = []
            for i, e in enumerate(entries):
                if not isinstance(e, dict) or not isinstance(e.get("text"), str) or not e["text"].strip():
                    raise bad(f"{source}[{i}] needs a 'text'", f"reasons.{source}")
                try:
                    pat = re.compile(e["match"]) if e.get("match") else None
                except re.error as err:
                    raise bad(f"{source}[{i}]: bad 'match' pattern ({err})", f"reasons.{source}") from None
                if "{what}" in e["text"] and (pat is None or "what" not in pat.groupindex):
                    raise bad(f"{source}[{i}]: '{{what}}' needs a match with a (?P<what>...) group",
                              f"reasons.{source}")
                out.append(Reason(e["text"].strip(), pat))
            by_source[source] = tuple(out)
        missing = [s for s in EVIDENCE_SOURCES if s not in by_source]
        if missing:
            raise bad(f"no reason for evidence source(s) {', '.join(missing)}", "reasons")
        order = tuple(raw.get("order") or EVIDENCE_SOURCES)
        order += tuple(s for s in EVIDENCE_SOURCES if s not in order)
        return cls(str(raw.get("intro") or "We recommended this because:"), int(raw.get("max_reasons") or 3),
                   order, by_source)

    def reason(self, source: str, detail: str, *, slots: bool = True) -> str:
        low = " ".join(detail.lower().split())
        for r in self.by_source[source]:
            if r.match is None:
                return r.text
            if not slots:
                continue
            m = r.match.search(low)
            what = (m.groupdict().get("what") or "").strip() if m else ""
            if m and (not what or _SLOT.match(what)):
                return r.text.replace("{what}", what)
        return self.by_source[source][-1].text  # pragma: no cover (the last entry has no match)

    def explain(self, pp: PlannedProduct, *, slots: bool = True) -> str:
        seen: list[str] = []
        for source in self.order:
            for ev in pp.evidence:
                if ev.source == source:
                    text = self.reason(source, ev.detail, slots=slots)
                    if text not in seen:
                        seen.append(text)
                    break
        seen = seen[: self.max_reasons]
        return " ".join([self.intro] + [f"({i}) {t}" for i, t in enumerate(seen, 1)])


class FallbackWriter:
    """Renders the personal fallback from ``prompts/``; loaded (and checked) with the prompts."""

    def __init__(self, prompts) -> None:
        self.prompts = prompts
        path = prompts.dir / REASONS_FILE
        # a prompts folder without personal fallbacks (an older copy) sends the segment message instead
        self.reasons = Reasons.load(path) if path.exists() or (prompts.dir / PERSONAL_DIR).is_dir() else None

    def has_personal(self, segment: str) -> bool:
        from .prompts import segment_slug

        return self.reasons is not None and \
            (self.prompts.dir / PERSONAL_DIR / f"{segment_slug(segment)}.j2").is_file()

    def context(self, plan: Plan, churn_threshold: float) -> dict[str, Any]:
        m = plan.member
        return {"program": self.prompts.campaign.brand.program, "segment": m.segment, "tier": m.opt_in_tier,
                "appreciation": m.churn_risk >= churn_threshold,
                "member_price": any(pp.offer_price is not None for pp in plan.products),
                "products": [{"name": pp.product.name, "category": pp.product.category} for pp in plan.products]}

    def personal(self, plan: Plan, churn_threshold: float = 0.6, *, slots: bool = True) -> Draft:
        """The member's own picks in human-written copy, each with its reasons (``slots=False``: only the
        reasons that take no words from the evidence, the safe second try when a gate objects to those)."""
        from .prompts import segment_slug

        name = f"{PERSONAL_DIR}/{segment_slug(plan.member.segment)}.j2"
        text = self.prompts.render(name, **self.context(plan, churn_threshold))
        subject, preheader, body = self.prompts.split_fallback(name, text)
        assert self.reasons is not None, "check has_personal first"
        explanations = tuple(Explanation(product_id=pp.product.product_id, text=self.reasons.explain(pp, slots=slots))
                             for pp in plan.products)
        if plan.channel != "email":
            return Draft(subject=subject, preheader=preheader, body=preheader, explanations=explanations)
        return Draft(subject=subject, preheader=preheader, body=body, explanations=explanations)
