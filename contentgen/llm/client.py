"""One async client for every OpenAI-compatible backend (OpenAI, Azure, vLLM, Ollama, llama.cpp).

``LLMClient.complete`` sends one chat completion and returns a ``Completion``:
the text (possibly invalid JSON: the schema gate judges it), finish reason,
refusal, usage and the number of attempts. Around the call:

* one retry layer (tenacity, ``retry.py``); the SDK's retries are off;
* a concurrency cap and RPM/TPM budgets (``budget.py``) fed by ``x-ratelimit-*`` headers;
* structured output: ``json_schema`` (strict), ``json_object`` (schema in a system
  note), or ``auto`` (json_schema, downgraded to json_object for the rest of the
  run when the backend answers 400 about ``response_format``);
* outage detection: ``outage_after`` consecutive requests that failed for
  transport reasons (after their retries) trip ``ProviderUnavailable`` for this
  and every later call; the run pauses and resumes on re-run.

Exceptions (all ``ContentgenError``)::

    TransportFailure     one request failed after its retries (429/5xx/timeout/connection):
                         leave the member pending, never push it to fallback
    ProviderRejected     400/401/403/404/...: not retried; ``.status``, ``.fatal``
                         (True for 401/403/404, and for a 200 that is not a chat
                         completion: the whole run is misconfigured)
    ProviderUnavailable  (errors.py, exit 3) the provider is down: stop the run

The API key is handed to the SDK and kept nowhere else; it is not in ``repr``
or in any log record.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import openai
from openai.types.chat import ChatCompletion
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

from ..config import LLMSettings
from ..errors import ContentgenError, ProviderUnavailable
from .budget import RateBudget
from .retry import ProviderWait, exc_retry_after, is_transient

log = logging.getLogger("contentgen.llm")

__all__ = ["ClientStats", "Completion", "LLMClient", "ProviderRejected", "TransportFailure",
           "complete_counted", "estimate_tokens"]

_HINTS = {
    200: "the answer was not a chat completion: check --base-url (OpenAI-compatible servers usually end in /v1)",
    401: "check OPENAI_API_KEY (or --api-key) for this provider",
    403: "check that the key's project may use this model",
    404: "check the model name and --base-url (the model or endpoint does not exist)",
    400: "the provider refused this request as invalid; see its message",
}


class TransportFailure(ContentgenError):
    """A request failed after all retries for a transport reason; the member stays pending."""

    def __init__(self, message: str, *, kind: str, status: int | None, attempts: int) -> None:
        self.kind = kind            # "rate_limited" | "server_error" | "timeout" | "connection"
        self.status = status
        self.attempts = attempts
        super().__init__(message, hint="the member stays pending; a re-run retries it")


class ProviderRejected(ContentgenError):
    """The provider refused the request (4xx other than 429); not retried."""

    def __init__(self, message: str, *, status: int, provider_message: str) -> None:
        self.status = status
        self.provider_message = provider_message
        self.fatal = status in (200, 401, 403, 404)
        super().__init__(message, hint=_HINTS.get(status))


@dataclass
class Completion:
    text: str | None
    finish_reason: str | None
    refusal: str | None
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    attempts: int
    model: str
    latency_s: float                 # wall time of complete(), retries and waits included


@dataclass
class ClientStats:
    requests: int = 0                # HTTP attempts sent
    retries: int = 0
    rate_limited: int = 0            # 429 answers
    server_errors: int = 0           # 5xx answers
    timeouts: int = 0
    connection_errors: int = 0
    rejected: int = 0                # 4xx other than 429 (after any structured-output downgrade)
    succeeded: int = 0               # complete() calls that returned
    transport_failures: int = 0      # complete() calls that raised TransportFailure
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    structured_mode_used: str = ""   # "json_schema" or "json_object" (what the next request uses)
    budget_wait_s: float = 0.0       # time spent waiting for RPM/TPM budget or provider pauses

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def complete_counted(client: "LLMClient", messages: list[dict[str, Any]], schema: dict[str, Any],
                           usage: dict[str, int]) -> dict[str, Any]:
    """One completion as the decide step consumes it, its tokens added to ``usage``."""
    comp = await client.complete(messages, schema=schema)
    usage["prompt_tokens"] += comp.prompt_tokens
    usage["completion_tokens"] += comp.completion_tokens
    usage["cached_tokens"] += comp.cached_tokens
    usage["requests"] += 1
    return {"text": comp.text, "finish_reason": comp.finish_reason, "refusal": comp.refusal,
            "prompt_tokens": comp.prompt_tokens, "completion_tokens": comp.completion_tokens}


def estimate_tokens(messages: list[dict[str, Any]]) -> int:
    """≈ 4 characters a token, plus a few tokens of framing per message."""
    chars = 0
    for m in messages:
        content = m.get("content")
        chars += len(content) if isinstance(content, str) else len(json.dumps(content or ""))
    return chars // 4 + 4 * len(messages) + 1


def _safe_url(url: str) -> str:
    """The base URL without any user:password@ part."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = host + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def _provider_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(err, str):
            return err
    return exc.message


