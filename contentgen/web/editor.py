"""The reviewer's editor: words only, put back in the engine's frame, judged by the gates.

A reviewer edits what the model writes (subject, preheader, the words of the
body, the "Why was this recommended?" texts; a push or in-app title and text;
an SMS text) and nothing else: greeting, product and price lines, offer
terms, links, sign-off and footer are rebuilt from the member's plan by the
run's own assembler, so a price typed into the words is a claim the facts gate
checks, never a price line.

A *basis* says where the words start from:

- ``attempt:N``: model attempt N (its answer parsed as a draft);
- ``fallback``: the human-written tier-1 message (judged as tier 1);
- ``edit:ID``: words a reviewer re-checked before (decision ID);
- ``record``: the stored message as it is (the only basis without the campaign).

``state`` builds what the page shows and what a decision is bound to: the
message, every finding, the verdict and the error rules an approval must
override. ``reason_problem`` says why a reason is not one.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from ..models import Draft, Explanation

FIELDS = {"email": ("subject", "preheader", "body", "explanations"), "push": ("subject", "body"),
          "inapp": ("subject", "body", "explanations"), "sms": ("body",)}
LABELS = {
    "email": {"subject": "Subject", "preheader": "Preheader", "body": "Words of the body"},
    "push": {"subject": "Title", "body": "Text"},
    "inapp": {"subject": "Title", "body": "Text"},
    "sms": {"body": "Text"},
}
MAX_FIELD = 5000
GENERATED = ("approved", "repaired", "fallback", "review", "rejected")  # outcomes a reviewer may decide on


@dataclass
class Words:
    subject: str = ""
    preheader: str = ""
    body: str = ""
    explanations: list[dict[str, str]] = field(default_factory=list)  # [{product_id, text}]

    @classmethod
    def of_draft(cls, d: Draft) -> Words:
        return cls(d.subject, d.preheader, d.body, [{"product_id": e.product_id, "text": e.text}
                                                    for e in d.explanations])

    @classmethod
    def of_json(cls, d: dict[str, Any] | None) -> Words | None:
        if not isinstance(d, dict):
            return None
        return cls(str(d.get("subject", "")), str(d.get("preheader", "")), str(d.get("body", "")),
                   [{"product_id": str(x.get("product_id", "")), "text": str(x.get("text", ""))}
                    for x in d.get("explanations") or [] if isinstance(x, dict)])

    def json(self) -> dict[str, Any]:
        return {"subject": self.subject, "preheader": self.preheader, "body": self.body,
                "explanations": [dict(x) for x in self.explanations]}

    def draft(self) -> Draft:
        return Draft(subject=self.subject, preheader=self.preheader, body=self.body,
                     explanations=tuple(Explanation(product_id=x["product_id"], text=x["text"])
                                        for x in self.explanations))

    def with_form(self, form, channel: str) -> Words:
        """These words with the channel's fields replaced by the posted ones (other fields are ignored)."""
        def get(name: str, old: str) -> str:
            v = form.get(name)
            if not isinstance(v, str):
                return old
            return v.replace("\r\n", "\n").strip()[:MAX_FIELD]

        fields = FIELDS.get(channel, FIELDS["email"])
        out = Words(self.subject, self.preheader, self.body, [dict(x) for x in self.explanations])
        for f in ("subject", "preheader", "body"):
            if f in fields:
                setattr(out, f, get(f, getattr(out, f)))
        if "explanations" in fields:
            out.explanations = [{"product_id": x["product_id"], "text": get(f"explanation_{i}", x["text"])}
                                for i, x in enumerate(out.explanations)]
        return out

    def differs(self, other: Words | None) -> bool:
        return other is None or self.json() != other.json()


@dataclass
class Source:
    basis: str
    label: str
    words: Words | None
    basic: bool  # judged on the tier-1 basic plan (the fallback)
    findings: list[dict[str, Any]]  # as stored with the attempt or the re-check
    failed: bool


def _words_of_response(response: str | None) -> Words | None:
    from ..gates.schema import validate_draft

    draft, _ = validate_draft(response)
    if draft is None:
        try:  # the fallback's stored draft has no schema wrapper problems but may carry extra keys
            draft = Draft.model_validate_json(response or "")
        except ValueError:
            return None
    return Words.of_draft(draft)


def sources(m: dict[str, Any]) -> list[Source]:
    """Every starting point for the editor, oldest first: model attempts, the fallback, re-checked edits."""
    out = []
    for a in m["attempts"]:
        failed = any(f.get("severity") == "error" for f in a["findings"])
        if a["kind"] == "fallback":
            # the segment's tier-1 message is judged on the basic plan; a personal fallback on the member's own
            personal = m["record"].get("fallback") == "personal"
            out.append(Source("fallback", "fallback (personal)" if personal else "fallback (tier-1 message)",
                              _words_of_response(a["response"]), not personal, a["findings"], failed))
        else:
            out.append(Source(f"attempt:{a['n']}", f"attempt #{a['n']} ({a['kind']})",
                              _words_of_response(a["response"]), False, a["findings"], failed))
    for d in m["decisions"]:
        if d.get("draft") and d.get("basis"):
            out.append(Source(f"edit:{d['id']}", f"{d['action']} #{d['id']} by {d['reviewer']}",
                              Words.of_json(d["draft"]), d["basis"] == "fallback", d.get("findings") or [],
                              d.get("verdict") == "fail"))
    return out


