"""The embedded model's HTTP server: llama.cpp behind ``/v1/chat/completions`` on loopback.

``python -m contentgen.llm.local_server --model PATH.gguf --port N`` (``local.py``
starts it). It serves the same OpenAI chat-completions shape as
``llama_cpp.server`` (and the same chat templates and JSON grammars, through
llama-cpp-python's own chat handlers; no streaming), and adds what a small, busy machine
needs so that a run always finishes:

* **one generation at a time**: requests queue on a lock; a request whose
  client went away while it waited is dropped without starting;
* **bounded by tokens**: ``max_tokens`` (capped at ``--max-tokens``) ends a
  generation; a wall-clock ``--deadline-s`` is the safety net: the server then
  answers with what was written so far and ``finish_reason: "length"`` (the
  schema gate judges it), so the client's timeout is never what ends a request;
* **really cancelled**: a client that disconnects (a client timeout, a
  cancelled run) stops its generation at the next token, so a retry never waits
  behind abandoned work. ``llama_cpp.server`` keeps generating in that case.

``GET /contentgen/stats`` counts served, cancelled, dropped and deadline-stopped
requests (the tests and the demo benchmark read it).
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

#: Request keys passed on to llama-cpp-python's chat handler (others, like n or user, are ignored).
_PASSED = ("temperature", "top_p", "stop", "seed", "presence_penalty", "frequency_penalty")

SHUTDOWN = threading.Event()  # set on SIGTERM/SIGINT: every generation stops at its next token


@dataclass
class Stats:
    served: int = 0             # answered (completed, or stopped by the deadline)
    cancelled: int = 0          # stopped mid-generation because the client went away
    dropped: int = 0            # client gone before its turn: never started
    deadline_stops: int = 0     # stopped by --deadline-s (answered with finish_reason "length")
    busy: bool = False
    completion_tokens: int = 0


class Stopper:
    """A llama-cpp-python stopping criterion: True once the request is cancelled or past its deadline.

    Checked by ``Llama.generate`` after every sampled token, so a stop takes effect within one token.
    """

    def __init__(self, deadline: float | None) -> None:
        self.deadline = deadline
        self.cancelled = threading.Event()
        self.reason = ""
        self.tokens = 0

    def cancel(self) -> None:
        self.cancelled.set()

    def __call__(self, input_ids: Any, logits: Any) -> bool:
        self.tokens += 1
        if self.reason:
            return True
        if self.cancelled.is_set() or SHUTDOWN.is_set():
            self.reason = "cancelled"
        elif self.deadline is not None and time.monotonic() >= self.deadline:
            self.reason = "deadline"
        return bool(self.reason)


class _Bounded:
    """The Llama object as the chat handler sees it, with our stopping criterion added to every completion."""

    def __init__(self, llama: Any, stopper: Stopper) -> None:
        self._llama = llama
        self._stopper = stopper

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llama, name)

    def create_completion(self, *args: Any, **kwargs: Any) -> Any:
        from llama_cpp import StoppingCriteriaList

        theirs = kwargs.get("stopping_criteria")
        kwargs["stopping_criteria"] = StoppingCriteriaList([*(theirs or []), self._stopper])
        return self._llama.create_completion(*args, **kwargs)


def response_format(value: Any) -> dict[str, Any] | None:
    """OpenAI's ``json_schema`` format becomes llama-cpp-python's ``json_object`` + schema (same grammar)."""
    if not isinstance(value, dict):
        return None
    if value.get("type") == "json_schema":
        schema = (value.get("json_schema") or {}).get("schema")
        return {"type": "json_object", **({"schema": schema} if schema else {})}
    if value.get("type") == "json_object":
        return value
    return None


class Engine:
    """One llama.cpp model; ``generate`` runs in the caller's thread, one at a time (``lock``)."""

    def __init__(self, llama: Any, alias: str, *, deadline_s: float | None, max_tokens: int) -> None:
        self.llama = llama
        self.alias = alias
        self.deadline_s = deadline_s
        self.max_tokens = max_tokens
        self.stats = Stats()
        self.lock = asyncio.Lock()

    def kwargs_for(self, body: dict[str, Any]) -> dict[str, Any]:
        kw = {k: body[k] for k in _PASSED if body.get(k) is not None}
        asked = body.get("max_completion_tokens") or body.get("max_tokens")
        kw["max_tokens"] = min(int(asked), self.max_tokens) if asked else self.max_tokens
        fmt = response_format(body.get("response_format"))
        if fmt:
            kw["response_format"] = fmt
        if isinstance(body.get("logit_bias"), dict):
            kw["logit_bias"] = {int(k): float(v) for k, v in body["logit_bias"].items()}
        return kw

    def generate(self, messages: list[dict[str, Any]], kw: dict[str, Any], stopper: Stopper) -> dict[str, Any]:
        from llama_cpp import llama_chat_format

        ll = self.llama
        handler = (ll.chat_handler or getattr(ll, "_chat_handlers", {}).get(ll.chat_format)
                   or llama_chat_format.get_chat_completion_handler(ll.chat_format))
        out = handler(llama=_Bounded(ll, stopper), messages=messages, stream=False, **kw)
        out["model"] = self.alias
        if stopper.reason == "deadline":
            out["choices"][0]["finish_reason"] = "length"
        return out


