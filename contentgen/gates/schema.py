"""Schema gate: the model's output against the draft JSON schema (jsonschema).

Findings are field-level so that the repair prompt can say exactly what to fix.
"""

from __future__ import annotations

import json
import re
from typing import Any

from jsonschema import Draft202012Validator

from ..models import Draft, Finding

_EXPLANATION: dict[str, Any] = {
    "type": "object",
    "properties": {
        "product_id": {"type": "string", "minLength": 1},
        "text": {"type": "string", "minLength": 1},
    },
    "required": ["product_id", "text"],
}

#: What the model must return. Kept to what OpenAI strict structured outputs accept
#: (every property required, additionalProperties false).
DRAFT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "subject": {"type": "string", "minLength": 1},
        "preheader": {"type": "string", "minLength": 1},
        "body": {"type": "string", "minLength": 1},
        "explanations": {"type": "array", "items": {**_EXPLANATION, "additionalProperties": False}},
    },
    "required": ["subject", "preheader", "body", "explanations"],
    "additionalProperties": False,
}

_VALIDATOR = Draft202012Validator(DRAFT_SCHEMA)


def _finding(rule_id: str, field: str, message: str, excerpt: str = "") -> Finding:
    return Finding(rule_id=rule_id, gate="schema", severity="error", field=field, message=message,
                   excerpt=excerpt[:200])


def validate_draft(raw: str | dict[str, Any] | None, *, finish_reason: str | None = None,
                   refusal: str | None = None) -> tuple[Draft | None, list[Finding]]:
    """Parse and validate model output. Returns the draft (or None) and schema findings."""
    if refusal:
        return None, [_finding("schema.refusal", "", f"the model refused: {refusal}", refusal)]
    if finish_reason == "length":
        return None, [_finding("schema.truncated", "",
                               "the output was cut off at the token limit; write shorter text")]
    if raw is None or raw == "":
        return None, [_finding("schema.empty", "", "the model returned no content")]
    obj: Any = raw
    if isinstance(raw, str):
        text = raw.strip()
        if text.startswith("```"):
            text = text.strip("`")
            text = text[text.find("{"):] if "{" in text else text
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            return None, [_finding("schema.invalid-json", "",
                                   f"output is not valid JSON ({e.msg} at line {e.lineno} column {e.colno}); "
                                   "return one JSON object only", text[max(0, e.pos - 40): e.pos + 40])]
    if _plainly_valid(obj):  # the common case, decided without the validator (same answer, a tenth the cost)
        return Draft.model_validate(obj), []
    findings = []
    for err in sorted(_VALIDATOR.iter_errors(obj), key=lambda e: list(e.absolute_path)):
        field = ".".join(str(p) for p in err.absolute_path) or "(root)"
        if err.validator == "additionalProperties":
            msg = f"{err.message}; return only subject, preheader, body and explanations"
        else:
            field, msg = _describe(err, field, missing_hint="; include it")
        findings.append(_finding(f"schema.{err.validator}", field, msg))
    if findings:
        return None, findings
    return Draft.model_validate(obj), []


_DRAFT_KEYS = frozenset(DRAFT_SCHEMA["required"])
_EXPLANATION_KEYS = frozenset(_EXPLANATION["required"])


def _plainly_valid(obj: Any) -> bool:
    """True only for what ``DRAFT_SCHEMA`` accepts: exactly its keys, non-empty strings, explanations a list of
    objects with exactly a non-empty product_id and text. Anything else goes to the validator (for its findings)."""
    if type(obj) is not dict or obj.keys() != _DRAFT_KEYS:
        return False
    for k in ("subject", "preheader", "body"):
        v = obj[k]
        if type(v) is not str or not v:
            return False
    ex = obj["explanations"]
    if type(ex) is not list:
        return False
    for e in ex:
        if type(e) is not dict or e.keys() != _EXPLANATION_KEYS:
            return False
        for v in e.values():
            if type(v) is not str or not v:
                return False
    return True


