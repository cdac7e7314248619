"""The hot call: one chat completion over HTTP, answered as the SDK would answer it.

Two transports post the same body and return ``(ChatCompletion | None, status, headers, raw)``:

* ``SdkTransport``: ``AsyncOpenAI.chat.completions.with_raw_response.create`` on the
  SDK's aiohttp transport (``DefaultAioHttpClient``), pool sized to the concurrency;
* ``DirectTransport`` (default): one ``aiohttp`` session posts the JSON body and
  validates the answer into the SDK's ``ChatCompletion``; errors are the SDK's own
  exception classes (``client._make_status_error``: ``RateLimitError``,
  ``BadRequestError``..., ``APITimeoutError``, ``APIConnectionError``), so the
  retry layer and every caller see exactly what the SDK would raise. It skips
  the SDK's per-request option building, which costs several times the HTTP
  work at hundreds of requests in flight (benchmarks/RESULTS.md, LLM transport).

Both send no retries of their own.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Mapping
from typing import Any

import aiohttp
import httpx2
import openai
from openai.types.chat import ChatCompletion

from .endpoints import Endpoint, chat_url_with_query

STANDARD_PARAMS = frozenset({"model", "messages", "temperature", "max_tokens", "max_completion_tokens",
                             "response_format", "seed", "top_p", "stop", "n", "user"})


def _status_error(sdk: openai.AsyncOpenAI, url: str, status: int, headers: Mapping[str, str],
                  raw: bytes) -> openai.APIStatusError:
    request = httpx2.Request("POST", url)
    response = httpx2.Response(status, headers=list(headers.items()), content=raw, request=request)
    try:
        body: Any = json.loads(raw) if raw else None
    except ValueError:
        body = raw.decode("utf-8", "replace")
    return sdk._make_status_error(f"Error code: {status} - {body}", body=body, response=response)


class DirectTransport:
    name = "direct"

    def __init__(self, ep: Endpoint, api_key: str | None, sdk: openai.AsyncOpenAI, *, concurrency: int,
                 timeout_s: float) -> None:
        self.url = chat_url_with_query(ep)
        self.headers = {"Content-Type": "application/json", "Accept": "application/json",
                        **ep.auth_headers(api_key)}
        # what the SDK would send besides the key (OPENAI_ORG_ID / OPENAI_PROJECT_ID)
        if getattr(sdk, "organization", None):
            self.headers["OpenAI-Organization"] = sdk.organization
        if getattr(sdk, "project", None):
            self.headers["OpenAI-Project"] = sdk.project
        self.sdk = sdk
        self.limit = max(1, concurrency)
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.limit, limit_per_host=0, keepalive_timeout=30,
                                             enable_cleanup_closed=True)
            # HTTP(S)_PROXY / NO_PROXY apply as they do to the SDK; without them aiohttp would still look
            # them up (and .netrc, in a thread) on every request, so trust_env only when one is set
            self._session = aiohttp.ClientSession(connector=connector, timeout=self.timeout,
                                                  trust_env=bool(urllib.request.getproxies()),
                                                  headers=self.headers, json_serialize=json.dumps)
        return self._session

    async def post(self, body: dict[str, Any]) -> tuple[Any, int, Mapping[str, str], bytes]:
        session = self._get_session()
        data = json.dumps(body, ensure_ascii=False).encode()
        try:
            async with session.post(self.url, data=data) as resp:
                raw = await resp.read()
                status, headers = resp.status, resp.headers
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError):
            raise openai.APITimeoutError(request=httpx2.Request("POST", self.url)) from None
        except aiohttp.ClientError as e:
            raise openai.APIConnectionError(message=f"Connection error: {type(e).__name__}",
                                            request=httpx2.Request("POST", self.url)) from None
        if status >= 400:
            raise _status_error(self.sdk, self.url, status, headers, raw)
        try:
            parsed = json.loads(raw)
            comp = ChatCompletion.model_validate(parsed) if isinstance(parsed, dict) and "choices" in parsed \
                else None
        except ValueError:
            comp = None
        return comp, status, headers, raw

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


class SdkTransport:
    name = "sdk"

    def __init__(self, sdk: openai.AsyncOpenAI, ep: Endpoint) -> None:
        self.sdk = sdk
        self.ep = ep

    async def post(self, body: dict[str, Any]) -> tuple[Any, int, Mapping[str, str], bytes]:
        kwargs = {k: v for k, v in body.items() if k in STANDARD_PARAMS}
        extra = {k: v for k, v in body.items() if k not in STANDARD_PARAMS}
        if extra:
            kwargs["extra_body"] = extra
        if self.ep.kind == "azure" and self.ep.deployment:
            kwargs["model"] = self.ep.deployment          # the SDK routes /deployments/{model}/...
        raw = await self.sdk.chat.completions.with_raw_response.create(**kwargs)
        comp = raw.parse()
        if asyncio.iscoroutine(comp):
            comp = await comp
        return (comp if isinstance(comp, ChatCompletion) else None), raw.status_code, raw.headers, b""

    async def aclose(self) -> None:
        pass
