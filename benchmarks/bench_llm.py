"""Benchmark the LLM client against the fake OpenAI server (started as a subprocess).

(a) overhead: N requests through ``LLMClient`` vs a raw ``AsyncOpenAI`` loop
    (``asyncio.gather`` + semaphore, ``max_retries=0``) at the same concurrency;
    target: client throughput ≥ 0.8 × raw.
(b) budgets: against the server enforcing RPM (then TPM) on a scaled sliding
    window, the share of the limit used and the share of 429 answers;
    targets: ≥ 90 % used, < 1 % 429s.

The server runs in its own process (``python -m tests.fake_openai``) so that it
does not share the client's event loop or GIL. Usage::

    .venv/bin/python benchmarks/bench_llm.py               # writes benchmarks/RESULTS.md
    .venv/bin/python benchmarks/bench_llm.py --no-write --n 500
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import openai

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from contentgen.config import LLMSettings  # noqa: E402
from contentgen.gates.schema import DRAFT_SCHEMA  # noqa: E402
from contentgen.llm.client import LLMClient  # noqa: E402

SYSTEM = ("You write short, warm loyalty emails for AthenaPlus members. Write {first_name} where the name goes. "
          "Return one JSON object with subject, preheader, body and explanations.")


def messages(i: int) -> list[dict[str, str]]:
    products = "\n".join(f"- product_id: P{i * 7 + k} | name: Product {k} | category: home"
                         for k in range(1 + i % 5))
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Member segment: regulars. Recommended products:\n{products}\n"
                                        "Explain each pick in one sentence."}]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    def __init__(self, latency_s: float) -> None:
        self.port = free_port()
        self.root = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.root}/v1"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.fake_openai", "--port", str(self.port),
                                      "--latency", str(latency_s)], cwd=ROOT, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{self.base_url}/models", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"fake server did not start: {self.proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.05)

    def config(self, **cfg: Any) -> None:
        httpx.post(f"{self.root}/_fake/config", json=cfg, timeout=10).raise_for_status()

    def stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.root}/_fake/stats", timeout=10).json()

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def request_kwargs(i: int, max_tokens: int) -> dict[str, Any]:
    return {"model": "fake-model", "messages": messages(i), "temperature": 0.7, "max_tokens": max_tokens,
            "response_format": {"type": "json_schema",
                                "json_schema": {"name": "message", "schema": DRAFT_SCHEMA, "strict": True}}}


async def raw_loop(base_url: str, n: int, c: int) -> float:
    oai = openai.AsyncOpenAI(base_url=base_url, api_key="not-needed", max_retries=0, timeout=60)
    sem = asyncio.Semaphore(c)

    async def one(i: int) -> str | None:
        async with sem:
            r = await oai.chat.completions.create(**request_kwargs(i, 400))
            return r.choices[0].message.content

    t0 = time.perf_counter()
    out = await asyncio.gather(*(one(i) for i in range(n)))
    dt = time.perf_counter() - t0
    await oai.close()
    assert all(out)
    return n / dt


async def client_loop(base_url: str, n: int, c: int, **settings: Any) -> tuple[float, LLMClient]:
    client = LLMClient(LLMSettings(model="fake-model", concurrency=c, structured_output="json_schema",
                                   timeout_s=60, max_retries=8, **settings), base_url=base_url, api_key=None)
    t0 = time.perf_counter()
    out = await asyncio.gather(*(client.complete(messages(i), schema=DRAFT_SCHEMA) for i in range(n)))
    dt = time.perf_counter() - t0
    await client.aclose()
    assert all(o.text for o in out)
    return n / dt, client


def part_a(server: ServerProcess, n: int, c: int, latency: float, rounds: int) -> list[str]:
    server.config(reset=True, latency_s=latency)
    asyncio.run(raw_loop(server.base_url, min(200, n), c))             # warm up both paths
    asyncio.run(client_loop(server.base_url, min(200, n), c))
    raw, cli = [], []
    for _ in range(rounds):                                            # interleaved, best of `rounds`
        raw.append(asyncio.run(raw_loop(server.base_url, n, c)))
        cli.append(asyncio.run(client_loop(server.base_url, n, c))[0])
    ideal = c / latency
    lines = [f"(a) {n} requests, concurrency {c}, server latency {latency * 1000:.0f} ms "
             f"(ideal {ideal:.0f} req/s), best of {rounds} interleaved rounds",
             f"    raw AsyncOpenAI loop : {max(raw):8.1f} req/s   (rounds: {', '.join(f'{x:.0f}' for x in raw)})",
             f"    LLMClient            : {max(cli):8.1f} req/s   (rounds: {', '.join(f'{x:.0f}' for x in cli)})",
             f"    ratio client/raw     : {max(cli) / max(raw):8.2f}   (target >= 0.80)"]
    return lines


def part_b(server: ServerProcess, latency: float, c: int, window_s: float, seconds: float) -> list[str]:
    lines = []
    # limits per window; the client is configured with the same limits per minute
    scenarios = [("RPM-bound", {"rpm": 100, "tpm": 10_000_000}), ("TPM-bound", {"rpm": 10_000, "tpm": 30_000})]
    scale = 60.0 / window_s
    for name, lim in scenarios:
        server.config(reset=True, latency_s=latency, limits={**lim, "window_s": window_s})
        rpm, tpm = int(lim["rpm"] * scale), int(lim["tpm"] * scale)
        # enough requests for ~`seconds` at the binding limit (≈ 230-330 tokens a request here)
        n = int(min(lim["rpm"], lim["tpm"] / 280) / window_s * seconds)
        _, client = asyncio.run(client_loop(server.base_url, n, c, rpm=rpm, tpm=tpm))
        st = server.stats()
        ok, r429 = st["counts"].get("200", 0), st["counts"].get("429", 0)
        span = st["last_200_t"] - st["first_200_t"]
        req_rate = (ok - 1) / span
        tok_rate = (st["tokens"]["prompt"] + st["tokens"]["completion"]) * (ok - 1) / ok / span
        req_used = req_rate / (lim["rpm"] / window_s)
        tok_used = tok_rate / (lim["tpm"] / window_s)
        used = req_used if name == "RPM-bound" else tok_used
        lines.append(f"(b) {name}: server allows {lim['rpm']} requests and {lim['tpm']} tokens per {window_s:g} s "
                     f"sliding window; client rpm={rpm} tpm={tpm}, concurrency {c}")
        lines.append(f"    {ok} requests in {span:.1f} s: {req_rate:.1f} req/s, {tok_rate:.0f} tokens/s; "
                     f"limit used {used * 100:.1f}% (target >= 90%)")
        lines.append(f"    429 answers: {r429} of {ok + r429} = {100 * r429 / max(1, ok + r429):.2f}% (target < 1%); "
                     f"client waited {client.stats.budget_wait_s:.1f} s in budgets (summed over callers)")
    return lines


NOTES = """\
(a) is CPU-bound on both sides: with 2 cores the client, the SDK and the fake server
(pure-Python h11) compete, so absolute req/s are far below the ideal and the ratio
moves by ±0.15 between runs; read it as "the retry layer, budgets, semaphore and
raw-response path cost nothing measurable next to the SDK itself", not as a speed-up.
(b) uses a 2 s sliding window with limits scaled to it (100 requests / 2 s = 3,000 RPM);
the client paces at 94% of the configured limit with a 50 ms burst, learns the
actual/estimated token ratio from `usage`, and reads the `x-ratelimit-*` headers.
Zero 429s in both scenarios.
"""


def write_results(command: str, lines: list[str]) -> Path:
    path = ROOT / "benchmarks" / "RESULTS.md"
    section = ("## LLM client\n\n"
               f"Command: `{command}`\n\n"
               f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
               f"openai {openai.__version__}; fake server in a subprocess (uvicorn + h11).\n\n"
               "```\n" + "\n".join(lines) + "\n```\n\n" + NOTES)
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n\n"
    pattern = re.compile(r"^## LLM client\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text).rstrip("\n") + "\n"
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text, encoding="utf-8")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="requests per throughput run")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--latency", type=float, default=0.02, help="fake server latency, seconds")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--window-s", type=float, default=2.0, help="the fake server's rate-limit window")
    ap.add_argument("--seconds", type=float, default=15.0, help="length of each rate-limit scenario")
    ap.add_argument("--no-write", action="store_true", help="do not update benchmarks/RESULTS.md")
    args = ap.parse_args()
    command = ".venv/bin/python benchmarks/bench_llm.py" + "".join(
        f" {shlex.quote(a)}" for a in sys.argv[1:])
    print(f"$ {command}", flush=True)
    server = ServerProcess(args.latency)
    try:
        lines = part_a(server, args.n, args.concurrency, args.latency, args.rounds)
        print("\n".join(lines), flush=True)
        more = part_b(server, args.latency, args.concurrency, args.window_s, args.seconds)
        print("\n".join(more), flush=True)
        lines += more
    finally:
        server.close()
    if not args.no_write:
        print(f"wrote {write_results(command, lines).relative_to(ROOT)}")


if __name__ == "__main__":
    main()
