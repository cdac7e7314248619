"""Gate findings shown at their spans: escape each segment, then wrap the span in <mark>.

A finding's ``field`` names the message field its ``span`` indexes into
(``subject``, ``preheader``, ``body``, ``cta_text``, ``explanations[i].text``,
``footer``). ``message_view`` lays a message out field by field and maps the
body and explanation spans into the plain-text version as well, so the
reviewer sees the marks where the member would read them.
"""

from __future__ import annotations

import re
from typing import Any

from markupsafe import Markup, escape

_EXPL = re.compile(r"^explanations?\[?\.?(\d+)\]?(?:\.text)?$")
WHY = "Why was this recommended? "


def _span(f: dict[str, Any]) -> tuple[int, int] | None:
    sp = f.get("span")
    if sp is None and f.get("span_start") is not None:
        sp = (f.get("span_start"), f.get("span_end"))
    if not sp or sp[0] is None or sp[1] is None:
        return None
    return int(sp[0]), int(sp[1])


def highlight(text: str | None, findings: list[dict[str, Any]] | None = None, offset: int = 0,
              numbers: dict[int, int] | None = None) -> Markup:
    """``text`` escaped, with each finding's span (shifted by ``offset``) wrapped in a <mark>.

    Overlapping spans are clipped so marks never nest; spans outside the text are ignored
    (the finding still shows in the findings list with its excerpt).
    """
    text = text or ""
    marks = []
    for i, f in enumerate(findings or []):
        sp = _span(f)
        if sp is None:
            continue
        a, b = sp[0] - offset, sp[1] - offset
        if 0 <= a < b <= len(text):
            marks.append((a, b, i, f))
    marks.sort(key=lambda m: (m[0], -m[1]))
    out: list[str] = []
    pos = 0
    for a, b, i, f in marks:
        a = max(a, pos)
        if a >= b:
            continue
        out.append(escape(text[pos:a]))
        sev = f.get("severity") or "info"
        sev = sev if sev in ("error", "warning", "info") else "info"
        title = f"{f.get('rule_id', '')} ({f.get('gate', '')}, {sev}): {f.get('message', '')}"
        num = (numbers or {}).get(id(f))
        sup = Markup('<sup class="fn">%s</sup>') % num if num else Markup("")
        out.append(Markup('<mark class="sev-%s" data-rule="%s" title="%s">%s%s</mark>')
                   % (sev, f.get("rule_id", ""), title, text[a:b], sup))
        pos = b
    out.append(escape(text[pos:]))
    return Markup("").join(out)


def field_of(f: dict[str, Any]) -> str:
    fld = (f.get("field") or "").strip()
    m = _EXPL.match(fld)
    if m:
        return f"explanations[{m.group(1)}].text"
    return fld


def text_segments(msg: dict[str, Any]) -> list[tuple[str, int, int, int]] | None:
    """Where body and explanation pieces sit inside ``msg['text']`` (``assemble.text_layout``):
    ``(field, field_start, text_start, length)``; None when the stored text has another layout."""
    from ..assemble import text_layout

    text, segs = text_layout(msg)
    return segs if text == (msg.get("text") or "") else None


def _to_text(segs: list[tuple[str, int, int, int]], field: str, a: int, b: int) -> tuple[int, int] | None:
    for f, fstart, tstart, n in segs:
        if f == field and fstart <= a and b <= fstart + n:
            return tstart + a - fstart, tstart + b - fstart
    return None


def message_view(msg: dict[str, Any] | None, findings: list[dict[str, Any]] | None = None,
                 names: dict[str, str] | None = None) -> dict[str, Any]:
    """Everything a template needs to show one message with its findings marked."""
    if not msg:
        return {"empty": True}
    findings = list(findings or [])
    numbers = {id(f): n for n, f in enumerate(findings, 1)}
    by_field: dict[str, list[dict[str, Any]]] = {}
    for f in findings:
        by_field.setdefault(field_of(f), []).append(f)
    shown = {"subject", "preheader", "body", "cta_text", "footer"}
    expl = []
    for i, x in enumerate(msg.get("explanations") or []):
        key = f"explanations[{i}].text"
        shown.add(key)
        pid = x.get("product_id", "")
        expl.append({"product_id": pid, "name": (names or {}).get(pid, pid),
                     "html": highlight(x.get("text"), by_field.get(key), numbers=numbers)})
    text = msg.get("text") or ""
    segs = text_segments(msg) if text else None
    if segs is not None:
        text_marks = []
        for k in {f for f, *_ in segs}:
            for f in by_field.get(k, []):
                sp = _span(f)
                at = _to_text(segs, k, *sp) if sp else None
                if at:
                    m = dict(f, span=at)
                    numbers[id(m)] = numbers[id(f)]
                    text_marks.append(m)
        text_html = highlight(text, text_marks, numbers=numbers)
    else:
        text_html = highlight(text or msg.get("body"), by_field.get("body"), numbers=numbers)
    unplaced = [(numbers[id(f)], f) for f in findings
                if _span(f) is None or field_of(f) not in shown]
    return {
        "empty": False,
        "subject": highlight(msg.get("subject"), by_field.get("subject"), numbers=numbers),
        "preheader": highlight(msg.get("preheader"), by_field.get("preheader"), numbers=numbers),
        "body": highlight(msg.get("body"), by_field.get("body"), numbers=numbers),
        "text": text_html,
        "html": msg.get("html") or "",
        "cta_text": highlight(msg.get("cta_text"), by_field.get("cta_text"), numbers=numbers),
        "cta_url": msg.get("cta_url") or "",
        "footer": highlight(msg.get("footer"), by_field.get("footer"), numbers=numbers),
        "explanations": expl,
        "findings": [(numbers[id(f)], f) for f in findings],
        "unplaced": unplaced,
    }