def _is_format_rejection(exc: openai.APIStatusError) -> bool:
    if exc.status_code != 400:
        return False
    text = f"{exc.message} {exc.body}".lower()
    return "response_format" in text or "json_schema" in text


class _Downgrade(Exception):
    pass


class LLMClient:
    def __init__(self, settings: LLMSettings, *, base_url: str, api_key: str | None, model: str | None = None,
                 local_schema_hint: bool = False, backoff_initial_s: float = 0.5, backoff_max_s: float = 30.0,
                 budget_headroom: float = 0.94) -> None:
        self.settings = settings
        self.base_url = _safe_url(base_url)
        self.model = model or settings.model
        self.local_schema_hint = local_schema_hint
        self._oai = openai.AsyncOpenAI(base_url=base_url, api_key=api_key or "not-needed", max_retries=0,
                                       timeout=settings.timeout_s)
        self._sem = asyncio.Semaphore(settings.concurrency)
        self._budget = RateBudget(settings.rpm, settings.tpm, headroom=budget_headroom)
        self._wait = ProviderWait(initial_s=backoff_initial_s, max_s=backoff_max_s)
        self._auto = settings.structured_output == "auto"
        self._mode = "json_object" if settings.structured_output == "json_object" else "json_schema"
        self._consecutive_failures = 0
        self._outage: str | None = None
        self.stats = ClientStats(structured_mode_used=self._mode)

    def __repr__(self) -> str:
        return (f"LLMClient(base_url={self.base_url!r}, model={self.model!r}, "
                f"structured_output={self._mode!r}, concurrency={self.settings.concurrency})")

    @property
    def structured_mode(self) -> str:
        return self._mode

    async def aclose(self) -> None:
        await self._oai.close()

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- request shaping -------------------------------------------------------------------------

    def _request(self, messages: list[dict[str, Any]], schema: dict[str, Any], schema_name: str,
                 max_tokens: int) -> dict[str, Any]:
        if self._mode == "json_schema":
            fmt: dict[str, Any] = {"type": "json_schema",
                                   "json_schema": {"name": schema_name, "schema": schema, "strict": True}}
        else:
            fmt = {"type": "json_object"}
            if self.local_schema_hint:                   # llama.cpp's server constrains to it
                fmt["schema"] = schema
            note = ("Return only one JSON object that matches this JSON schema, with no other text:\n"
                    + json.dumps(schema, separators=(",", ":")))
            messages = list(messages)
            if messages and messages[0].get("role") == "system" and isinstance(messages[0].get("content"), str):
                messages[0] = {**messages[0], "content": messages[0]["content"] + "\n\n" + note}
            else:
                messages.insert(0, {"role": "system", "content": note})
        return {"model": self.model, "messages": messages, "temperature": self.settings.temperature,
                "max_tokens": max_tokens, "response_format": fmt}

    def request_body(self, messages: list[dict[str, Any]], *, schema: dict[str, Any], schema_name: str = "message",
                     max_tokens: int | None = None) -> dict[str, Any]:
        """The exact chat-completions body ``complete`` would send (used for Batch API request files)."""
        return self._request(messages, schema, schema_name, max_tokens or self.settings.max_tokens)

    @property
    def sdk(self) -> openai.AsyncOpenAI:
        """The underlying SDK client (Files and Batches endpoints); retries are off on it."""
        return self._oai

    # -- the call --------------------------------------------------------------------------------

    def _check_outage(self) -> None:
        if self._outage is not None:
            raise ProviderUnavailable(self._outage)

    async def complete(self, messages: list[dict[str, Any]], *, schema: dict[str, Any],
                       schema_name: str = "message", max_tokens: int | None = None) -> Completion:
        self._check_outage()
        t0 = time.perf_counter()
        max_tokens = max_tokens or self.settings.max_tokens
        attempts = 0
        while True:
            kwargs = self._request(messages, schema, schema_name, max_tokens)
            est = estimate_tokens(kwargs["messages"]) + max_tokens
            counter = [0]
            try:
                comp = await self._with_retries(kwargs, est, counter)
            except _Downgrade:
                attempts += counter[0]
                continue
            except openai.APIStatusError as e:
                attempts += counter[0]
                if is_transient(e):
                    self._transport_failed(e, attempts)
                self.stats.rejected += 1
                msg = _provider_message(e)
                raise ProviderRejected(f"provider at {self.base_url} rejected the request: "
                                       f"{e.status_code} {msg}", status=e.status_code,
                                       provider_message=msg) from None
            except openai.APIConnectionError as e:
                attempts += counter[0]
                self._transport_failed(e, attempts)
            attempts += counter[0]
            break
        self._consecutive_failures = 0
        self.stats.succeeded += 1
        usage = getattr(comp, "usage", None)
        pt = (getattr(usage, "prompt_tokens", 0) or 0) if usage else 0
        ct = (getattr(usage, "completion_tokens", 0) or 0) if usage else 0
        details = getattr(usage, "prompt_tokens_details", None) if usage else None
        cached = (getattr(details, "cached_tokens", None) or 0) if details else 0
        self.stats.prompt_tokens += pt
        self.stats.completion_tokens += ct
        self.stats.cached_tokens += cached
        choices = getattr(comp, "choices", None)
        choice = choices[0] if choices else None
        msg = choice.message if choice else None
        return Completion(text=msg.content if msg else None,
                          finish_reason=choice.finish_reason if choice else None,
                          refusal=getattr(msg, "refusal", None) if msg else None,
                          prompt_tokens=pt, completion_tokens=ct, cached_tokens=cached, attempts=attempts,
                          model=getattr(comp, "model", None) or self.model, latency_s=time.perf_counter() - t0)

    async def _with_retries(self, kwargs: dict[str, Any], est: int, counter: list[int]) -> Any:
        retrying = AsyncRetrying(stop=stop_after_attempt(self.settings.max_retries + 1), wait=self._wait,
                                 retry=retry_if_exception(is_transient), reraise=True,
                                 before_sleep=self._before_sleep)
        async for attempt in retrying:
            with attempt:
                counter[0] += 1
                return await self._attempt(kwargs, est)
        raise AssertionError("unreachable")  # pragma: no cover

    def _before_sleep(self, state: Any) -> None:
        self.stats.retries += 1
        exc = state.outcome.exception()
        log.debug("retrying %s in %.2fs (attempt %d of %d)", _describe(exc), state.upcoming_sleep,
                  state.attempt_number + 1, self.settings.max_retries + 1)

    async def _attempt(self, kwargs: dict[str, Any], est: int) -> Any:
        self._check_outage()
        async with self._sem:
            self._check_outage()
            t_wait = time.perf_counter()
            charged = await self._budget.acquire(est)
            self.stats.budget_wait_s += time.perf_counter() - t_wait
            self.stats.requests += 1
            try:
                raw = await self._oai.chat.completions.with_raw_response.create(**kwargs)
            except openai.APIStatusError as e:
                self._budget.observe(e.response.headers, charged)
                self._budget.refund(charged)
                if e.status_code == 429:
                    self.stats.rate_limited += 1
                    ra = exc_retry_after(e)
                    if ra:
                        self._budget.pause_for(ra)
                elif e.status_code >= 500:
                    self.stats.server_errors += 1
                elif self._auto and self._mode == "json_schema" and _is_format_rejection(e):
                    self._mode = self.stats.structured_mode_used = "json_object"
                    log.warning("provider at %s does not accept response_format json_schema (%s); "
                                "using json_object for the rest of the run", self.base_url, _provider_message(e))
                    raise _Downgrade() from None
                raise
            except openai.APITimeoutError:
                self.stats.timeouts += 1
                raise
            except openai.APIConnectionError:
                self.stats.connection_errors += 1
                raise
            self._budget.observe(raw.headers, charged)
            comp = raw.parse()                   # LegacyAPIResponse: sync parse
            if inspect.isawaitable(comp):
                comp = await comp
            if not isinstance(comp, ChatCompletion):
                # e.g. a web page answering 200 because --base-url lacks /v1
                self._budget.refund(charged)
                self.stats.rejected += 1
                raise ProviderRejected(f"provider at {self.base_url} answered HTTP {raw.status_code} with "
                                       f"something that is not a chat completion "
                                       f"({raw.headers.get('content-type', 'no content-type')})",
                                       status=raw.status_code, provider_message=str(comp)[:200])
            usage = getattr(comp, "usage", None)
            if usage is not None:
                self._budget.settle(est, (getattr(usage, "prompt_tokens", 0) or 0)
                                    + (getattr(usage, "completion_tokens", 0) or 0), charged)
            return comp

    def _transport_failed(self, exc: BaseException, attempts: int) -> None:
        self.stats.transport_failures += 1
        self._consecutive_failures += 1
        status = getattr(exc, "status_code", None)
        kind = ("timeout" if isinstance(exc, openai.APITimeoutError) else
                "connection" if isinstance(exc, openai.APIConnectionError) else
                "rate_limited" if status == 429 else "server_error")
        what = _describe(exc)
        failure = TransportFailure(f"provider at {self.base_url}: {what} after {attempts} attempt(s)",
                                   kind=kind, status=status, attempts=attempts)
        n = self._consecutive_failures
        if n >= self.settings.outage_after:
            if self._outage is None:
                self._outage = (f"provider at {self.base_url} failed {n} times in a row (last: {what}); "
                                "the run is paused; re-run the same command to continue")
                log.error("%s", self._outage)
            raise ProviderUnavailable(self._outage) from failure
        log.warning("%s", failure.message)
        raise failure from None


def _describe(exc: BaseException | None) -> str:
    if isinstance(exc, openai.APITimeoutError):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "connection error"
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}"
    return type(exc).__name__
