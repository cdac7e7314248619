"""One async client for every OpenAI-compatible backend (OpenAI, Azure, vLLM, Ollama, llama.cpp, LiteLLM).

``LLMClient.complete`` sends one chat completion and returns a ``Completion``:
the text (possibly invalid JSON: the schema gate judges it), finish reason,
refusal, usage and the number of attempts. Around the call:

* the endpoint (``endpoints.py``): OpenAI-style ``/v1`` servers, Azure OpenAI
  deployment URLs (``api-version``, ``api-key``) and Azure's ``/openai/v1/``;
* the hot call (``transport.py``): aiohttp, answers validated into the SDK's
  ``ChatCompletion``, errors raised as the SDK's exception classes; the
  ``AsyncOpenAI`` client (on aiohttp too) serves Files, Batches and Models;
* one retry layer (tenacity, ``retry.py``) honouring ``Retry-After`` (also as
  LiteLLM forwards it); the SDK's retries are off;
* a concurrency cap and RPM/TPM budgets (``budget.py``; shared between shard
  processes with ``llm.shared_budget``) fed by ``x-ratelimit-*`` headers;
* capability negotiation (``capabilities.py``): a refused ``response_format``,
  ``max_tokens`` or ``temperature`` is recognized from the error's content
  whatever its status, the request is reshaped (json_schema -> schema in the
  request -> json_object -> schema in the prompt; ``max_completion_tokens``)
  and the result kept for this base URL; ``GET /models`` names known servers
  first (llama-cpp-python's gets the schema as a grammar and one request in flight);
* outage detection: ``outage_after`` consecutive requests that failed for
  transport reasons (after their retries) trip ``ProviderUnavailable`` (exit 3);
* misconfiguration: ``misconfig_after`` consecutive requests refused the same
  way (same status, same message; one 401 is enough) trip
  ``ProviderMisconfigured`` (exit 6) naming the provider's error and the fix.

Exceptions (all ``ContentgenError``)::

    TransportFailure       the request got no answer (429/5xx/timeout/connection, after retries):
     └── RequestRejected   or it was refused for a reason that is not its content (a 4xx that
                           is not yet known to be systematic): the member stays pending
    ProviderRejected       refused because of this request's content (context too long, content
                           filter, flagged prompt): a failed attempt; the decide step goes on
    ProviderUnavailable    (errors.py, exit 3) the provider is down: stop the run
     └── ProviderMisconfigured (exit 6) every request is refused the same way: stop the run

The API key is handed to the transport and the SDK and kept nowhere else; it is
not in ``repr`` or in any log record.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx2
import openai
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

from ..config import LLMSettings
from ..errors import ContentgenError, ProviderMisconfigured, ProviderUnavailable
from .budget import make_budget
from .capabilities import Capabilities, rejected_param, server_kind, wants_completion_tokens
from .endpoints import resolve, sdk_client
from .retry import ProviderWait, exc_retry_after, is_content_rejection, is_transient
from .transport import DirectTransport, SdkTransport

log = logging.getLogger("contentgen.llm")

__all__ = ["ClientStats", "Completion", "LLMClient", "ProviderRejected", "RequestRejected", "TransportFailure",
           "complete_counted", "estimate_tokens"]

_HINTS = {
    200: "the answer was not a chat completion: check --base-url (OpenAI-compatible servers usually end in /v1)",
    401: "check OPENAI_API_KEY (or --api-key) for this provider (Azure: the resource's key)",
    403: "check that the key's project may use this model",
    404: "check the model name (Azure: the deployment name) and --base-url",
    400: "the provider refused this request as invalid; see its message",
    422: "the provider refused this request as invalid; see its message",
}


class TransportFailure(ContentgenError):
    """A request got no usable answer for a reason that is not its content; the member stays pending."""

    def __init__(self, message: str, *, kind: str, status: int | None, attempts: int) -> None:
        self.kind = kind            # "rate_limited" | "server_error" | "timeout" | "connection" | "rejected"
        self.status = status
        self.attempts = attempts
        super().__init__(message, hint="the member stays pending; a re-run retries it")


class RequestRejected(TransportFailure):
    """Refused (4xx) for a reason that is not the request's content; counted towards misconfiguration."""

    fatal = True                    # never the member's fault: the decide step must not treat it as a refusal

    def __init__(self, message: str, *, status: int, provider_message: str, attempts: int) -> None:
        self.provider_message = provider_message
        super().__init__(message, kind="rejected", status=status, attempts=attempts)


