"""Which provider failures are worth retrying, and how long to wait before the next try.

The one retry layer of the client (tenacity; the SDK's own retries are off).
Retried: 429, 500/502/503/504, timeouts and connection errors. Never retried:
any other status (400/401/403/404/409/422 ...). The wait honours the
provider's ``retry-after-ms`` / ``Retry-After`` (seconds or an HTTP date) and
otherwise backs off exponentially with jitter. Behind a LiteLLM proxy the
provider's headers arrive renamed (``llm_provider-retry-after``,
``llm_provider-x-ratelimit-*``): ``header`` reads either name.

A refused request (any other status) is either about this request's content
(``is_content_rejection``: context too long, content filter, flagged prompt),
which the decide step treats as a failed attempt, or about the run's set-up,
which leaves the member pending (``client.py``).
"""

from __future__ import annotations

import email.utils
import random
import re
import time
from collections.abc import Mapping

import openai
from tenacity import RetryCallState, wait_exponential_jitter

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
PROXY_PREFIXES = ("", "llm_provider-")          # LiteLLM forwards the provider's headers with this prefix

_CONTENT = re.compile(r"context_length_exceeded|maximum context length|context window|too many tokens|"
                      r"string too long|content_filter|content management policy|content_policy|"
                      r"invalid_prompt|flagged|safety system|usage polic", re.I)


def header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """A response header by name, or as a LiteLLM proxy forwards it (``llm_provider-<name>``)."""
    if not headers:
        return None
    for prefix in PROXY_PREFIXES:
        value = headers.get(prefix + name)
        if value is not None:
            return value
    return None


def is_content_rejection(status: int, body: object, message: str) -> bool:
    """A refusal about this request's content (the member's fault, not the run's)."""
    if status in (401, 403, 404, 429) or status >= 500:
        return False
    err = body.get("error", body) if isinstance(body, dict) else body
    code = str(err.get("code") or "") if isinstance(err, dict) else ""
    return bool(_CONTENT.search(f"{code} {message}"))


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, openai.APIConnectionError):      # includes APITimeoutError
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in RETRY_STATUSES
    return False


def retry_after_s(headers: Mapping[str, str] | None) -> float | None:
    """Seconds the provider asked us to wait, from ``retry-after-ms`` or ``Retry-After``; None if absent."""
    if not headers:
        return None
    ms = header(headers, "retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = header(headers, "retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())


def exc_retry_after(exc: BaseException | None) -> float | None:
    response = getattr(exc, "response", None)
    return retry_after_s(response.headers) if response is not None else None


class ProviderWait:
    """tenacity wait: the provider's Retry-After (plus a little jitter, capped), else exponential backoff."""

    def __init__(self, initial_s: float = 0.5, max_s: float = 30.0, retry_after_cap_s: float = 120.0,
                 rng: random.Random | None = None) -> None:
        try:                                   # tenacity >= 9.1 names it multiplier, older ones initial
            self._backoff = wait_exponential_jitter(multiplier=initial_s, max=max_s, jitter=initial_s)
        except TypeError:
            self._backoff = wait_exponential_jitter(initial=initial_s, max=max_s, jitter=initial_s)
        self._cap = retry_after_cap_s
        self._rng = rng or random.Random()

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        ra = exc_retry_after(exc)
        if ra is not None:
            # never earlier than asked; jitter upward (≤ 10%, ≤ 250 ms) so callers that were
            # refused together do not come back together
            return min(self._cap, ra + self._rng.uniform(0.0, min(0.25, 0.1 * ra + 0.01)))
        return self._backoff(state)
