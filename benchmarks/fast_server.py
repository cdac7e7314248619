"""A fast OpenAI-compatible chat server for transport benchmarks: raw asyncio (uvloop when installed),
HTTP/1.1 keep-alive, one canned chat completion for every POST, ``GET /v1/models`` for the client's probe.

It does the least a server can do, so that what a benchmark measures is the client.
``python benchmarks/fast_server.py PORT``
"""

from __future__ import annotations

import asyncio
import json
import sys

BODY = json.dumps({
    "id": "chatcmpl-fast", "object": "chat.completion", "created": 0, "model": "fake-model",
    "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                 "message": {"role": "assistant", "refusal": None, "content": json.dumps({
                     "subject": "{first_name}, a few picks", "preheader": "Chosen for you.",
                     "body": "Hi {first_name}, a few picks we think you will like.",
                     "explanations": [{"product_id": "P1", "text": "It fits what you shopped before."}]})}}],
    "usage": {"prompt_tokens": 220, "completion_tokens": 60, "total_tokens": 280,
              "prompt_tokens_details": {"cached_tokens": 0}},
}).encode()
MODELS = json.dumps({"object": "list", "data": [{"id": "fake-model", "object": "model", "owned_by": "fast"}]}).encode()


def _response(body: bytes) -> bytes:
    return (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: " + str(len(body)).encode()
            + b"\r\n\r\n" + body)


CHAT, LIST = _response(BODY), _response(MODELS)


class Http(asyncio.Protocol):
    def connection_made(self, transport):  # type: ignore[override]
        self.t = transport
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].lower()
            i = head.find(b"content-length:")
            n = int(head[i + 15:head.find(b"\r\n", i) if head.find(b"\r\n", i) > 0 else None]) if i >= 0 else 0
            if len(self.buf) < end + 4 + n:
                return
            self.buf = self.buf[end + 4 + n:]
            self.t.write(LIST if head.startswith(b"get") else CHAT)


def main() -> None:
    try:
        import uvloop  # type: ignore[import-not-found]
        uvloop.install()
    except ImportError:
        pass
    port = int(sys.argv[1])

    async def serve() -> None:
        server = await asyncio.get_running_loop().create_server(Http, "127.0.0.1", port, backlog=4096)
        print(f"fast server on http://127.0.0.1:{port}/v1", flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