def _error(status: int, message: str, kind: str = "invalid_request_error"):
    from starlette.responses import JSONResponse

    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status_code=status)


def create_app(engine: Engine):
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    async def models(request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": engine.alias, "object": "model",
                                                         "created": 0, "owned_by": "contentgen"}]})

    async def stats(request: Request) -> Response:
        return JSONResponse(asdict(engine.stats))

    async def chat(request: Request) -> Response:
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            return _error(400, "the request body is not valid JSON")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
            return _error(400, "'messages' must be a non-empty list")
        if body.get("stream"):
            return _error(400, "this server does not stream; send stream: false")
        try:
            kw = engine.kwargs_for(body)
        except (TypeError, ValueError) as e:
            return _error(400, f"bad parameter: {e}")
        async with engine.lock:
            if await request.is_disconnected():
                engine.stats.dropped += 1
                return Response(status_code=499)
            return await _run(request, body["messages"], kw)

    async def _run(request: Request, messages: list[dict[str, Any]], kw: dict[str, Any]) -> Response:
        stopper = Stopper(time.monotonic() + engine.deadline_s if engine.deadline_s else None)
        loop = asyncio.get_running_loop()
        result: dict[str, Any] = {}

        def work() -> None:
            try:
                result["ok"] = engine.generate(messages, kw, stopper)
            except Exception as e:  # a bad request the model cannot serve (context too long, bad grammar)
                result["error"] = str(e) or type(e).__name__
            finally:
                loop.call_soon_threadsafe(done.set)

        done = asyncio.Event()
        engine.stats.busy = True
        threading.Thread(target=work, name="llama-generate", daemon=True).start()
        try:
            while not done.is_set():
                try:
                    await asyncio.wait_for(done.wait(), timeout=0.2)
                except asyncio.TimeoutError:
                    if await request.is_disconnected():
                        stopper.cancel()
            # the generation has stopped here in every case: the next request starts on a free model
        finally:
            engine.stats.busy = False
        engine.stats.completion_tokens += stopper.tokens
        if stopper.reason == "cancelled":
            engine.stats.cancelled += 1
            return Response(status_code=499)
        if "error" in result:
            return _error(400, result["error"])
        engine.stats.served += 1
        engine.stats.deadline_stops += stopper.reason == "deadline"
        out = result["ok"]
        out.setdefault("id", f"chatcmpl-{uuid.uuid4().hex[:24]}")
        return JSONResponse(out)

    return Starlette(routes=[
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/contentgen/stats", stats, methods=["GET"]),
    ])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m contentgen.llm.local_server", description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="path of a GGUF file")
    ap.add_argument("--alias", default="local", help="model name in answers and /v1/models")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--n-ctx", type=int, default=2048)
    ap.add_argument("--threads", type=int, default=1, help="threads for generating tokens")
    ap.add_argument("--threads-batch", type=int, default=1, help="threads for reading the prompt")
    ap.add_argument("--deadline-s", type=float, default=0, help="wall-clock limit of one generation (0: none)")
    ap.add_argument("--max-tokens", type=int, default=512, help="upper bound of max_tokens")
    args = ap.parse_args(argv)

    import uvicorn
    from llama_cpp import Llama

    llama = Llama(model_path=args.model, n_ctx=args.n_ctx, n_threads=args.threads,
                  n_threads_batch=args.threads_batch, verbose=False)
    engine = Engine(llama, args.alias, deadline_s=args.deadline_s or None, max_tokens=args.max_tokens)

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:  # stop the running generation, then exit
            SHUTDOWN.set()
            super().handle_exit(sig, frame)

    config = uvicorn.Config(create_app(engine), host=args.host, port=args.port, log_level="warning",
                            timeout_graceful_shutdown=2)
    Server(config).run()


if __name__ == "__main__":
    main()


__all__ = ["Engine", "Stats", "Stopper", "create_app", "main", "response_format"]
