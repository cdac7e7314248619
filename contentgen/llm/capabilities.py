"""What one provider (one base URL) accepts, learned from its answers and remembered for the run.

Structured output, best first (``LEVELS``)::

    json_schema          response_format json_schema (strict)              OpenAI, Azure, vLLM, LiteLLM, llama-server
    json_object_schema   the schema in the request, the way the server     llama.cpp (response_format json_object +
                         takes it, and in a system note                    "schema": a grammar); vLLM (guided_json)
    json_object          response_format json_object; schema in a note     any JSON mode
    prompt               no response_format; schema in a note              servers without JSON mode

A provider that refuses a parameter says so in its error, whatever the status
(400, 422, or llama-cpp-python's 500 "Input should be 'text' or
'json_object'"): ``rejected_param`` reads the error's ``param`` field and its
message, and ``Capabilities.downgrade`` moves one step (structured output one
level down; ``max_tokens`` <-> ``max_completion_tokens``; an unsupported
``temperature`` dropped). Each change is logged once and kept in
``Capabilities.changes`` for the manifest.

``server_kind`` names the server from its ``GET /models`` answer (``owned_by``:
``me`` is llama-cpp-python, ``llamacpp`` llama.cpp's own server, ``vllm``
vLLM); a known server starts at what it supports, so llama-cpp-python's server
gets the schema as a grammar from the first request and one request in flight
(it answers one at a time).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("contentgen.llm")

LEVELS = ("json_schema", "json_object_schema", "json_object", "prompt")
TOKEN_PARAMS = ("max_tokens", "max_completion_tokens")

#: model names that take ``max_completion_tokens`` (OpenAI's reasoning models refuse ``max_tokens``)
_COMPLETION_TOKENS_MODELS = re.compile(r"^(o\d|gpt-5)", re.I)

_REFUSAL_WORDS = re.compile(
    r"unsupported|not supported|does not support|doesn't support|not allowed|unrecognized|unknown (?:param|field|"
    r"argument)|unexpected|extra (?:inputs|fields)|invalid (?:param|value|type)|input should be|literal_error|"
    r"is not one of|only the default|not permitted|cannot be used|not compatible|use '?max_completion_tokens",
    re.I)
_FORMAT_WORDS = re.compile(r"response_format|json_schema|json_object|guided_json|structured output|grammar", re.I)


def _body_error(body: Any) -> dict[str, Any]:
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            return err
        if isinstance(err, str):
            return {"message": err}
    return {}


def rejected_param(status: int, body: Any, message: str) -> str | None:
    """The request parameter a provider's error refuses, or None when the error is about something else.

    ``status`` may be any 4xx/5xx except 401/403/404/429: what counts is what the error says.
    """
    if status in (401, 403, 404, 429) or status < 400:
        return None
    err = _body_error(body)
    text = " ".join(str(x) for x in (message, err.get("message"), err.get("code"), err.get("type")) if x)
    param = err.get("param")
    param = str(param) if param else ""
    refusing = bool(_REFUSAL_WORDS.search(text)) or (err.get("code") in ("unsupported_parameter",
                                                                         "unsupported_value"))
    if not refusing:
        return None
    names = ("max_completion_tokens", "max_tokens", "temperature")
    if param in names:
        return param
    if param.startswith("response_format"):
        return "response_format"
    # no param field: the parameter the message names first ("'max_tokens' ... use 'max_completion_tokens'")
    found = [(m.start(), name) for name in names if (m := re.search(rf"\b{name}\b", text))]
    if found:
        return min(found)[1]
    if _FORMAT_WORDS.search(param + " " + text):
        return "response_format"
    return None


def wants_completion_tokens(model: str) -> bool:
    return bool(_COMPLETION_TOKENS_MODELS.match(model or ""))


def server_kind(models_body: Any, headers: dict[str, str] | None = None) -> str:
    """llama-cpp-python | llama.cpp | vllm | ollama | litellm | openai | unknown, from ``GET /models``."""
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    if any(k.startswith("x-litellm") for k in headers):
        return "litellm"
    data = models_body.get("data") if isinstance(models_body, dict) else None
    owners = {str(m.get("owned_by", "")).lower() for m in data or [] if isinstance(m, dict)}
    if "me" in owners:
        return "llama-cpp-python"
    if "llamacpp" in owners:
        return "llama.cpp"
    if "vllm" in owners:
        return "vllm"
    if "library" in owners or "ollama" in owners:
        return "ollama"
    if owners & {"openai", "system", "openai-internal"}:
        return "openai"
    return "unknown"


@dataclass
class Capabilities:
    """The request shape one base URL accepts. ``auto`` structured output negotiates; a fixed mode does not."""

    base_url: str
    structured: str = "json_schema"
    negotiate_structured: bool = True
    token_param: str = "max_tokens"
    send_temperature: bool = True
    server: str = "unknown"
    max_concurrency: int | None = None       # the server answers this many at a time (None: no known cap)
    tried_token_params: set[str] = field(default_factory=set)
    changes: list[dict[str, Any]] = field(default_factory=list)

    # -- what the server told us -------------------------------------------------------------------
    def learn_server(self, kind: str) -> None:
        """Start from what a known server supports (no failed request needed)."""
        self.server = kind
        if kind == "llama-cpp-python":
            # its server validates response_format.type as 'text' | 'json_object' and turns
            # json_object + "schema" into a grammar; it serializes requests behind one lock
            self.max_concurrency = 1
            if self.negotiate_structured and self.structured == "json_schema":
                self._change("structured_output", "json_schema", "json_object_schema",
                             "llama-cpp-python's server takes the schema as response_format.schema (a grammar)")
                self.structured = "json_object_schema"

    def downgrade(self, param: str, status: int, provider_message: str) -> bool:
        """Adapt to a refused parameter; False when there is nothing left to try."""
        why = f"HTTP {status}: {provider_message[:200]}"
        if param == "response_format" or (param in ("schema", "guided_json")):
            if not self.negotiate_structured:
                return False
            i = LEVELS.index(self.structured)
            if i + 1 >= len(LEVELS):
                return False
            self._change("structured_output", self.structured, LEVELS[i + 1], why)
            self.structured = LEVELS[i + 1]
            return True
        if param in TOKEN_PARAMS:
            if param != self.token_param:
                return False                 # refused something we no longer send: not this
            self.tried_token_params.add(param)
            other = TOKEN_PARAMS[1 - TOKEN_PARAMS.index(param)]
            new = other if other not in self.tried_token_params else "none"
            self._change("token_limit", param, new, why)
            self.token_param = new
            return True
        if param == "temperature" and self.send_temperature:
            self._change("temperature", "sent", "provider default", why)
            self.send_temperature = False
            return True
        return False

    def _change(self, what: str, old: str, new: str, why: str) -> None:
        self.changes.append({"what": what, "from": old, "to": new, "reason": why})
        log.warning("provider at %s: %s %s -> %s (%s); kept for the rest of the run", self.base_url, what, old,
                    new, why)

    # -- the request -------------------------------------------------------------------------------
    def shape(self, body: dict[str, Any], schema: dict[str, Any], schema_name: str, max_tokens: int) -> dict[str, Any]:
        """Add response_format / schema note / token limit / temperature to a body with model + messages."""
        out = dict(body)
        if self.token_param != "none":
            out[self.token_param] = max_tokens
        if not self.send_temperature:
            out.pop("temperature", None)
        level = self.structured
        if level == "json_schema":
            out["response_format"] = {"type": "json_schema",
                                      "json_schema": {"name": schema_name, "schema": schema, "strict": True}}
            return out
        out["messages"] = with_schema_note(out["messages"], schema)
        if level == "json_object_schema":
            if self.server == "vllm":
                out["guided_json"] = schema          # vLLM's guided decoding (older servers)
            else:
                out["response_format"] = {"type": "json_object", "schema": schema}
        elif level == "json_object":
            out["response_format"] = {"type": "json_object"}
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "server": self.server, "structured_output": self.structured,
                "token_limit_param": self.token_param, "temperature": self.send_temperature,
                "max_concurrency": self.max_concurrency, "changes": list(self.changes)}


def with_schema_note(messages: list[dict[str, Any]], schema: dict[str, Any]) -> list[dict[str, Any]]:
    import json

    note = ("Return only one JSON object that matches this JSON schema, with no other text:\n"
            + json.dumps(schema, separators=(",", ":")))
    messages = list(messages)
    if messages and messages[0].get("role") == "system" and isinstance(messages[0].get("content"), str):
        messages[0] = {**messages[0], "content": messages[0]["content"] + "\n\n" + note}
    else:
        messages.insert(0, {"role": "system", "content": note})
    return messages