def default_basis(m: dict[str, Any], srcs: list[Source]) -> str:
    """The failing model attempt for a message that fell back or was rejected; else the last model attempt."""
    model = [s for s in srcs if s.basis.startswith("attempt:") and s.words is not None]
    failing = [s for s in model if s.failed]
    if m["outcome"] in ("fallback", "rejected") and failing:
        return failing[-1].basis
    if model:
        return model[-1].basis
    if any(s.basis == "fallback" and s.words is not None for s in srcs):
        return "fallback"
    return "record"


def view_dict(message: dict[str, Any] | None, channel: str) -> dict[str, Any] | None:
    """An export-shaped message (any channel) in the field names the gates' spans index."""
    if not message:
        return None
    if channel in ("push", "inapp") or ("title" in message and "subject" not in message):
        return {"subject": message.get("title", ""), "preheader": "", "body": message.get("body", ""),
                "cta_text": "", "cta_url": message.get("url", ""), "footer": "", "html": "",
                "explanations": message.get("explanations") or [], "text": message.get("body", "")}
    if channel == "sms" or ("text" in message and "body" not in message):
        return {"subject": "", "preheader": "", "body": message.get("text", ""), "cta_text": "", "cta_url": "",
                "footer": "", "html": "", "explanations": [], "text": message.get("text", "")}
    return message


@dataclass
class State:
    basis: str
    sources: list[Source]
    channel: str
    words: Words | None = None
    plan: Any = None
    message: dict[str, Any] | None = None  # export shape: what an approval sends
    view: dict[str, Any] | None = None     # the same message in gate field names
    findings: list[dict[str, Any]] = field(default_factory=list)
    verdict: str | None = None
    live: bool = False                      # judged by the gates now (else: as stored)
    frame: tuple[str, str] | None = None
    editable: bool = False
    problem: str | None = None              # why there is nothing to approve

    @property
    def errors(self) -> list[str]:
        return sorted({f["rule_id"] for f in self.findings if f.get("severity") == "error"})

    @property
    def source(self) -> Source | None:
        return next((s for s in self.sources if s.basis == self.basis), None)

    @property
    def plan_basis(self) -> str:
        """The basis recorded with a decision: the attempt or fallback the words began from."""
        s = self.source
        if s is not None and s.basis.startswith("edit:"):
            return "fallback" if s.basic else "attempt"
        return self.basis


def _stored(m: dict[str, Any], st: State) -> None:
    """Without the campaign: the stored message as it is, with the findings stored for it."""
    from .campaign import verdict

    rec = m["record"]
    fb = next((a for a in m["attempts"] if a["kind"] == "fallback"), None)
    st.message = rec.get("message")
    st.view = view_dict(st.message, st.channel)
    if fb is not None and m["outcome"] in ("fallback", "rejected", "holdout"):
        st.findings = list(fb["findings"])
    else:
        st.findings = list(rec.get("findings") or [])
    st.verdict = verdict(st.findings) if st.message else None
    st.basis = "record"
    if not st.message:
        st.problem = "There is no stored message to approve."


def state(studio, m: dict[str, Any], basis: str | None = None, words: Words | None = None,
          form=None) -> State:
    """The editor for member ``m`` from ``basis`` (default: ``default_basis``); ``form`` replaces the words'
    fields with posted ones. Raises ValueError for a basis this member does not have."""
    from .campaign import export_message, message_dict, verdict

    srcs = sources(m)
    rec = m["record"]
    channel = rec.get("channel") or "email"
    basis = basis or default_basis(m, srcs)
    st = State(basis=basis, sources=srcs, channel=channel)
    if basis != "record" and st.source is None:
        raise ValueError(f"this message has no {basis!r} to start from")
    ctx = studio.campaign()
    if ctx is None or basis == "record":
        _stored(m, st)
        return st
    src = st.source
    st.words = words or src.words
    if st.words is None:
        st.problem = f"The {src.label} has no words to edit (its answer did not parse)."
        return st
    if form is not None:
        st.words = st.words.with_form(form, channel)
    try:
        plan = ctx.plan(m["member_id"], basic=src.basic)
    except Exception as e:  # noqa: BLE001  (a broken input row must not take the page down)
        plan, st.problem = None, f"The member's plan could not be rebuilt: {e}"
    if plan is None:  # show what is stored; nothing can be rebuilt or approved
        problem = st.problem or "This member is not in the campaign's members file any more."
        _stored(m, st)
        st.basis, st.problem = basis, problem
        return st
    if plan.action == "suppress":
        st.problem = f"The member is suppressed now ({plan.reason}): nothing may be sent."
    st.plan = plan
    st.channel = plan.channel
    msg = ctx.reassemble(plan, st.words.draft())
    st.message = export_message(msg, plan.channel)
    st.view = message_dict(msg)
    st.findings = ctx.check(plan, msg)
    st.verdict = verdict(st.findings)
    st.live = True
    st.editable = True
    if plan.channel in ("email", "sms"):
        st.frame = ctx.frame(plan)
    return st


_WORD = re.compile(r"[^\W\d_]{2,}")


def reason_problem(text: str | None, *, what: str = "reason") -> str | None:
    """None if ``text`` is a reason in words (three or more words of two or more letters, two of them
    different); else what is wrong. Invisible and control characters don't count."""
    t = unicodedata.normalize("NFKC", text or "")
    t = "".join(ch for ch in t if unicodedata.category(ch) not in ("Cf", "Cc", "Co", "Cn") or ch in "\n\t")
    if len(t) > 2000:
        return f"The {what} is longer than 2,000 characters."
    words = _WORD.findall(t)
    if len(words) < 3 or len({w.casefold() for w in words}) < 2:
        return f"Write the {what} in words (three or more), so the audit log says why."
    return None