def _describe(err: Any, field: str, missing_hint: str = "") -> tuple[str, str]:
    """(field, plain-language message) for a jsonschema error at ``field`` ("(root)" at the top);
    a missing property names its own field."""
    if err.validator == "required":
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        field = missing if field == "(root)" else f"{field}.{missing}"
        return field, f"field '{field}' is missing{missing_hint}"
    if err.validator == "type":
        return field, f"field '{field}' must be of type {err.validator_value}"
    if err.validator == "minLength":
        return field, f"field '{field}' must not be empty"
    return field, f"field '{field}': {err.message}"


# --------------------------------------------------------------------------- rendered messages (check cases)

MESSAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "subject": {"type": "string", "minLength": 1},
        "preheader": {"type": "string"},
        "body": {"type": "string", "minLength": 1},
        "cta_text": {"type": "string"},
        "cta_url": {"type": "string"},
        "explanations": {"type": "array", "items": _EXPLANATION},
        "footer": {"type": "string", "minLength": 1},
        "html": {"type": "string"},
    },
    "required": ["subject", "preheader", "body", "cta_text", "cta_url", "explanations", "footer"],
}

_MSG_VALIDATOR = Draft202012Validator(MESSAGE_SCHEMA)


#: Text fields that must not be empty, per channel (push/sms/in-app carry no footer; sms no subject).
REQUIRED_TEXT = {"email": ("subject", "body", "cta_text", "cta_url", "footer"), "push": ("subject", "body"), "sms": ("body",),
                 "inapp": ("subject", "body")}


def validate_message_dict(obj: Any, channel: str = "email") -> list[Finding]:
    """Schema findings for a check case's ``message`` (missing fields, wrong types, empty text).

    Every channel has every field; which text fields may be empty depends on the channel
    (see :data:`REQUIRED_TEXT`).
    """
    if not isinstance(obj, dict):
        return [_finding("schema.message-type", "(root)", "the message must be a JSON object with subject, "
                         "preheader, body, cta_text, cta_url, explanations and footer")]
    out = []
    required = REQUIRED_TEXT.get(channel, REQUIRED_TEXT["email"])
    for err in sorted(_MSG_VALIDATOR.iter_errors(obj), key=lambda e: [str(p) for p in e.absolute_path]):
        path = list(err.absolute_path)
        if err.validator == "minLength" and len(path) == 1 and path[0] in ("subject", "footer") \
                and path[0] not in required:
            continue
        field = "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p))
                        for i, p in enumerate(path)) or "(root)"
        field, msg = _describe(err, field)
        out.append(_finding(f"schema.message-{err.validator}", field, msg))
    return out


def validate_message(message: Any, channel: str = "email", layout: Any = None) -> list[Finding]:
    """Schema-shape findings for a RenderedMessage the pipeline assembled: empty required text, and
    model-written text with no word in it (a stray "{" from a broken JSON answer is not copy).
    ``layout``: the body's greeting and sign-off lines (:func:`.text.layout`; None: every line is prose)."""
    out = []
    for name in REQUIRED_TEXT.get(channel, REQUIRED_TEXT["email"]):
        if not (getattr(message, name, "") or "").strip():
            out.append(_finding("schema.message-minLength", name, f"field '{name}' must not be empty"))
    from . import text as T

    texts = [("subject", message.subject or ""), ("preheader", message.preheader or "")]
    body = message.body or ""
    prose = body if layout is None or channel != "email" else "\n".join(
        body[a:b] for a, b in T.body_prose_lines(body, layout))
    texts.append(("body", prose))
    texts += [(f"explanations[{i}].text", e.text) for i, e in enumerate(message.explanations)]
    for name, text in texts:
        if text.strip() and not _WORD.search(text):
            out.append(_finding("schema.message-no-words", name,
                                f"field '{name}' has no words in it ({text.strip()[:20]!r}); write the copy"))
    return out


_WORD = re.compile(r"[^\W\d_]{2,}")