class ProviderRejected(ContentgenError):
    """The provider refused this request because of its content; a failed attempt, not a stop."""

    def __init__(self, message: str, *, status: int, provider_message: str) -> None:
        self.status = status
        self.provider_message = provider_message
        self.fatal = False
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
    rejected: int = 0                # refusals that reached the caller (after any renegotiation)
    renegotiated: int = 0            # refusals answered by reshaping the request
    succeeded: int = 0               # complete() calls that returned
    transport_failures: int = 0      # complete() calls that raised TransportFailure
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    structured_mode_used: str = ""   # what the next request uses (capabilities.LEVELS)
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


def _same_way(status: int, message: str) -> tuple[int, str]:
    """Refusals that differ only in numbers or ids (request ids, token counts) are the same refusal."""
    return status, re.sub(r"[0-9a-f]{8,}|\d+", "#", message.lower()).strip()[:300]


class _Renegotiated(Exception):
    """The request shape changed (a refused parameter); send it again, reshaped."""


class _NotACompletion(Exception):
    def __init__(self, status: int, content_type: str, raw: bytes) -> None:
        self.status, self.content_type, self.raw = status, content_type, raw


class LLMClient:
    def __init__(self, settings: LLMSettings, *, base_url: str, api_key: str | None, model: str | None = None,
                 local_schema_hint: bool = False, backoff_initial_s: float = 0.5, backoff_max_s: float = 30.0,
                 budget_headroom: float | None = None, probe: bool = True) -> None:
        self.settings = settings
        self.model = model or settings.model
        self.endpoint = resolve(base_url, self.model, api_version=settings.api_version, azure=settings.azure)
        self.base_url = _safe_url(self.endpoint.base_url)
        self.local_schema_hint = local_schema_hint
        limits = httpx2.Limits(max_connections=settings.concurrency + 8,
                               max_keepalive_connections=settings.concurrency + 8)
        self._http = openai.DefaultAioHttpClient(limits=limits, timeout=settings.timeout_s)
        self._oai = sdk_client(self.endpoint, api_key, timeout=settings.timeout_s, http_client=self._http)
        if settings.transport == "sdk":
            self._transport: DirectTransport | SdkTransport = SdkTransport(self._oai, self.endpoint)
        else:
            self._transport = DirectTransport(self.endpoint, api_key, self._oai, concurrency=settings.concurrency,
                                              timeout_s=settings.timeout_s)
        self._budget = make_budget(settings, key=f"{self.base_url}|{self.model}",
                                   headroom=budget_headroom or settings.budget_headroom)
        self._wait = ProviderWait(initial_s=backoff_initial_s, max_s=backoff_max_s)
        mode = settings.structured_output
        start = {"auto": "json_schema", "json_schema": "json_schema", "prompt": "prompt",
                 "json_object": "json_object_schema" if local_schema_hint else "json_object"}[mode]
        self.caps = Capabilities(self.base_url, structured=start, negotiate_structured=mode == "auto",
                                 token_param="max_completion_tokens" if wants_completion_tokens(self.model)
                                 else "max_tokens")
        if local_schema_hint:
            self.caps.server = "llama-cpp-python"
        self._probe = probe and not self.endpoint.is_azure and not local_schema_hint
        self._probe_lock: asyncio.Lock | None = None
        self._sem: asyncio.Semaphore | None = None
        self._consecutive_failures = 0
        self._refusal: tuple[tuple[int, str], int] | None = None
        self._stop: ContentgenError | None = None
        self.stats = ClientStats(structured_mode_used=self.caps.structured)

    def __repr__(self) -> str:
        return (f"LLMClient(base_url={self.base_url!r}, model={self.model!r}, "
                f"structured_output={self.caps.structured!r}, concurrency={self.settings.concurrency})")

    @property
    def structured_mode(self) -> str:
        return self.caps.structured

    @property
    def concurrency(self) -> int:
        cap = self.caps.max_concurrency
        return min(self.settings.concurrency, cap) if cap else self.settings.concurrency

    def capabilities(self) -> dict[str, Any]:
        """What this run learned about the provider (for the manifest)."""
        return {**self.caps.as_dict(), "endpoint": self.endpoint.kind, "transport": self._transport.name,
                "concurrency": self.concurrency}

    async def aclose(self) -> None:
        await self._transport.aclose()
        await self._oai.close()
        close = getattr(self._budget, "close", None)
        if close:
            close()

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- request shaping -------------------------------------------------------------------------

    def _request(self, messages: list[dict[str, Any]], schema: dict[str, Any], schema_name: str,
                 max_tokens: int) -> dict[str, Any]:
        body = {"model": self.model, "messages": messages, "temperature": self.settings.temperature}
        return self.caps.shape(body, schema, schema_name, max_tokens)

    def request_body(self, messages: list[dict[str, Any]], *, schema: dict[str, Any], schema_name: str = "message",
                     max_tokens: int | None = None) -> dict[str, Any]:
        """The exact chat-completions body ``complete`` would send (used for Batch API request files)."""
        return self._request(messages, schema, schema_name, max_tokens or self.settings.max_tokens)

    @property
    def sdk(self) -> openai.AsyncOpenAI:
        """The underlying SDK client (Files and Batches endpoints); retries are off on it."""
        return self._oai

    # -- what the server is ---------------------------------------------------------------------

    async def server_kind(self) -> str:
        """What the server is (``GET /models``, asked once; "unknown" when it does not say)."""
        await self._ensure_ready()
        return self.caps.server or "unknown"

    async def _ensure_ready(self) -> None:
        if self._sem is not None:
            return
        if self._probe_lock is None:
            self._probe_lock = asyncio.Lock()
        async with self._probe_lock:
            if self._sem is not None:
                return
            if self._probe:
                try:
                    raw = await self._oai.with_options(timeout=min(10.0, self.settings.timeout_s)) \
                        .models.with_raw_response.list()
                    body = json.loads(raw.http_response.content or b"{}")
                    kind = server_kind(body, dict(raw.headers))
                except (openai.OpenAIError, ValueError):
                    kind = "unknown"
                self.caps.learn_server(kind)
                if self.caps.max_concurrency and self.caps.max_concurrency < self.settings.concurrency:
                    log.warning("provider at %s is %s, which answers %d request(s) at a time; keeping %d in flight "
                                "instead of %d", self.base_url, kind, self.caps.max_concurrency,
                                self.caps.max_concurrency, self.settings.concurrency)
                self.stats.structured_mode_used = self.caps.structured
            self._sem = asyncio.Semaphore(self.concurrency)

    # -- the call --------------------------------------------------------------------------------

    def _check_stop(self) -> None:
        if self._stop is not None:
            raise self._stop

    async def complete(self, messages: list[dict[str, Any]], *, schema: dict[str, Any],
                       schema_name: str = "message", max_tokens: int | None = None) -> Completion:
        self._check_stop()
        await self._ensure_ready()
        t0 = time.perf_counter()
        max_tokens = max_tokens or self.settings.max_tokens
        attempts = 0
        while True:
            shape = self._shape_id()
            body = self._request(messages, schema, schema_name, max_tokens)
            est = estimate_tokens(body["messages"]) + max_tokens
            counter = [0]
            try:
                comp = await self._with_retries(body, est, counter, shape)
            except _Renegotiated:
                attempts += counter[0]
                continue
            except openai.APIStatusError as e:
                attempts += counter[0]
                if _retryable(e):
                    self._transport_failed(e, attempts)
                self._refused(e.status_code, _provider_message(e), e.body, attempts)
            except _NotACompletion as e:
                attempts += counter[0]
                self._refused(e.status, f"something that is not a chat completion ({e.content_type}): "
                                        f"{e.raw[:120].decode('utf-8', 'replace')}", None, attempts)
            except openai.APIConnectionError as e:
                attempts += counter[0]
                self._transport_failed(e, attempts)
            attempts += counter[0]
            break
        self._consecutive_failures = 0
        self._refusal = None
        self.stats.succeeded += 1
        usage = comp.usage
        pt = (usage.prompt_tokens or 0) if usage else 0
        ct = (usage.completion_tokens or 0) if usage else 0
        details = getattr(usage, "prompt_tokens_details", None) if usage else None
        cached = (getattr(details, "cached_tokens", None) or 0) if details else 0
        self.stats.prompt_tokens += pt
        self.stats.completion_tokens += ct
        self.stats.cached_tokens += cached
        choice = comp.choices[0] if comp.choices else None
        msg = choice.message if choice else None
        return Completion(text=msg.content if msg else None,
                          finish_reason=choice.finish_reason if choice else None,
                          refusal=getattr(msg, "refusal", None) if msg else None,
                          prompt_tokens=pt, completion_tokens=ct, cached_tokens=cached, attempts=attempts,
                          model=comp.model or self.model, latency_s=time.perf_counter() - t0)

    def _shape_id(self) -> tuple[str, str, bool]:
        return self.caps.structured, self.caps.token_param, self.caps.send_temperature

    async def _with_retries(self, body: dict[str, Any], est: int, counter: list[int],
                            shape: tuple[str, str, bool]) -> Any:
        retrying = AsyncRetrying(stop=stop_after_attempt(self.settings.max_retries + 1), wait=self._wait,
                                 retry=retry_if_exception(_retryable), reraise=True,
                                 before_sleep=self._before_sleep)
        async for attempt in retrying:
            with attempt:
                counter[0] += 1
                return await self._attempt(body, est, shape)
        raise AssertionError("unreachable")  # pragma: no cover

    def _before_sleep(self, state: Any) -> None:
        self.stats.retries += 1
        exc = state.outcome.exception()
        log.debug("retrying %s in %.2fs (attempt %d of %d)", _describe(exc), state.upcoming_sleep,
                  state.attempt_number + 1, self.settings.max_retries + 1)

    async def _attempt(self, body: dict[str, Any], est: int, shape: tuple[str, str, bool]) -> Any:
        self._check_stop()
        assert self._sem is not None
        async with self._sem:
            self._check_stop()
            if shape != self._shape_id():
                raise _Renegotiated()          # another request renegotiated while this one waited
            t_wait = time.perf_counter()
            charged = await self._budget.acquire(est)
            self.stats.budget_wait_s += time.perf_counter() - t_wait
            self.stats.requests += 1
            try:
                comp, status, headers, raw = await self._transport.post(body)
            except openai.APIStatusError as e:
                self._budget.observe(e.response.headers, charged)
                self._budget.refund(charged)
                if e.status_code == 429:
                    self.stats.rate_limited += 1
                    ra = exc_retry_after(e)
                    if ra:
                        self._budget.pause_for(ra)
                    raise
                param = rejected_param(e.status_code, e.body, e.message)
                if param is not None:
                    if shape != self._shape_id():
                        raise _Renegotiated() from None
                    if self.caps.downgrade(param, e.status_code, _provider_message(e)):
                        self.stats.renegotiated += 1
                        self.stats.structured_mode_used = self.caps.structured
                        raise _Renegotiated() from None
                    raise _Refused(e) from None    # nothing left to try: no retry, to the caller
                if e.status_code >= 500:
                    self.stats.server_errors += 1
                raise
            except openai.APITimeoutError:
                self.stats.timeouts += 1
                raise
            except openai.APIConnectionError:
                self.stats.connection_errors += 1
                raise
            self._budget.observe(headers, charged)
            if comp is None:
                self._budget.refund(charged)
                raise _NotACompletion(status, headers.get("content-type", "no content-type"), raw)
            usage = comp.usage
            if usage is not None:
                self._budget.settle(est, (usage.prompt_tokens or 0) + (usage.completion_tokens or 0), charged)
            return comp

    # -- failures --------------------------------------------------------------------------------

    def _refused(self, status: int, provider_message: str, body: Any, attempts: int) -> None:
        """A refusal that renegotiation could not answer: content (fallback road) or set-up (pending, then stop)."""
        self.stats.rejected += 1
        what = f"HTTP {status} {provider_message}"
        if status != 200 and is_content_rejection(status, body, provider_message):
            raise ProviderRejected(f"provider at {self.base_url} refused the request: {what}", status=status,
                                   provider_message=provider_message)
        key = _same_way(status, provider_message)
        n = self._refusal[1] + 1 if self._refusal and self._refusal[0] == key else 1
        self._refusal = (key, n)
        threshold = 1 if status in (200, 401) else self.settings.misconfig_after
        if n >= threshold:
            if self._stop is None:
                hint = _HINTS.get(status, "check the campaign's llm settings against the provider's documentation")
                self._stop = ProviderMisconfigured(
                    f"provider at {self.base_url} (model {self.model}) refused {n} request(s) in a row the same "
                    f"way: {what[:500].rstrip('.')}. The run is stopped; no member went to fallback because of it",
                    hint=f"{hint}; then re-run the same command (members not yet decided are still pending)")
                log.error("%s", self._stop.message)
            raise self._stop
        log.warning("provider at %s refused a request: %s (the member stays pending)", self.base_url, what[:300])
        raise RequestRejected(f"provider at {self.base_url} refused the request: {what}", status=status,
                              provider_message=provider_message, attempts=attempts)

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
            if self._stop is None:
                self._stop = ProviderUnavailable(
                    f"provider at {self.base_url} failed {n} times in a row (last: {what}); "
                    "the run is paused; re-run the same command to continue")
                log.error("%s", self._stop.message)
            raise self._stop from failure
        log.warning("%s", failure.message)
        raise failure from None


class _Refused(openai.APIStatusError):
    """A refused parameter with no alternative left: not retried, handled as a refusal."""

    def __init__(self, e: openai.APIStatusError) -> None:
        super().__init__(e.message, response=e.response, body=e.body)
        self.status_code = e.status_code


def _retryable(exc: BaseException) -> bool:
    return is_transient(exc) and not isinstance(exc, _Refused)


def _describe(exc: BaseException | None) -> str:
    if isinstance(exc, openai.APITimeoutError):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "connection error"
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}"
    return type(exc).__name__
