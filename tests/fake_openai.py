"""A fake OpenAI-compatible HTTP server on loopback, for tests and benchmarks.

Real HTTP (Starlette on uvicorn, in a background thread), OpenAI's response
shapes, and faults on demand::

    with FakeOpenAI(latency_s=0.02) as server:
        client = LLMClient(settings, base_url=server.base_url, api_key=None)
        server.script([{"status": 429, "retry_after": 0.2}, {"status": 503}])   # consumed in order
        server.set_faults(rate_429=0.1, rate_500=0.05)                          # seeded RNG
        server.set_limits(rpm=100, tpm=20_000, window_s=2)                      # 100 requests / 2 s
        server.reject_json_schema = True                                        # 400 on json_schema
        server.responder = lambda body: '{"subject": "..."}'                    # or a spec dict

Endpoints: ``POST /v1/chat/completions``, ``GET /v1/models``, Files
(``POST /v1/files``, ``GET /v1/files[/{id}]``, ``GET /v1/files/{id}/content``)
and Batches (``POST /v1/batches``, ``GET /v1/batches[/{id}]``,
``POST /v1/batches/{id}/cancel``), also under Azure OpenAI's paths
(``/openai/deployments/{dep}/chat/completions``, ``/openai/files``,
``/openai/v1/...``; the key may come as ``api-key``); plus ``POST /_fake/config`` and
``GET /_fake/stats`` to drive a server started as a separate process
(``python -m tests.fake_openai --port 8099 --latency 0.02``).

More faults, as real providers answer::

    server.refuse = {"max_tokens": spec, "response_format:json_schema": spec}   # a request carrying the
                                               # parameter (or that response_format type; "response_format.schema":
                                               # llama.cpp's schema field) gets this answer
    server.fail_http("GET", r"/v1/batches/[^/]+", [502, 503])   # any route, next matching requests
    server.batch_plan.append({"outcome": "expired", "answer": 0.5})   # how the next batch ends (also
                                               # "cancelled"; "failed" with "errors": [...] as errors.data)
    server.batch_queue_limit = 6000            # enqueued input tokens: over it, token_limit_exceeded
    server.seen                                # every HTTP request: method, path, query, headers

A *spec* describes one answer. Script items, fault draws and responders all
return specs (a responder may also return a plain string: the content)::

    {"content": "..."}                         200, message.content (default: from the responder)
    {"refusal": "I can't"}                     200, message.refusal, content null
    {"finish_reason": "length"}                e.g. with truncated content
    {"status": 429, "retry_after": 0.2}        error status; also "retry_after_ms"; retry_after may be
                                               a string (an HTTP date) sent verbatim
    {"status": 400, "message": "..."}          error message in OpenAI's error body; also "param", "code",
                                               "type" (the error body's fields)
    {"headers": {"llm_provider-retry-after": "1"}}   extra response headers (any status)
    {"hang": 5.0}                              sleep this long before answering (past the client timeout)
    {"delay": 0.3}                             extra latency, then the normal answer
    {"prompt_tokens": 10, "completion_tokens": 5, "cached_tokens": 3}   usage overrides
    {"raw_body": "<html>...</html>"}           200 with this body as text/html (not a completion)

A script item without content/refusal/error takes its content from the responder.

Token accounting: ``prompt_tokens`` ≈ characters/3.8 + 3 a message; completion
tokens ≈ characters/4 of the content; ``cached_tokens`` = the tokens of the
first (system) message when that exact system message was seen before. The
rate limiter counts prompt + completion tokens of each admitted request at
its arrival, in a sliding window of ``window_s`` seconds; refused requests are
not counted. Every answer carries ``x-ratelimit-{limit,remaining,reset}-
{requests,tokens}`` while limits are set (reset = time until the window is
empty again).

The built-in responder (``echo_responder``) returns a valid draft for
``contentgen.gates.schema.DRAFT_SCHEMA``: a fixed subject, preheader and body
using ``{first_name}``, and one explanation per product id found in the prompt
in lines like ``product_id: P123`` (first appearance order).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import math
import random
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

Spec = dict[str, Any]
Responder = Callable[[dict[str, Any]], "Spec | str"]

PRODUCT_ID_RE = re.compile(r"product_id:\s*([A-Za-z0-9][A-Za-z0-9_\-.]*)")

_ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 403: "permission_error",
                404: "invalid_request_error", 422: "invalid_request_error", 429: "requests",
                500: "server_error", 502: "server_error", 503: "server_error", 504: "server_error"}
_ERROR_MESSAGES = {400: "Invalid request.", 401: "Incorrect API key provided.",
                   403: "You are not allowed to use this model.", 404: "The model does not exist.",
                   429: "Rate limit reached. Please try again later.", 500: "The server had an error.",
                   502: "Bad gateway.", 503: "The server is overloaded.", 504: "Gateway timeout."}


def echo_responder(body: dict[str, Any]) -> str:
    """A plausible DRAFT_SCHEMA answer built from the product ids in the prompt."""
    text = "\n".join(m.get("content") for m in body.get("messages", []) if isinstance(m.get("content"), str))
    ids = list(dict.fromkeys(PRODUCT_ID_RE.findall(text)))
    draft = {
        "subject": "{first_name}, a few picks chosen for you",
        "preheader": "Based on what you have shopped with us.",
        "body": "Hi {first_name},\n\nWe put together a few picks we think you will like, "
                "based on your recent visits. Take a look when you have a moment.",
        "explanations": [{"product_id": pid, "text": "We recommended this because it fits what you have "
                                                     "shopped before."} for pid in ids],
    }
    return json.dumps(draft)


def _prompt_tokens(messages: list[dict[str, Any]]) -> int:
    chars = sum(len(m["content"]) if isinstance(m.get("content"), str) else len(json.dumps(m.get("content")))
                for m in messages)
    return max(1, round(chars / 3.8)) + 3 * len(messages)


def _fmt_duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 1:
        return f"{int(seconds * 1000)}ms"
    if seconds < 60:
        return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"
    m, s = divmod(seconds, 60)
    return f"{int(m)}m{int(s)}s"


def _public(batch: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in batch.items() if not k.startswith("_")}


def _now_s() -> int:
    return int(time.time())


@dataclass
class RequestRecord:
    t: float                       # time.monotonic() at arrival
    path: str
    body: Any
    status: int = 0                # 0 while being answered
    response_format: Any = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    t_done: float = 0.0            # time.monotonic() when the answer was ready


@dataclass
class _Window:
    window_s: float
    rpm: int | None
    tpm: int | None
    entries: collections.deque = field(default_factory=collections.deque)   # (t, tokens)
    tokens: int = 0

    def expire(self, now: float) -> None:
        cutoff = now - self.window_s
        while self.entries and self.entries[0][0] <= cutoff:
            self.tokens -= self.entries.popleft()[1]

    def admit(self, now: float, tokens: int) -> tuple[bool, float, dict[str, str]]:
        self.expire(now)
        n = len(self.entries)
        ok_r = self.rpm is None or n + 1 <= self.rpm
        ok_t = self.tpm is None or self.tokens + tokens <= self.tpm
        retry = 0.0
        if ok_r and ok_t:
            self.entries.append((now, tokens))
            self.tokens += tokens
        else:
            if not ok_r:
                drop = n + 1 - self.rpm
                retry = max(retry, self.entries[drop - 1][0] + self.window_s - now)
            if not ok_t:
                excess, freed, when = self.tokens + tokens - self.tpm, 0, self.window_s
                for t, tok in self.entries:
                    freed += tok
                    if freed >= excess:
                        when = t + self.window_s - now
                        break
                retry = max(retry, when)
        return ok_r and ok_t, max(0.001, retry), self.headers(now)

    def headers(self, now: float) -> dict[str, str]:
        reset = (self.entries[-1][0] + self.window_s - now) if self.entries else 0.0
        h: dict[str, str] = {}
        if self.rpm is not None:
            h.update({"x-ratelimit-limit-requests": str(self.rpm),
                      "x-ratelimit-remaining-requests": str(max(0, self.rpm - len(self.entries))),
                      "x-ratelimit-reset-requests": _fmt_duration(reset)})
        if self.tpm is not None:
            h.update({"x-ratelimit-limit-tokens": str(self.tpm),
                      "x-ratelimit-remaining-tokens": str(max(0, self.tpm - self.tokens)),
                      "x-ratelimit-reset-tokens": _fmt_duration(reset)})
        return h


class FakeOpenAI:
    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, latency_s: float = 0.0, seed: int = 0,
                 model: str = "fake-model", batch_delay_s: float = 0.2, api_key: str | None = None) -> None:
        self.host, self.port = host, port
        self.model = model
        self.api_key = api_key            # when set, requests must carry "Authorization: Bearer <key>"
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._server: uvicorn.Server | None = None
        self._tasks: set[asyncio.Task] = set()
        api = [
            Route("/chat/completions", self._chat, methods=["POST"]),
            Route("/models", self._models, methods=["GET"]),
            Route("/files", self._file_upload, methods=["POST"]),
            Route("/files", self._file_list, methods=["GET"]),
            Route("/files/{file_id}", self._file_get, methods=["GET"]),
            Route("/files/{file_id}/content", self._file_content, methods=["GET"]),
            Route("/batches", self._batch_create, methods=["POST"]),
            Route("/batches", self._batch_list, methods=["GET"]),
            Route("/batches/{batch_id}", self._batch_get, methods=["GET"]),
            Route("/batches/{batch_id}/cancel", self._batch_cancel, methods=["POST"]),
        ]
        self.app = Starlette(routes=[
            Route("/_fake/config", self._admin_config, methods=["POST"]),
            Route("/_fake/stats", self._admin_stats, methods=["GET"]),
            # Azure OpenAI's URL forms: deployments (chat) with ?api-version, /openai/files..., /openai/v1/...
            Mount("/openai/deployments/{deployment}", routes=api[:1]),
            Mount("/openai/v1", routes=api),
            Mount("/openai", routes=api[1:]),
            Mount("/v1", routes=api),
        ])
        self._app_inner = self.app
        self.app = self._capture_app
        self.reset(latency_s=latency_s, seed=seed, batch_delay_s=batch_delay_s)

    async def _capture_app(self, scope, receive, send) -> None:
        """Every HTTP request is recorded in ``seen``; ``fail_http`` answers matching ones with an error."""
        if scope["type"] == "http":
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            path, method = scope["path"], scope["method"]
            self.seen.append({"method": method, "path": path, "query": scope["query_string"].decode(),
                              "headers": headers})
            for i, (m, pattern, statuses) in enumerate(self._http_faults):
                if m == method and re.fullmatch(pattern, path) and statuses:
                    status = statuses.popleft()
                    await self._error(status)(scope, receive, send)
                    return
        await self._app_inner(scope, receive, send)

    def fail_http(self, method: str, path_regex: str, statuses: list[int]) -> None:
        """Answer the next requests matching ``method`` and ``path_regex`` with these statuses, in order."""
        with self._lock:
            self._http_faults.append((method, path_regex, collections.deque(statuses)))

    # -- configuration (call from the test thread) -------------------------------------------------

    def reset(self, *, latency_s: float = 0.0, seed: int = 0, batch_delay_s: float = 0.2) -> None:
        """Back to a clean server: default responder, no script/faults/limits, empty logs, files, batches."""
        with self._lock:
            self.responder: Responder | None = None
            self.latency_s = latency_s
            self.latency_tail: tuple[float, float] = (0.0, 0.0)  # (share, seconds): that share of answers waits this long
            self.batch_delay_s = batch_delay_s
            self.reject_json_schema = False
            self.refuse: dict[str, Spec] = {}     # "max_tokens", "temperature", "response_format:json_schema"...
            self.seen: list[dict[str, Any]] = []
            self._http_faults: list[tuple[str, str, collections.deque]] = []
            self._script: collections.deque[Spec] = collections.deque()
            self._rng = random.Random(seed)
            self._faults: dict[str, float] = {}
            self.fault_retry_after: float | None = None
            self.fault_hang_s = 30.0
            self._window: _Window | None = None
            self.requests: list[RequestRecord] = []
            self.counts: collections.Counter[int] = collections.Counter()
            self.tokens: collections.Counter[str] = collections.Counter()
            self._seen_system: set[str] = set()
            self.files: dict[str, dict[str, Any]] = {}
            self.file_data: dict[str, bytes] = {}
            self.batches: dict[str, dict[str, Any]] = {}
            self.batch_plan: collections.deque[Spec] = collections.deque()   # per created batch, in order
            self.batch_queue_limit: int | None = None   # enqueued (input) tokens across in-flight batches

    def script(self, specs: list[Spec]) -> None:
        """Queue answers for the next chat requests, consumed in order (before faults and limits)."""
        with self._lock:
            self._script.extend(dict(s) for s in specs)

    @property
    def scripted_left(self) -> int:
        return len(self._script)

    def set_faults(self, *, rate_429: float = 0.0, rate_500: float = 0.0, rate_503: float = 0.0,
                   rate_timeout: float = 0.0, seed: int | None = None, retry_after: float | None = None,
                   hang_s: float = 30.0) -> None:
        """Random faults per chat request from a seeded RNG (``rate_timeout`` hangs ``hang_s``)."""
        with self._lock:
            self._faults = {"429": rate_429, "500": rate_500, "503": rate_503, "timeout": rate_timeout}
            self.fault_retry_after = retry_after
            self.fault_hang_s = hang_s
            if seed is not None:
                self._rng = random.Random(seed)

    def set_limits(self, *, rpm: int | None = None, tpm: int | None = None, window_s: float = 60.0) -> None:
        """Enforce at most ``rpm`` requests and ``tpm`` tokens in any ``window_s``-second window."""
        with self._lock:
            self._window = _Window(window_s, rpm, tpm) if (rpm or tpm) else None

    def status_times(self, status: int = 200) -> list[float]:
        """Arrival times of the chat requests answered with ``status``."""
        return [r.t for r in self.requests if r.status == status]

    def in_flight_average(self, *, trim: float = 0.0) -> float:
        """Time-averaged chat requests in flight between the first and the last arrival (``trim``: leave out
        that share of the arrivals at each end, i.e. the ramp-up and the drain)."""
        done = sorted((r.t, r.t_done) for r in self.requests if r.t_done)
        if len(done) < 2:
            return 0.0
        k = int(len(done) * trim)
        t0, t1 = done[k][0], done[len(done) - 1 - k][0]
        if t1 <= t0:
            return 0.0
        busy = sum(max(0.0, min(b, t1) - max(a, t0)) for a, b in done)
        return busy / (t1 - t0)

    def max_in_flight(self) -> int:
        """The most chat requests this server was answering at the same time."""
        events = sorted([(r.t, 1) for r in self.requests if r.t_done] +
                        [(r.t_done, -1) for r in self.requests if r.t_done])
        peak = cur = 0
        for _, d in events:
            cur += d
            peak = max(peak, cur)
        return peak

    # -- lifecycle ---------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> FakeOpenAI:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off", interface="asgi3",
                                timeout_graceful_shutdown=1, backlog=4096)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name=f"fake-openai:{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fake OpenAI server did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- chat completions --------------------------------------------------------------------------

    def _draw(self, body: dict[str, Any]) -> Spec:
        rf = body.get("response_format") or {}
        for key, spec in self.refuse.items():     # a server that refuses a parameter (its own error shape)
            name, _, value = key.partition(":")
            got = rf.get("type") if name == "response_format" and isinstance(rf, dict) else body.get(name)
            if name == "response_format.schema":
                got = "schema" if isinstance(rf, dict) and "schema" in rf else None
                value = "schema"
            if got is not None and (not value or got == value):
                return dict(spec)
        if self.reject_json_schema and isinstance(rf, dict) and rf.get("type") == "json_schema":
            return {"status": 400, "param": "response_format",
                    "message": "Invalid parameter: 'response_format' of type 'json_schema' is not supported "
                               "with this model."}
        with self._lock:
            if self._script:
                return self._script.popleft()
            x = self._rng.random()
            for kind, rate in self._faults.items():
                if x < rate:
                    if kind == "timeout":
                        return {"hang": self.fault_hang_s}
                    spec: Spec = {"status": int(kind)}
                    if kind == "429" and self.fault_retry_after is not None:
                        spec["retry_after"] = self.fault_retry_after
                    return spec
                x -= rate
        return {}

    def _resolve(self, body: dict[str, Any], spec: Spec) -> Spec:
        """Fill in content from the responder unless the spec already decides the answer."""
        if spec.get("status", 200) >= 400 or "content" in spec or "refusal" in spec or "raw_body" in spec:
            return spec
        got = (self.responder or echo_responder)(body)
        base: Spec = {"content": got} if isinstance(got, str) else dict(got)
        return {**base, **spec}

    def _completion(self, body: dict[str, Any], spec: Spec) -> dict[str, Any]:
        messages = body.get("messages") or []
        pt = spec.get("prompt_tokens", _prompt_tokens(messages))
        content, refusal = spec.get("content"), spec.get("refusal")
        if refusal is not None and "content" not in spec:
            content = None
        ct = spec.get("completion_tokens", max(1, len(content or refusal or "") // 4))
        cached = spec.get("cached_tokens")
        if cached is None:
            cached = 0
            first = messages[0] if messages else {}
            if first.get("role") == "system" and isinstance(first.get("content"), str):
                with self._lock:
                    if first["content"] in self._seen_system:
                        cached = min(pt, _prompt_tokens([first]))
                    else:
                        self._seen_system.add(first["content"])
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion", "created": _now_s(),
            "model": body.get("model") or self.model, "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "logprobs": None,
                         "finish_reason": spec.get("finish_reason", "stop"),
                         "message": {"role": "assistant", "content": content, "refusal": refusal}}],
            "usage": {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct,
                      "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
                      "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                                    "accepted_prediction_tokens": 0,
                                                    "rejected_prediction_tokens": 0}},
        }

    @staticmethod
    def _error(status: int, message: str | None = None, *, param: str | None = None,
               headers: dict[str, str] | None = None, code: str | None = None,
               error_type: str | None = None) -> JSONResponse:
        code = code or {429: "rate_limit_exceeded", 401: "invalid_api_key", 404: "model_not_found"}.get(status)
        return JSONResponse({"error": {"message": message or _ERROR_MESSAGES.get(status, f"HTTP {status}"),
                                       "type": error_type or _ERROR_TYPES.get(status, "invalid_request_error"),
                                       "param": param, "code": code}},
                            status_code=status, headers=headers)

    def _authorized(self, request: Request) -> bool:
        return (self.api_key is None or request.headers.get("authorization") == f"Bearer {self.api_key}"
                or request.headers.get("api-key") == self.api_key)

    async def _chat(self, request: Request) -> Response:
        now = time.monotonic()
        try:
            body = await request.json()
        except ValueError:
            body = None
        rec = RequestRecord(t=now, path=request.url.path, body=body,
                            response_format=body.get("response_format") if isinstance(body, dict) else None)
        # a reset() while this request sleeps must not leak it into the next test's logs
        requests, counts, token_counts = self.requests, self.counts, self.tokens
        requests.append(rec)

        def finish(resp: Response) -> Response:
            rec.status = resp.status_code
            rec.t_done = time.monotonic()
            counts[resp.status_code] += 1
            return resp

        if not self._authorized(request):
            return finish(self._error(401))
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return finish(self._error(400, "'messages' is a required property", param="messages"))
        spec = self._resolve(body, self._draw(body))
        headers: dict[str, str] = {"x-request-id": f"req_{uuid.uuid4().hex[:16]}", **spec.get("headers", {})}
        status = int(spec.get("status", 200))
        payload = self._completion(body, spec) if status < 400 else None
        window = self._window
        if window is not None and status < 400:
            tokens = payload["usage"]["total_tokens"]
            with self._lock:
                ok, retry, rl_headers = window.admit(now, tokens)
            headers.update(rl_headers)
            if not ok:
                headers["retry-after-ms"] = str(max(1, math.ceil(retry * 1000)))
                headers["retry-after"] = str(max(1, math.ceil(retry)))
                return finish(self._error(429, f"Rate limit reached (window {window.window_s:g}s). "
                                               f"Please try again in {retry:.3f}s.", headers=headers))
        elif window is not None:
            with self._lock:
                headers.update(window.headers(now))
        wait = self.latency_s + float(spec.get("delay", 0)) + float(spec.get("hang", 0))
        share, tail_s = self.latency_tail
        if share and self._rng.random() < share:
            wait = max(wait, tail_s)
        if wait > 0:
            await asyncio.sleep(wait)
        if status >= 400:
            if "retry_after" in spec:
                headers["retry-after"] = str(spec["retry_after"])
            if "retry_after_ms" in spec:
                headers["retry-after-ms"] = str(spec["retry_after_ms"])
            return finish(self._error(status, spec.get("message"), param=spec.get("param"), headers=headers,
                                      code=spec.get("code"), error_type=spec.get("type")))
        if "raw_body" in spec:
            return finish(Response(str(spec["raw_body"]), media_type="text/html", headers=headers))
        usage = payload["usage"]
        rec.prompt_tokens, rec.completion_tokens = usage["prompt_tokens"], usage["completion_tokens"]
        token_counts["prompt"] += usage["prompt_tokens"]
        token_counts["completion"] += usage["completion_tokens"]
        token_counts["cached"] += usage["prompt_tokens_details"]["cached_tokens"]
        return finish(JSONResponse(payload, headers=headers))

    async def _models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [
            {"id": self.model, "object": "model", "created": 0, "owned_by": "fake-openai"}]})

    # -- files -------------------------------------------------------------------------------------

    def _new_file(self, data: bytes, filename: str, purpose: str) -> dict[str, Any]:
        fid = f"file-{uuid.uuid4().hex[:24]}"
        meta = {"id": fid, "object": "file", "bytes": len(data), "created_at": _now_s(), "filename": filename,
                "purpose": purpose, "status": "processed", "expires_at": None, "status_details": None}
        with self._lock:
            self.files[fid], self.file_data[fid] = meta, data
        return meta

    async def _file_upload(self, request: Request) -> Response:
        if not self._authorized(request):
            return self._error(401)
        form = await request.form()
        upload, purpose = form.get("file"), form.get("purpose")
        if upload is None or isinstance(upload, str) or not purpose:
            return self._error(400, "multipart fields 'file' and 'purpose' are required")
        data = await upload.read()
        return JSONResponse(self._new_file(data, upload.filename or "upload.jsonl", str(purpose)))

    async def _file_list(self, request: Request) -> Response:
        purpose = request.query_params.get("purpose")
        data = [f for f in self.files.values() if purpose is None or f["purpose"] == purpose]
        return JSONResponse({"object": "list", "data": data, "has_more": False})

    async def _file_get(self, request: Request) -> Response:
        meta = self.files.get(request.path_params["file_id"])
        return JSONResponse(meta) if meta else self._error(404, "No such File object")

    async def _file_content(self, request: Request) -> Response:
        data = self.file_data.get(request.path_params["file_id"])
        if data is None:
            return self._error(404, "No such File object")
        return Response(data, media_type="application/octet-stream")

    # -- batches -----------------------------------------------------------------------------------

    async def _batch_create(self, request: Request) -> Response:
        if not self._authorized(request):
            return self._error(401)
        try:
            body = await request.json()
        except ValueError:
            return self._error(400, "body must be JSON")
        fid = body.get("input_file_id")
        if fid not in self.file_data:
            return self._error(404, f"No such File object: {fid}")
        if body.get("endpoint") != "/v1/chat/completions":
            return self._error(400, "this fake serves batches for /v1/chat/completions only", param="endpoint")
        now = _now_s()
        batch = {"id": f"batch_{uuid.uuid4().hex[:24]}", "object": "batch", "endpoint": body["endpoint"],
                 "errors": None, "input_file_id": fid, "completion_window": body.get("completion_window", "24h"),
                 "status": "validating", "output_file_id": None, "error_file_id": None, "created_at": now,
                 "in_progress_at": None, "expires_at": now + 86400, "finalizing_at": None, "completed_at": None,
                 "failed_at": None, "expired_at": None, "cancelling_at": None, "cancelled_at": None,
                 "request_counts": {"total": 0, "completed": 0, "failed": 0},
                 "metadata": body.get("metadata")}
        self.batches[batch["id"]] = batch
        batch = dict(batch)
        task = asyncio.get_running_loop().create_task(self._run_batch(self.batches[batch["id"]]))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return JSONResponse(batch)

    def _batch_tokens(self, batch: dict[str, Any]) -> int:
        total = 0
        for line in self.file_data[batch["input_file_id"]].decode("utf-8", "replace").splitlines():
            try:
                total += _prompt_tokens(json.loads(line)["body"]["messages"])
            except (ValueError, KeyError, TypeError):
                pass
        return total

    async def _run_batch(self, batch: dict[str, Any]) -> None:
        """Run a batch as the Batch API does, or as ``batch_plan`` says this one ends::

            {"outcome": "expired", "answer": 0.5}     the first half answered, the rest batch_expired
            {"outcome": "cancelled", "answer": 0.2}   likewise, batch_cancelled
            {"outcome": "failed", "errors": [{"code": ..., "message": ..., "line": None}]}
        and with ``batch_queue_limit`` a batch that would take the enqueued tokens over it fails
        validation with ``token_limit_exceeded`` (the API's message, with the limit in it).
        """
        plan = self.batch_plan.popleft() if self.batch_plan else {}
        tokens = self._batch_tokens(batch)
        batch["_tokens"] = tokens
        if self.batch_queue_limit is not None:
            queued = sum(b.get("_tokens", 0) for b in self.batches.values()
                         if b is not batch and b["status"] in ("validating", "in_progress", "finalizing"))
            if queued + tokens > self.batch_queue_limit:
                plan = {"outcome": "failed", "errors": [{
                    "code": "token_limit_exceeded", "param": None, "line": None,
                    "message": f"Enqueued token limit reached for {self.model} in organization org-fake. "
                               f"Limit: {self.batch_queue_limit:,} enqueued tokens. Please try again once some "
                               "in_progress batches have been completed."}]}
        if plan.get("outcome") == "failed":
            await asyncio.sleep(min(0.05, self.batch_delay_s))
            batch.update(status="failed", failed_at=_now_s(), errors={"object": "list", "data": plan["errors"]})
            return
        lines = self.file_data[batch["input_file_id"]].decode("utf-8", "replace").splitlines()
        items, errors = [], []
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                if not isinstance(item, dict) or "custom_id" not in item or not isinstance(item.get("body"), dict):
                    raise ValueError("each line needs custom_id, method, url and body")
                items.append(item)
            except ValueError as e:
                errors.append({"code": "invalid_request", "message": f"line {n}: {e}", "param": None, "line": n})
        ids = [i["custom_id"] for i in items]
        if len(set(ids)) != len(ids):
            errors.append({"code": "duplicate_custom_id", "message": "custom_id values must be unique",
                           "param": "custom_id", "line": None})
        if errors or not items:
            batch.update(status="failed", failed_at=_now_s(),
                         errors={"object": "list", "data": errors or [
                             {"code": "empty_file", "message": "the input file has no requests",
                              "param": None, "line": None}]})
            return
        batch.update(status="in_progress", in_progress_at=_now_s())
        batch["request_counts"]["total"] = len(items)
        await asyncio.sleep(self.batch_delay_s)
        if batch["status"] != "in_progress":                     # cancelled meanwhile
            return
        out, err = [], []
        ending = plan.get("outcome")
        n_answer = round(len(items) * float(plan.get("answer", 1.0))) if ending else len(items)
        for n, item in enumerate(items):
            rid = f"batch_req_{uuid.uuid4().hex[:24]}"
            if n >= n_answer:
                code = f"batch_{ending}"
                msg = ("This request could not be executed before the completion window expired."
                       if ending == "expired" else "The batch was cancelled before this request executed.")
                err.append({"id": rid, "custom_id": item["custom_id"], "response": None,
                            "error": {"code": code, "message": msg}})
                continue
            if item.get("url") != batch["endpoint"]:
                err.append({"id": rid, "custom_id": item["custom_id"], "response": None,
                            "error": {"code": "invalid_url", "message": f"url must be {batch['endpoint']}"}})
                continue
            spec = self._resolve(item["body"], {})
            status = int(spec.get("status", 200))
            if status >= 400:
                body = {"error": {"message": spec.get("message") or _ERROR_MESSAGES.get(status, ""),
                                  "type": _ERROR_TYPES.get(status, "invalid_request_error"),
                                  "param": None, "code": None}}
                err.append({"id": rid, "custom_id": item["custom_id"],
                            "response": {"status_code": status, "request_id": rid, "body": body}, "error": None})
            else:
                out.append({"id": rid, "custom_id": item["custom_id"], "error": None,
                            "response": {"status_code": 200, "request_id": rid,
                                         "body": self._completion(item["body"], spec)}})
        batch.update(status="finalizing", finalizing_at=_now_s())

        def jsonl(rows: list[dict[str, Any]]) -> bytes:
            return "".join(json.dumps(r) + "\n" for r in rows).encode()

        if out:
            batch["output_file_id"] = self._new_file(jsonl(out), f"{batch['id']}_output.jsonl", "batch_output")["id"]
        if err:
            batch["error_file_id"] = self._new_file(jsonl(err), f"{batch['id']}_error.jsonl", "batch_output")["id"]
        batch["request_counts"].update(completed=len(out), failed=len(err))
        if ending in ("expired", "cancelled"):
            batch.update({"status": ending, f"{ending}_at": _now_s()})
        else:
            batch.update(status="completed", completed_at=_now_s())

    async def _batch_get(self, request: Request) -> Response:
        batch = self.batches.get(request.path_params["batch_id"])
        return JSONResponse(_public(batch)) if batch else self._error(404, "No such Batch object")

    async def _batch_list(self, request: Request) -> Response:
        data = sorted(self.batches.values(), key=lambda b: b["created_at"], reverse=True)
        data = [_public(b) for b in data]
        return JSONResponse({"object": "list", "data": data, "has_more": False,
                             "first_id": data[0]["id"] if data else None,
                             "last_id": data[-1]["id"] if data else None})

    async def _batch_cancel(self, request: Request) -> Response:
        batch = self.batches.get(request.path_params["batch_id"])
        if batch is None:
            return self._error(404, "No such Batch object")
        if batch["status"] in ("validating", "in_progress"):
            batch.update(status="cancelled", cancelling_at=_now_s(), cancelled_at=_now_s())
        elif batch["status"] not in ("cancelling", "cancelled"):
            return self._error(409, f"cannot cancel a batch that is {batch['status']}")
        return JSONResponse(batch)

    # -- admin (for a server in another process) ---------------------------------------------------

    async def _admin_config(self, request: Request) -> Response:
        cfg = await request.json()
        if cfg.get("reset"):
            responder = self.responder
            self.reset(latency_s=cfg.get("latency_s", 0.0), seed=cfg.get("seed", 0))
            self.responder = responder  # the one chosen at start (--responder) stays
        if "latency_s" in cfg:
            self.latency_s = float(cfg["latency_s"])
        if "latency_tail" in cfg:
            self.latency_tail = tuple(cfg["latency_tail"])
        if "limits" in cfg:
            self.set_limits(**(cfg["limits"] or {}))
        if "faults" in cfg:
            self.set_faults(**(cfg["faults"] or {}))
        if "script" in cfg:
            self.script(cfg["script"])
        if "reject_json_schema" in cfg:
            self.reject_json_schema = bool(cfg["reject_json_schema"])
        return JSONResponse({"ok": True})

    async def _admin_stats(self, request: Request) -> Response:
        ok_times = self.status_times(200)
        return JSONResponse({"requests": len(self.requests), "counts": {str(k): v for k, v in self.counts.items()},
                             "tokens": dict(self.tokens),
                             "first_200_t": min(ok_times) if ok_times else None,
                             "last_200_t": max(ok_times) if ok_times else None,
                             "in_flight_avg": self.in_flight_average(),
                             "in_flight_avg_steady": self.in_flight_average(trim=0.05),
                             "max_in_flight": self.max_in_flight()})


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m tests.fake_openai", description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8099)
    ap.add_argument("--latency", type=float, default=0.0, help="seconds added to every chat answer")
    ap.add_argument("--latency-tail", nargs=2, type=float, metavar=("SHARE", "SECONDS"), default=(0.0, 0.0),
                    help="that share of answers waits SECONDS instead (e.g. 0.05 4)")
    ap.add_argument("--rpm", type=int, default=None, help="requests allowed per window")
    ap.add_argument("--tpm", type=int, default=None, help="tokens allowed per window")
    ap.add_argument("--window-s", type=float, default=60.0, help="rate-limit window (default 60 s)")
    ap.add_argument("--rate-429", type=float, default=0.0)
    ap.add_argument("--rate-500", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--responder", choices=["echo", "copywriter", "bad_then_good", "always_bad"], default="echo",
                    help="how answers are written (tests/responders.py); echo: the built-in responder")
    args = ap.parse_args(argv)
    fake = FakeOpenAI(host=args.host, port=args.port, latency_s=args.latency, seed=args.seed)
    fake.latency_tail = tuple(args.latency_tail)
    if args.responder != "echo":
        from tests import responders

        fake.responder = getattr(responders, args.responder)
    fake.set_limits(rpm=args.rpm, tpm=args.tpm, window_s=args.window_s)
    fake.set_faults(rate_429=args.rate_429, rate_500=args.rate_500)
    print(f"fake OpenAI server on http://{args.host}:{args.port}/v1", flush=True)
    uvicorn.run(fake.app, host=args.host, port=args.port, log_level="warning", access_log=False, interface="asgi3",
                lifespan="off", backlog=4096)


if __name__ == "__main__":
    main()
